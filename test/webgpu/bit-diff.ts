/**
 * Bit-for-bit comparison of kernel results, shared by the WebGPU tests, and the small graph the epilogue tests build
 * around one op: its operands and an extra operand y of its output's shape (for post-ops such as add(x,$0)).
 */
import { Attrs, Builder, Graph } from '../../ir/graph.js';
import { getOp } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { HostArray } from '../../runtime/webgpu/run-kernels.js';

/** A NaN's f32 bit pattern (any payload). */
export const isNaNBits = (v: number) => (v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0;

/** The first few elements whose bit patterns differ (any NaN equals any NaN), each with its raw input value. */
export function bitDiff(got: ArrayLike<number>, want: ArrayLike<number>, raw: Float32Array): string[] {
  const a = new Uint32Array(Float32Array.from(got).buffer), b = new Uint32Array(Float32Array.from(want).buffer);
  expect(a.length).toBe(b.length);
  const out: string[] = [];
  for (let i = 0; i < a.length && out.length < 4; i++)
    if (a[i] !== b[i] && !(isNaNBits(a[i]) && isNaNBits(b[i]))) out.push(`[${i}] raw=${raw[i]} got=${got[i]} want=${want[i]}`);
  return out;
}

/** Inputs of `shapes` for op `op` fed from `fill` (size, input index), and an input y of the op's output shape fed from `fillY`. */
export function opOperands(g: Graph, b: Builder, op: string, shapes: number[][], attrs: Attrs, feeds: Map<number, HostArray>,
  fill: (n: number, i: number) => Float32Array, fillY: (n: number) => Float32Array = (n) => fill(n, shapes.length)): { ins: number[]; y: number; yv: Float32Array; outShape: number[] } {
  const ins = shapes.map((shape, i) => {
    const id = b.add('input', [], { name: `x${i}`, kind: 'data', shape, dtype: 'f32' });
    feeds.set(id, fill(numel(shape), i));
    return id;
  });
  const outShape = getOp(op).infer(ins.map((i) => g.nodes[i].type), attrs).shape;
  const y = b.add('input', [], { name: 'y', kind: 'data', shape: outShape, dtype: 'f32' });
  const yv = fillY(numel(outShape));
  feeds.set(y, yv);
  return { ins, y, yv, outShape };
}
