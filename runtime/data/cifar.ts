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

function readSet(v: Variant, dir: string, files: string[], split: string, label: 'fine' | 'coarse'): Dataset {
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
  const pixels = new Uint8Array(n * PIXELS), labels = new Int32Array(n);
  const which = v.labelBytes === 2 && label === 'fine' ? 1 : 0;
  let i = 0;
  for (const b of bufs) {
    for (let o = 0; o < b.length; o += rec, i++) {
      labels[i] = b[o + which];
      if (labels[i] >= (label === 'coarse' && v.labelBytes === 2 ? 20 : v.classes)) {
        throw new Error(`${v.name}: record ${i} has label ${labels[i]}, out of range; is this the right CIFAR variant?`);
      }
      pixels.set(b.subarray(o + v.labelBytes, o + rec), i * PIXELS);
    }
  }
  const shape: [number, number, number] = [3, 32, 32];
  return {
    name: `${v.name}/${split}`, images: normalizeBytes(pixels, shape, CIFAR_MEAN, CIFAR_STD), labels, n, shape,
    classes: label === 'coarse' && v.labelBytes === 2 ? 20 : v.classes,
  };
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
