import { Format, F32, formatToString } from './format.js';

/** Source location of the DSL call that made a node (1-based line and column). */
export interface Loc { file: string; line: number; col: number }

/** u32: packed words (compressed saved activations, passes/compress.ts). */
export type DType = 'f32' | 'i32' | 'u32';

/** `tensor<[N,C,H,W], f32, fmt>`: shape includes the batch dimension; fmt is the value format (f32 = unquantized). */
export interface TensorType { shape: number[]; dtype: DType; fmt: Format }

export function tensorType(shape: number[], dtype: DType = 'f32', fmt: Format = F32): TensorType {
  return { shape: [...shape], dtype, fmt };
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function typeToString(t: TensorType): string {
  const fmt = t.fmt.kind === 'f32' ? '' : `, ${formatToString(t.fmt)}`;
  return `tensor<[${t.shape.join(',')}], ${t.dtype}${fmt}>`;
}

export function locToString(l: Loc): string {
  return `${l.file}:${l.line}:${l.col}`;
}

export function shapeEq(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** An error that points at a place in the user's source (or IR text). Printed as `file:line:col: message`. */
export class LocatedError extends Error {
  constructor(public readonly loc: Loc | undefined, public readonly detail: string) {
    super(loc ? `${locToString(loc)}: ${detail}` : detail);
    this.name = 'LocatedError';
  }
}
