/**
 * CIFAR-10/100 in the standard binary format (the "binary version" archives), read from a directory:
 * - CIFAR-10: data_batch_1.bin … data_batch_5.bin (train) and test_batch.bin; records of 1 label byte + 3072 pixels.
 * - CIFAR-100: train.bin and test.bin; records of 1 coarse label byte, 1 fine label byte + 3072 pixels.
 * Pixels are 1024 R, 1024 G, 1024 B bytes, each plane row-major: already C×H×W. The directory may also be the
 * folder that holds the extracted `cifar-10-batches-bin` / `cifar-100-binary`. A file must be a whole number of
 * records (the standard ones hold 10,000 or 50,000). Normalisation uses the constants of the recipes lpc reproduces
 * (CPT, SWALP: mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010), for CIFAR-100 as well).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Dataset, Split, normalizeBytes } from './types.js';

export const CIFAR_MEAN = [0.4914, 0.4822, 0.4465];
export const CIFAR_STD = [0.2023, 0.1994, 0.2010];
const PIXELS = 3 * 32 * 32;

interface Variant { name: string; sub: string; train: string[]; test: string[]; labelBytes: number; classes: number }
const CIFAR10: Variant = {
  name: 'cifar10', sub: 'cifar-10-batches-bin', labelBytes: 1, classes: 10,
  train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), test: ['test_batch.bin'],
};
const CIFAR100: Variant = { name: 'cifar100', sub: 'cifar-100-binary', labelBytes: 2, classes: 100, train: ['train.bin'], test: ['test.bin'] };

function resolveDir(v: Variant, dir: string): string {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`${v.name}: '${dir}' is not a directory; expected one holding ${[...v.train, ...v.test].join(', ')}`);
  }
  const nested = path.join(dir, v.sub);
  if (!fs.existsSync(path.join(dir, v.test[0])) && fs.existsSync(path.join(nested, v.test[0]))) return nested;
  return dir;
}

/** The records of `files`: pixels (N×3072 bytes, C×H×W) and each label byte (CIFAR-100: [coarse, fine]). */
function readRecords(v: Variant, dir: string, files: string[]): { pixels: Uint8Array; labels: Uint8Array[]; n: number } {
  const rec = v.labelBytes + PIXELS;
  const bufs = files.map((f) => {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) throw new Error(`${v.name}: missing file ${file} (the directory needs ${[...v.train, ...v.test].join(', ')})`);
    const b = fs.readFileSync(file);
    if (b.length === 0 || b.length % rec !== 0) {
      throw new Error(`${v.name}: ${file} has ${b.length} bytes, not a whole number of ${rec}-byte records ` +
        `(${v.labelBytes} label byte${v.labelBytes > 1 ? 's' : ''} + ${PIXELS} pixels); is it truncated, or from the other CIFAR?`);
    }
    return b;
  });
  const n = bufs.reduce((s, b) => s + b.length / rec, 0);
  const pixels = new Uint8Array(n * PIXELS), labels = Array.from({ length: v.labelBytes }, () => new Uint8Array(n));
  let i = 0;
  for (const b of bufs) {
    for (let o = 0; o < b.length; o += rec, i++) {
      for (let k = 0; k < v.labelBytes; k++) labels[k][i] = b[o + k];
      pixels.set(b.subarray(o + v.labelBytes, o + rec), i * PIXELS);
    }
  }
  return { pixels, labels, n };
}

function readSet(v: Variant, dir: string, files: string[], split: string, label: 'fine' | 'coarse'): Dataset {
  const { pixels, labels: all, n } = readRecords(v, dir, files);
  const raw = all[v.labelBytes === 2 && label === 'fine' ? 1 : 0];
  const classes = label === 'coarse' && v.labelBytes === 2 ? 20 : v.classes;
  const labels = Int32Array.from(raw);
  labels.forEach((l, i) => {
    if (l >= classes) throw new Error(`${v.name}: record ${i} has label ${l}, out of range; is this the right CIFAR variant?`);
  });
  const shape: [number, number, number] = [3, 32, 32];
  return { name: `${v.name}/${split}`, images: normalizeBytes(pixels, shape, CIFAR_MEAN, CIFAR_STD), labels, n, shape, classes };
}

