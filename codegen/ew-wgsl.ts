/**
 * WGSL spellings of the elementwise ops (ir/ops/elementwise.ts defines their CPU formulas): one scalar expression per
 * op over its operands' WGSL expressions, used by the elementwise kernels and by post-ops (ir/post.ts) fused into
 * any kernel's store. The same formulas as the CPU's, with constants as f32 (wgslF32), so both compute the same
 * values.
 */
import type { Attrs } from '../ir/graph.js';
import type { PostExpr } from '../ir/post.js';
import { attrsOf, type OpAttrs, type OpName } from '../ir/op-registry.js';

/** A WGSL f32 literal that round-trips the float32 value. */
export function wgslF32(x: number): string {
  const f = Math.fround(x);
  if (!Number.isFinite(f)) throw new Error(`non-finite constant ${x}`);
  const s = String(f);
  return /[.e]/.test(s) ? `${s}f` : `${s}.0f`;
}

type EwWgsl = (v: string[], a: Attrs) => string;
/** The spelling of an op with attributes, which it reads typed by the op's schema. */
const withAttrs = <K extends OpName>(op: K, f: (v: string[], a: OpAttrs[K]) => string): EwWgsl => (v, a) => f(v, attrsOf({ op, attrs: a }, op));

const EW_WGSL: Record<string, EwWgsl> = {
  add: ([a, b]) => `(${a} + ${b})`,
  sub: ([a, b]) => `(${a} - ${b})`,
  mul: ([a, b]) => `(${a} * ${b})`,
  scale: withAttrs('scale', ([a], t) => `(${a} * ${wgslF32(t.c)})`),
  mul_scalar: ([a, s]) => `(${a} * ${s})`,
  div: ([a, b]) => `(${a} / ${b})`,
  div_scalar: ([a, s]) => `(${a} / ${s})`,
  sqrt: ([a]) => `sqrt(${a})`,
  add_const: withAttrs('add_const', ([a], t) => `(${a} + ${wgslF32(t.c)})`),
  relu: ([a]) => `max(${a}, 0.0)`,
  relu_bwd: ([d, x]) => `select(0.0, ${d}, ${x} > 0.0)`,
  // select, not clamp: clamp(NaN) is implementation-defined in WGSL; the CPU's comparisons send NaN to 0
  relu6: ([a]) => `select(select(0.0, 6.0, ${a} >= 6.0), ${a}, ${a} > 0.0 && ${a} < 6.0)`,
  relu6_bwd: ([d, y]) => `select(0.0, ${d}, ${y} > 0.0 && ${y} < 6.0)`,
  // tanh from e = exp(−2|a|), which cannot overflow; below |a| = 0.05 its series (1 − e cancels there)
  tanh: ([a]) => `select(sign(${a}) * (1.0 - exp(-2.0 * abs(${a}))) / (1.0 + exp(-2.0 * abs(${a}))), ${a} * (1.0 - ${a} * ${a} * (0.33333333 - 0.13333333 * ${a} * ${a})), abs(${a}) < 0.05)`,
  tanh_bwd: ([d, y]) => `(${d} * (1.0 - ${y} * ${y}))`,
  sigmoid: ([a]) => `(1.0 / (1.0 + exp(-(${a}))))`,
  sigmoid_bwd: ([d, y]) => `(${d} * ${y} * (1.0 - ${y}))`,
};

/** The WGSL expression of elementwise op `op` applied to the operand expressions `v`. */
export function ewWgsl(op: string, v: string[], attrs: Attrs): string {
  const f = EW_WGSL[op];
  if (!f) throw new Error(`no WGSL spelling for elementwise op '${op}'`);
  return f(v, attrs);
}

/** Whether `op` has a WGSL spelling (every elementwise op of the op table must: test/webgpu/ops.test.ts). */
export function hasEwWgsl(op: string): boolean { return op in EW_WGSL; }

/** WGSL: `e` with `x` = the WGSL f32 expression `x` and `$k` = `arg(k)`. */
export function wgslPost(e: PostExpr, x: string, arg: (k: number) => string): string {
  switch (e.kind) {
    case 'x': return x;
    case 'arg': return arg(e.index);
    case 'op': return ewWgsl(e.op, e.args.map((a) => wgslPost(a, x, arg)), e.attrs);
  }
}
