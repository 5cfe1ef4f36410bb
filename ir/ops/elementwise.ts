/**
 * Elementwise ops: one scalar formula (`ew.cpu`) per op, shared by the CPU interpreter and the post-op evaluator
 * (ir/post.ts); codegen/ew-wgsl.ts spells each in WGSL. And dropout.
 */
import type { AttrSchema, AttrsOf, GradCtx } from '../op-registry.js';
import { def } from './epilogue.js';
import { f32, need, str } from './helpers.js';
import { TensorType, numel, shapeEq } from '../types.js';
import { randomBitsArray } from '../quant/rng.js';

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const DROPOUT = { p: 'float', key: 'int' } as const;
const CONST = { c: 'float' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    dropout: AttrsOf<typeof DROPOUT>; scale: AttrsOf<typeof CONST>; add_const: AttrsOf<typeof CONST>;
  }
}

// ---------- elementwise ----------
function ewInfer(t: TensorType[], scalarInputs: number[] = []): TensorType {
  const main = t.filter((_, i) => !scalarInputs.includes(i));
  for (const x of main) need(shapeEq(x.shape, main[0].shape), `shape mismatch: ${str(main[0].shape)} vs ${str(x.shape)}`);
  for (const i of scalarInputs) need(numel(t[i].shape) === 1, `expected a scalar [1], got ${str(t[i].shape)}`);
  return f32(main[0].shape);
}
export function defEw<const S extends AttrSchema = {}>(
  name: string, arity: number, ew: { cpu(v: number[], a: AttrsOf<S>): number; scalarInputs?: number[] },
  grad?: (g: GradCtx<AttrsOf<S>>) => (number | null)[], attrs: S = {} as S,
): void {
  def<S>({
    name, arity, attrs, ew, grad,
    infer: (t) => ewInfer(t, ew.scalarInputs),
    cpu: (ins, out, c) => {
      const s = ew.scalarInputs ?? [];
      const v = new Array<number>(ins.length);
      for (let i = 0; i < out.length; i++) {
        for (let k = 0; k < ins.length; k++) v[k] = s.includes(k) ? ins[k][0] : ins[k][i];
        out[i] = ew.cpu(v, c.attrs);
      }
    },
  });
}
defEw('add', 2, { cpu: ([a, b]) => a + b }, (g) => [g.dy, g.dy]);
defEw('sub', 2, { cpu: ([a, b]) => a - b }, (g) => [g.dy, g.add('scale', [g.dy], { c: -1 })]);
defEw('mul', 2, { cpu: ([a, b]) => a * b },
  (g) => [g.add('mul', [g.dy, g.x[1]]), g.add('mul', [g.dy, g.x[0]])]);
defEw('scale', 1, { cpu: ([a], t) => a * t.c },
  (g) => [g.add('scale', [g.dy], { c: g.attrs.c })], CONST);
defEw('mul_scalar', 2, { cpu: ([a, s]) => a * s, scalarInputs: [1] });
// the optimizers' arithmetic (Adam): constants are f32 (codegen/ew-wgsl.ts wgslF32), so CPU and WGSL multiply/add the same values
defEw('div', 2, { cpu: ([a, b]) => a / b });
defEw('div_scalar', 2, { cpu: ([a, s]) => a / s, scalarInputs: [1] });
defEw('sqrt', 1, { cpu: ([a]) => Math.sqrt(a) });
defEw('add_const', 1, { cpu: ([a], t) => a + Math.fround(t.c) }, undefined, CONST);
// relu_bwd reads relu's output (y > 0 exactly where x > 0), so relu's input can fold relu into its producer
defEw('relu', 1, { cpu: ([a]) => (a > 0 ? a : 0) }, (g) => [g.add('relu_bwd', [g.dy, g.y])]);
defEw('relu_bwd', 2, { cpu: ([d, x]) => (x > 0 ? d : 0) });
// relu6 = hardtanh(0, 6) (torch.nn.ReLU6); its backward passes the error where 0 < x < 6, i.e. where 0 < y < 6
defEw('relu6', 1, { cpu: ([a]) => (a > 0 ? (a < 6 ? a : 6) : 0) }, (g) => [g.add('relu6_bwd', [g.dy, g.y])]);
defEw('relu6_bwd', 2, { cpu: ([d, y]) => (y > 0 && y < 6 ? d : 0) });

// ---------- dropout ----------
/** The random stream of dropout `key` (quantizers use their node ids, far below). */
export const DROPOUT_STREAM = 0x40000000;
/** Keep element i when the top 24 of its random bits are ≥ this: P(drop) = p to 2^-24. */
export const dropoutThreshold = (p: number) => Math.floor(p * 16777216);
/**
 * Dropout in training (the DSL emits nothing in evaluation): element i is kept when the top 24 of
 * randomBits(seed, step, DROPOUT_STREAM + key, i) are ≥ p·2^24, then scaled by 1/(1 − p) in f32 (torch.nn.Dropout).
 * Its gradient is the same op on the error: the same bits, so the same mask.
 */
def({
  name: 'dropout', arity: 1, attrs: DROPOUT,
  infer: (t, a) => {
    need(a.p >= 0 && a.p < 1, `dropout p must be in [0, 1), got ${a.p}`);
    return f32(t[0].shape);
  },
  cpu: (ins, out, c) => {
    const p = c.attrs.p, thr = dropoutThreshold(p), scale = Math.fround(1 / (1 - p));
    const r = randomBitsArray(c.rng.seed >>> 0, c.rng.step >>> 0, (DROPOUT_STREAM + c.attrs.key) >>> 0, out.length);
    const round = out instanceof Float32Array ? Math.fround : (v: number) => v;
    for (let i = 0; i < out.length; i++) out[i] = (r[i] >>> 8) >= thr ? round(ins[0][i] * scale) : 0;
  },
  grad: (g) => [g.add('dropout', [g.dy], { p: g.attrs.p, key: g.attrs.key })],
});
