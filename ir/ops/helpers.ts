/** Shape helpers shared by the op families (ir/ops/*.ts). */
import { Format, F32 } from '../format.js';
import { TensorType, tensorType } from '../types.js';

// ---------- shape helpers ----------
export const f32 = (shape: number[], fmt: Format = F32) => tensorType(shape, 'f32', fmt);
export function need(cond: boolean, msg: string): void { if (!cond) throw new Error(msg); }
export const str = (s: number[]) => `[${s.join(', ')}]`;
/** @deprecated an op's rules get their attributes typed from its schema (`a.stride`); kept so branches that still
 *  call it merge cleanly. */
export const int = (a: Record<string, unknown>, k: string) => a[k] as number;

/** Most inputs one concat node takes (the DSL joins longer lists in runs; DenseNets join two at a time). */
export const MAX_CONCAT_INPUTS = 64;

export function convOutSize(h: number, k: number, stride: number, pad: number): number {
  return Math.floor((h + 2 * pad - k) / stride) + 1;
}
export function poolOutSize(h: number, k: number, stride: number, pad = 0): number {
  return Math.floor((h + 2 * pad - k) / stride) + 1;
}
/** Elements before the axis (outer), along it (len) and after it (inner) of a shape (all row-major). */
export function axisSplit(shape: readonly number[], axis: number): { outer: number; len: number; inner: number } {
  const prod = (a: readonly number[]) => a.reduce((x, y) => x * y, 1);
  return { outer: prod(shape.slice(0, axis)), len: shape[axis], inner: prod(shape.slice(axis + 1)) };
}
/** Channels of an NCHW or NC tensor, and the per-channel spatial size. */
export function chanDims(shape: number[]): { n: number; c: number; hw: number } {
  return { n: shape[0], c: shape[1], hw: shape.length === 4 ? shape[2] * shape[3] : 1 };
}

/** A pooling node's padding (max pooling only; absent = 0, so unpadded graphs keep their text). */
export const poolPad = (a: { pad?: unknown }) => (a.pad as number | undefined) ?? 0;

/** Output shape of max/avg pooling (also the argmax compression of max pooling). */
/** A pooling window's attributes. */
export interface PoolAttrs { k: number; stride: number; pad?: number }

export function poolInfer(t: TensorType[], a: PoolAttrs, op: string): TensorType {
  const x = t[0].shape;
  need(x.length === 4, `${op} expects 4-D input [N, C, H, W], got ${str(x)}`);
  const k = a.k, s = a.stride, p = poolPad(a);
  // as PyTorch: a padded window must still hold an input element
  need(Number.isInteger(p) && p >= 0 && 2 * p <= k, `${op}: pad ${p} must be at most half the window ${k}`);
  const oh = poolOutSize(x[2], k, s, p), ow = poolOutSize(x[3], k, s, p);
  need(oh > 0 && ow > 0, `${op}: window ${k} is larger than the ${p ? 'padded ' : ''}input ${x[2]}×${x[3]}`);
  return f32([x[0], x[1], oh, ow]);
}
