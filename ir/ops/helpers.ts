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

export function convOutSize(h: number, k: number, stride: number, pad: number): number {
  return Math.floor((h + 2 * pad - k) / stride) + 1;
}
export function poolOutSize(h: number, k: number, stride: number): number {
  return Math.floor((h - k) / stride) + 1;
}
/** Channels of an NCHW or NC tensor, and the per-channel spatial size. */
export function chanDims(shape: number[]): { n: number; c: number; hw: number } {
  return { n: shape[0], c: shape[1], hw: shape.length === 4 ? shape[2] * shape[3] : 1 };
}

/** Output shape of max/avg pooling (also the argmax compression of max pooling). */
/** A pooling window's attributes. */
export interface PoolAttrs { k: number; stride: number }

export function poolInfer(t: TensorType[], a: PoolAttrs, op: string): TensorType {
  const x = t[0].shape;
  need(x.length === 4, `${op} expects 4-D input [N, C, H, W], got ${str(x)}`);
  const k = a.k, s = a.stride;
  const oh = poolOutSize(x[2], k, s), ow = poolOutSize(x[3], k, s);
  need(oh > 0 && ow > 0, `${op}: window ${k} is larger than the input ${x[2]}×${x[3]}`);
  return f32([x[0], x[1], oh, ow]);
}
