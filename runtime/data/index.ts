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

/** Loads `mnist`, `fashion-mnist`, `cifar10:<dir>`, `cifar100:<dir>` or `synthetic`. */
export function loadDataset(spec: string, opts: LoadOptions = {}): Split {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? undefined : spec.slice(colon + 1);
  const noArg = () => {
    if (arg !== undefined) throw new Error(`data set '${name}' takes no ':' argument (got '${spec}')`);
  };
  const needDir = () => {
    if (!arg) throw new Error(`data set '${name}' needs a directory: --data ${name}:<dir>`);
    return arg;
  };
  switch (name) {
    case 'mnist': noArg(); return loadMnist();
    case 'fashion-mnist': noArg(); return loadFashionMnist();
    case 'cifar10': return loadCifar10(needDir());
    case 'cifar100': return loadCifar100(needDir());
    case 'synthetic': noArg(); return loadSynthetic({ shape: opts.sampleShape, seed: opts.seed, classes: opts.classes });
    default: throw new Error(`unknown data set '${spec}'; expected one of: ${DATASET_SPECS.join(', ')}`);
  }
}
