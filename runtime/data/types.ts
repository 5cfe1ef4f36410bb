/** A labelled image set held in memory, ready to batch. */
export interface Dataset {
  /** Which set, e.g. `mnist/train`. */
  name: string;
  /** N×C×H×W float32, already normalised per channel: (x/255 − mean[c]) / std[c]. */
  images: Float32Array;
  /** N class indices in [0, classes). */
  labels: Int32Array;
  n: number;
  /** One sample's shape [C, H, W]. */
  shape: [number, number, number];
  classes: number;
  /** Token sequences (runtime/data/sotu.ts): `images` holds each sample's shape[0] token ids (exact in f32), fed as
   *  i32; `labels` holds shape[0] targets per sample (the next tokens). */
  tokens?: boolean;
}

/** A train/test pair. */
export interface Split { train: Dataset; test: Dataset }

/**
 * 8-bit pixels (N×C×H×W) → normalised float32, (x/255 − mean[c]) / std[c] like torchvision's ToTensor+Normalize.
 * `index`, if given, picks and orders the samples (a split); otherwise all of them in order.
 */
export function normalizeBytes(pixels: Uint8Array, shape: [number, number, number], mean: number[], std: number[],
  index?: ArrayLike<number>): Float32Array {
  const [c, h, w] = shape, plane = h * w, size = c * plane;
  const n = index ? index.length : pixels.length / size;
  // one 256-entry table per channel: the formula is evaluated once per value, identically for every pixel
  const luts = mean.map((m, k) => Float32Array.from({ length: 256 }, (_, x) => (x / 255 - m) / std[k]));
  const out = new Float32Array(n * size);
  for (let i = 0; i < n; i++) {
    const src = (index ? index[i] : i) * size;
    for (let k = 0; k < c; k++) {
      const lut = luts[k], o = i * size + k * plane, s = src + k * plane;
      for (let j = 0; j < plane; j++) out[o + j] = lut[pixels[s + j]];
    }
  }
  return out;
}

/** The labels of the samples `index` picks. */
export function pickLabels(labels: ArrayLike<number>, index: ArrayLike<number>): Int32Array {
  return Int32Array.from({ length: index.length }, (_, i) => labels[index[i]]);
}
