/** `--data` specs → a train/test split. */
import { loadCifar10, loadCifar100 } from './cifar.js';
import { loadFashionMnist } from './fashion.js';
import { loadMnist } from './mnist.js';
import { loadSynthetic } from './synthetic.js';
import { Split } from './types.js';

export type { Dataset, Split } from './types.js';
export { epochBatches, evalBatches } from './batches.js';

export const DATASET_SPECS = ['mnist', 'fashion-mnist', 'cifar10:<dir>', 'cifar100:<dir>', 'synthetic'];

export interface LoadOptions {
  /** The model's sample shape [C, H, W]: what synthetic data is made with (real sets have their own). */
  sampleShape?: number[];
  /** The run's seed: only synthetic data depends on it (real splits are fixed). */
  seed?: number;
  /** Classes for synthetic data (default 10). */
  classes?: number;
}

/** A --data spec checked and split into its set and directory: `cifar10:<dir>` → { name: 'cifar10', dir }. */
export function parseDataSpec(spec: string): { name: string; dir?: string } {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? undefined : spec.slice(colon + 1);
  if (!DATASET_SPECS.some((d) => d.split(':')[0] === name)) throw new Error(`unknown data set '${spec}'; expected one of: ${DATASET_SPECS.join(', ')}`);
  const needsDir = name === 'cifar10' || name === 'cifar100';
  if (needsDir && !arg) throw new Error(`data set '${name}' needs a directory: --data ${name}:<dir>`);
  if (!needsDir && arg !== undefined) throw new Error(`data set '${name}' takes no ':' argument (got '${spec}')`);
  return { name, dir: arg };
}

/** Loads `mnist`, `fashion-mnist`, `cifar10:<dir>`, `cifar100:<dir>` or `synthetic`. */
export function loadDataset(spec: string, opts: LoadOptions = {}): Split {
  const { name, dir } = parseDataSpec(spec);
  switch (name) {
    case 'mnist': return loadMnist();
    case 'fashion-mnist': return loadFashionMnist();
    case 'cifar10': return loadCifar10(dir!);
    case 'cifar100': return loadCifar100(dir!);
    case 'synthetic': return loadSynthetic({ shape: opts.sampleShape, seed: opts.seed, classes: opts.classes });
    default: throw new Error(`unknown data set '${spec}'`);
  }
}
