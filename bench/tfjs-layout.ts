/**
 * Layouts of the tfjs peer (bench/tfjs-peer.ts): tfjs keeps 4-D values NHWC with [KH,KW,C,O] filters, lpc NCHW with
 * [O,C,KH,KW]; a parameter's tfjs copy is a transpose or a gather of lpc's array, fixed at set-up.
 */
/** A parameter's tfjs copy: its tfjs shape, and either a transpose of lpc's array or an explicit gather. */
export interface Layout {
  shape: number[];
  /** tfjs axis k is lpc axis perm[k]. */
  perm?: number[];
  /** tfjs element i is lpc element src[i]. */
  src?: Int32Array;
}

export const NCHW_TO_NHWC = [0, 2, 3, 1], NHWC_TO_NCHW = [0, 3, 1, 2];

/** Column order of an NHWC flatten of [C,H,W], as NCHW flat indices. */
export function hwcOrder([C, H, W]: [number, number, number]): Int32Array {
  const p = new Int32Array(C * H * W);
  let i = 0;
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let c = 0; c < C; c++) p[i++] = (c * H + h) * W + w;
  return p;
}

export function toTf(a: Float32Array, l: Layout, lpcShape: number[]): Float32Array {
  if (l.src) return Float32Array.from(l.src, (s) => a[s]);
  return l.perm ? transposeArray(a, lpcShape, l.perm) : Float32Array.from(a);
}
export function fromTf(a: Float32Array, l: Layout): Float32Array {
  if (l.src) {
    const r = new Float32Array(a.length);
    l.src.forEach((s, i) => { r[s] = a[i]; });
    return r;
  }
  return l.perm ? transposeArray(a, l.shape, l.perm.map((_, i) => l.perm!.indexOf(i))) : Float32Array.from(a);
}
export function transposeArray(a: Float32Array, shape: number[], perm: number[]): Float32Array {
  const out = new Float32Array(a.length), r = shape.length;
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((x, y) => x * y, 1));
  const outShape = perm.map((p) => shape[p]);
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < out.length; o++) {
    let s = 0;
    for (let k = 0; k < r; k++) s += idx[k] * strides[perm[k]];
    out[o] = a[s];
    for (let k = r - 1; k >= 0; k--) { if (++idx[k] < outShape[k]) break; idx[k] = 0; }
  }
  return out;
}
