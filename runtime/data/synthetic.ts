/**
 * Seeded synthetic images for any sample shape: each class has a fixed random prototype and a sample is its
 * class's prototype plus Gaussian noise, so a model can learn it (loss falls) and a run needs no download.
 * Values are roughly zero-mean, unit-variance, like normalised real data.
 */
import { mixSeed, normal, splitmix32 } from './random.js';
import { Dataset, Split } from './types.js';

const { floor, sqrt } = Math; // module-level: global lookups are slow in vm contexts (jest)

export interface SyntheticOptions {
  /** [C, H, W] (default [1, 28, 28]). */
  shape?: number[];
  classes?: number;
  train?: number;
  test?: number;
  seed?: number;
  /** Noise standard deviation relative to the prototypes' (default 1). */
  noise?: number;
}

export function loadSynthetic(o: SyntheticOptions = {}): Split {
  const shape = (o.shape ?? [1, 28, 28]) as [number, number, number];
  if (shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`synthetic: sample shape must be [C, H, W] of positive integers, got [${shape.join(', ')}]`);
  }
  const classes = o.classes ?? 10, seed = o.seed ?? 0, noise = o.noise ?? 1;
  const size = shape[0] * shape[1] * shape[2];
  const scale = 1 / sqrt(1 + noise * noise); // keeps the overall variance near 1
  const protoRng = splitmix32(mixSeed(seed, 0x70));
  const protos = Float32Array.from({ length: classes * size }, () => normal(protoRng));
  const make = (split: string, n: number, stream: number): Dataset => {
    const rng = splitmix32(mixSeed(seed, stream));
    const images = new Float32Array(n * size), labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const c = (labels[i] = floor((rng() * classes) / 4294967296));
      for (let j = 0; j < size; j++) images[i * size + j] = (protos[c * size + j] + noise * normal(rng)) * scale;
    }
    return { name: `synthetic/${split}`, images, labels, n, shape: [...shape] as [number, number, number], classes };
  };
  return { train: make('train', o.train ?? 1024, 1), test: make('test', o.test ?? 256, 2) };
}