/** CIFAR-10 from `dir` (train: the 5 data batches in order; test: test_batch). */
export function loadCifar10(dir: string): Split {
  const d = resolveDir(CIFAR10, dir);
  return { train: readSet(CIFAR10, d, CIFAR10.train, 'train', 'fine'), test: readSet(CIFAR10, d, CIFAR10.test, 'test', 'fine') };
}

/** CIFAR-100 from `dir`, with the 100 fine labels (default) or the 20 coarse ones. */
export function loadCifar100(dir: string, opts: { label?: 'fine' | 'coarse' } = {}): Split {
  const d = resolveDir(CIFAR100, dir), label = opts.label ?? 'fine';
  return { train: readSet(CIFAR100, d, CIFAR100.train, 'train', label), test: readSet(CIFAR100, d, CIFAR100.test, 'test', label) };
}

/** The last CIFAR-100 files read for superclass tasks (20 tasks share one 150 MB read). */
let rawCache: { dir: string; train: ReturnType<typeof readRecords>; test: ReturnType<typeof readRecords> } | undefined;

/**
 * PEPPP's CIFAR-100 superclass partition `k` (0..19, the coarse label of the binary format): the records whose
 * coarse label is k, their fine labels remapped to 0..m−1 in ascending fine-label order (m = 5 for the real data).
 * The train and test files are filtered as they are, in file order.
 */
export function loadCifar100Superclass(dir: string, k: number): Split {
  if (!Number.isInteger(k) || k < 0 || k > 19) throw new Error(`cifar100: superclass ${k} is out of range 0..19`);
  const d = resolveDir(CIFAR100, dir);
  // keyed by the files' identity and change time, so a rewritten file is read again
  const key = [...CIFAR100.train, ...CIFAR100.test].map((f) => {
    const st = fs.statSync(path.join(d, f), { throwIfNoEntry: false });
    return st ? `${fs.realpathSync(path.join(d, f))}@${st.size}@${st.mtimeMs}@${st.ino}` : f;
  }).join('|');
  if (rawCache?.dir !== key) rawCache = { dir: key, train: readRecords(CIFAR100, d, CIFAR100.train), test: readRecords(CIFAR100, d, CIFAR100.test) };
  const check = (r: ReturnType<typeof readRecords>, split: string) => {
    for (let i = 0; i < r.n; i++) {
      if (r.labels[0][i] >= 20 || r.labels[1][i] >= 100)
        throw new Error(`cifar100: ${split} record ${i} has labels (coarse ${r.labels[0][i]}, fine ${r.labels[1][i]}), out of range; is this the right CIFAR variant?`);
    }
  };
  check(rawCache.train, 'train');
  check(rawCache.test, 'test');
  const fines = [...new Set(Array.from(rawCache.train.n ? rawCache.train.labels[1].filter((_, i) => rawCache!.train.labels[0][i] === k) : []))].sort((a, b) => a - b);
  if (fines.length === 0) throw new Error(`cifar100: superclass ${k} has no training records in ${d}`);
  const remap = new Map(fines.map((f, j) => [f, j]));
  const shape: [number, number, number] = [3, 32, 32];
  const make = (r: ReturnType<typeof readRecords>, split: string): Dataset => {
    const idx: number[] = [];
    for (let i = 0; i < r.n; i++) {
      if (r.labels[0][i] !== k) continue;
      if (!remap.has(r.labels[1][i])) throw new Error(`cifar100: ${split} record ${i} has fine label ${r.labels[1][i]} in superclass ${k}, which no training record of it has`);
      idx.push(i);
    }
    return {
      name: `cifar100:superclass=${k}/${split}`, images: normalizeBytes(r.pixels, shape, CIFAR_MEAN, CIFAR_STD, idx),
      labels: Int32Array.from(idx, (i) => remap.get(r.labels[1][i])!), n: idx.length, shape, classes: fines.length,
    };
  };
  return { train: make(rawCache.train, 'train'), test: make(rawCache.test, 'test') };
}
