/** `--data` specs → a train/test split. */
import { loadCifar10, loadCifar100, loadCifar100Superclass } from './cifar.js';
import { loadFashionMnist } from './fashion.js';
import { loadMnist } from './mnist.js';
import { loadSynthetic } from './synthetic.js';
import { loadSotu } from './sotu.js';
import { Dataset, Split } from './types.js';

export type { Dataset, Split } from './types.js';
export { epochBatches, evalBatches } from './batches.js';

export const DATASET_SPECS = ['mnist', 'fashion-mnist', 'cifar10:<dir>', 'cifar100:<dir>', 'synthetic', 'sotu:chars', 'sotu:words[=N]'];
/** Task families: class subsets of a set, and PEPPP's CIFAR-100 superclass partitions. */
export const TASK_SPECS = ['mnist:classes=0,2,4', 'fashion-mnist:classes=…', 'cifar10:<dir>:classes=…', 'cifar100:<dir>:classes=…', 'cifar100:<dir>:superclass=K'];

/** Classes of each full set (class indices of a `classes=` list lie in 0..n−1). */
const FULL_CLASSES: Record<string, number> = { mnist: 10, 'fashion-mnist': 10, cifar10: 10, cifar100: 100 };

export interface LoadOptions {
  /** The model's sample shape [C, H, W]: what synthetic data is made with (real sets have their own); [T] for text:
   *  the sequence length. */
  sampleShape?: number[];
  /** The run's seed: only synthetic data depends on it (real splits are fixed). */
  seed?: number;
  /** Classes for synthetic data (default 10). */
  classes?: number;
}

/**
 * A --data spec checked and split into its set, directory and task options: `cifar10:<dir>` → { name: 'cifar10', dir };
 * `mnist:classes=0,2,4` → { name: 'mnist', classes: [0, 2, 4] }; `cifar100:<dir>:superclass=3` → { …, superclass: 3 }.
 */
export function parseDataSpec(spec: string): { name: string; dir?: string; classes?: number[]; superclass?: number } {
  const opt = spec.match(/:(classes|superclass)=([^:]*)$/);
  const base = opt ? spec.slice(0, opt.index) : spec;
  const colon = base.indexOf(':');
  const name = colon < 0 ? base : base.slice(0, colon);
  const arg = colon < 0 ? undefined : base.slice(colon + 1);
  if (!DATASET_SPECS.some((d) => d.split(':')[0] === name)) throw new Error(`unknown data set '${spec}'; expected one of: ${DATASET_SPECS.join(', ')}`);
  if (name === 'sotu') {
    // text (runtime/data/sotu.ts): the tokens come after the colon
    if (opt || !arg || !/^(chars|words(=\d+)?)$/.test(arg)) throw new Error(`'${spec}': expected sotu:chars, sotu:words or sotu:words=N`);
    return { name, dir: arg };
  }
  const needsDir = name === 'cifar10' || name === 'cifar100';
  if (needsDir && !arg) throw new Error(`data set '${name}' needs a directory: --data ${name}:<dir>`);
  if (!needsDir && arg !== undefined) throw new Error(`data set '${name}' takes no ':' argument other than :classes=a,b,… (got '${spec}')`);
  if (!opt) return { name, dir: arg };
  if (name === 'synthetic') throw new Error(`data set 'synthetic' takes no :${opt[1]}= option (got '${spec}')`);
  if (opt[1] === 'superclass') {
    if (name !== 'cifar100') throw new Error(`'${spec}': superclass= is for cifar100:<dir> only`);
    const k = /^\d+$/.test(opt[2]) ? Number(opt[2]) : NaN;
    if (!(k >= 0 && k <= 19)) throw new Error(`'${spec}': superclass must be an integer in 0..19, got '${opt[2]}'`);
    return { name, dir: arg, superclass: k };
  }
  const items = opt[2].split(',');
  if (!items.every((c) => /^\d+$/.test(c))) throw new Error(`'${spec}': classes= must be a comma-separated list of class indices like 0,2,4`);
  const classes = items.map(Number), full = FULL_CLASSES[name];
  const bad = classes.find((c) => c >= full);
  if (bad !== undefined) throw new Error(`'${spec}': unknown class ${bad} (${name} has classes 0..${full - 1})`);
  const dup = classes.find((c, i) => classes.indexOf(c) !== i);
  if (dup !== undefined) throw new Error(`'${spec}': class ${dup} is listed twice`);
  if (classes.length < 2) throw new Error(`'${spec}': a task needs at least 2 classes`);
  return { name, dir: arg, classes };
}

/**
 * The samples of `split` whose label is in `classes`, relabelled to their position in the list (0..k−1 in the
 * listed order); each split keeps its own samples in order, so a task's split is a filter of the full one.
 */
export function classSubset(split: Split, classes: number[], name: string): Split {
  const remap = new Map(classes.map((c, j) => [c, j]));
  const pick = (d: Dataset, part: string): Dataset => {
    const size = d.shape[0] * d.shape[1] * d.shape[2];
    const idx: number[] = [];
    d.labels.forEach((l, i) => { if (remap.has(l)) idx.push(i); });
    const images = new Float32Array(idx.length * size);
    idx.forEach((s, k) => images.set(d.images.subarray(s * size, (s + 1) * size), k * size));
    return { name: `${name}/${part}`, images, labels: Int32Array.from(idx, (s) => remap.get(d.labels[s])!), n: idx.length, shape: d.shape, classes: classes.length };
  };
  return { train: pick(split.train, 'train'), test: pick(split.test, 'test') };
}

/** Loads `mnist`, `fashion-mnist`, `cifar10:<dir>`, `cifar100:<dir>` or `synthetic`, or a task of one (TASK_SPECS). */
export function loadDataset(spec: string, opts: LoadOptions = {}): Split {
  const { name, dir, classes, superclass } = parseDataSpec(spec);
  if (superclass !== undefined) return loadCifar100Superclass(dir!, superclass);
  const full = ((): Split => {
    switch (name) {
      case 'mnist': return loadMnist();
      case 'fashion-mnist': return loadFashionMnist();
      case 'cifar10': return loadCifar10(dir!);
      case 'cifar100': return loadCifar100(dir!);
      case 'synthetic': return loadSynthetic({ shape: opts.sampleShape, seed: opts.seed, classes: opts.classes });
      case 'sotu': return loadSotu(dir!, opts.sampleShape?.[0] ?? 128);
      default: throw new Error(`unknown data set '${spec}'`);
    }
  })();
  return classes ? classSubset(full, classes, `${name}:classes=${classes.join(',')}`) : full;
}

/** Why a model whose input `x` has type (shape with the batch, dtype) cannot take `d`'s samples, or undefined. */
export function inputProblem(model: string, x: { shape: number[]; dtype: string }, spec: string, d: Dataset): string | undefined {
  if ((x.dtype === 'i32') !== !!d.tokens)
    return `model '${model}' takes ${x.dtype === 'i32' ? 'token ids' : 'images'} but ${spec} holds ${d.tokens ? 'token sequences' : 'images'}`;
  const want = x.shape.slice(1).join(','), have = (d.tokens ? [d.shape[0]] : d.shape).join(',');
  return want === have ? undefined : `model '${model}' expects inputs [${want}] but ${spec} has [${have}]`;
}
