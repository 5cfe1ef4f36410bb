/**
 * Fixed-size batches. Training: a fresh seeded permutation per epoch (from the run seed and the epoch number, so
 * a resumed run sees the same order), the last partial batch dropped. Evaluation: the data in order, the last
 * batch padded with zero images and label −1 (which the loss and accuracy ignore), `valid` = real samples.
 */
import { mixSeed, permutation, splitmix32 } from './random.js';
import { Dataset } from './types.js';

export interface Batch {
  /** B×C×H×W images, or B×T token ids (i32) for a sequence set. */
  x: Float32Array | Int32Array;
  /** B labels (B×T targets for a sequence set); −1 marks padding. */
  y: Int32Array;
  /** How many leading samples are real (B except in a padded last evaluation batch). */
  valid: number;
}

export interface Batches extends Iterable<Batch> {
  readonly length: number;
  readonly batchSize: number;
  /** Batch i (0 ≤ i < length); fresh arrays each call. */
  get(i: number): Batch;
}

function checkBatch(b: number): void {
  if (!Number.isInteger(b) || b < 1) throw new Error(`batch size must be a positive integer, got ${b}`);
}

function gather(ds: Dataset, b: number, pick: (k: number) => number, count: number): Batch {
  const size = ds.shape[0] * ds.shape[1] * ds.shape[2], per = ds.tokens ? ds.shape[0] : 1;
  const x = ds.tokens ? new Int32Array(b * size) : new Float32Array(b * size), y = new Int32Array(b * per).fill(-1);
  for (let k = 0; k < count; k++) {
    const s = pick(k);
    x.set(ds.images.subarray(s * size, (s + 1) * size), k * size);
    y.set(ds.labels.subarray(s * per, (s + 1) * per), k * per);
  }
  return { x, y, valid: count };
}

function batches(length: number, batchSize: number, get: (i: number) => Batch): Batches {
  return {
    length, batchSize,
    get(i: number) {
      if (!Number.isInteger(i) || i < 0 || i >= length) throw new Error(`batch ${i} out of range [0, ${length})`);
      return get(i);
    },
    *[Symbol.iterator]() { for (let i = 0; i < length; i++) yield get(i); },
  };
}

/** The order in which epoch `epoch` of a run with `seed` visits n training samples (batches take it in slices). */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  return permutation(n, splitmix32(mixSeed(seed, epoch)));
}

/** Training batches for `epoch` (any integer; the loop uses 1, 2, …): shuffled by (seed, epoch), drop last. */
export function epochBatches(ds: Dataset, batchSize: number, seed: number, epoch: number): Batches {
  checkBatch(batchSize);
  if (ds.n < batchSize) throw new Error(`batch size ${batchSize} is larger than ${ds.name} (${ds.n} samples)`);
  const perm = epochOrder(ds.n, seed, epoch);
  return batches(Math.floor(ds.n / batchSize), batchSize, (i) => gather(ds, batchSize, (k) => perm[i * batchSize + k], batchSize));
}

/** Evaluation batches: every sample once, in order; the last batch padded (label −1). */
export function evalBatches(ds: Dataset, batchSize: number): Batches {
  checkBatch(batchSize);
  return batches(Math.ceil(ds.n / batchSize), batchSize,
    (i) => gather(ds, batchSize, (k) => i * batchSize + k, Math.min(batchSize, ds.n - i * batchSize)));
}
