/**
 * The meaning of the epilogue every computing op may carry (ir/epilogue.ts: post-ops, a quantizer, a qpost), and
 * `def`, which registers an op with it (ir/op-registry.ts holds the one registry).
 */
import { Arr, AttrSchema, AttrsOf, CpuCtx, GradCtx, OpDef, register } from '../op-registry.js';
import type { TensorType as T } from '../types.js';
import { TensorType, numel, shapeEq } from '../types.js';
import { quantize as quantizeCpu } from '../quant/quantize.js';
import { PostExpr, evalPost, postToString, scalarArgs } from '../post.js';
import { Epilogue, postArgs, quantOf } from '../epilogue.js';
import { need, str } from './helpers.js';

/**
 * The quantizer (`q`): every computing op may quantize its result in place — the fusion pass folds a `quantize` node
 * into its producer this way, and the result type then carries the format. Stochastic bits use the producing node's
 * id as tensor id. Sources, views and `quantize` itself take no epilogue.
 *
 * `qpost`: an expression applied AFTER the quantizer (passes/fuse.ts folds a ReLU or ReLU6, or either's backward,
 * that reads a quantized value: relu(Q(v)) ≠ Q(relu(v)) for block formats, so it cannot be a post-op). x may only
 * pass through these ops; the fusion pass folds one only where it keeps the quantizer's grid (ir/quant/grid.ts: the
 * result keeps the format, as the type says — relu6 of a bfp<8> value, not of an MX E4M3 or minmax one). `$k` are
 * the node's extra operands, shared with `post`.
 */
export const QPOST_OPS = new Set(['relu', 'relu_bwd', 'relu6', 'relu6_bwd']);
const NO_EPILOGUE = new Set(['input', 'state', 'reshape', 'quantize', 'quantize_site', 'minmax_quantize']);

/** Whether `op` may carry an epilogue (fusion asks before folding into it; the verifier and parser check it). */
export function takesEpilogue(op: string): boolean { return !NO_EPILOGUE.has(op); }

/**
 * An op definition whose rules see its attributes typed by its schema `attrs` (optional ones: `optional`), as
 * `def` takes it: `def({ name: 'conv2d', attrs: CONV2D, infer: (t, a) => … a.pad … })`.
 */
export interface TypedOpDef<S extends AttrSchema, O extends keyof S & string> {
  name: string;
  arity: OpDef['arity'];
  attrs: S;
  optional?: readonly O[];
  infer(inTypes: T[], attrs: AttrsOf<S, O>): T;
  cpu(ins: Arr[], out: Arr, c: CpuCtx<AttrsOf<S, O>>): void;
  grad?(g: GradCtx<AttrsOf<S, O>>): (number | null)[];
  ew?: { cpu(v: number[], a: AttrsOf<S, O>): number; scalarInputs?: number[] };
}

/** Registers an op; every computing op also takes an epilogue (quantizer, post-ops, qpost). */
export function def<const S extends AttrSchema, const O extends keyof S & string = never>(typed: TypedOpDef<S, O>): void {
  // the one place typed rules meet untyped attributes: the verifier and the IR parser check every node's against `attrs`
  const d = { ...typed, attrs: { ...typed.attrs }, optional: typed.optional && [...typed.optional] } as unknown as OpDef;
  if (!d.optional) delete d.optional;
  if (NO_EPILOGUE.has(d.name)) { register(d); return; }
  register({
    ...d,
    infer: (t, a, e) => {
      const k = postArgs(e);
      const r = d.infer(k ? t.slice(0, t.length - k) : t, a);
      if (!e) return r;
      need(Number.isInteger(e.args) && e.args >= 0, `epilogue args must be a non-negative integer, got ${e.args}`);
      if (e.post) checkPost(e.post, t.slice(t.length - k), r, 'post');
      if (e.qpost) { checkQpost(e); checkPost(e.qpost, t.slice(t.length - k), r, 'qpost'); }
      return e.q ? { ...r, fmt: e.q.fmt } : r;
    },
    cpu: (ins, out, c) => {
      const e = c.epi, k = postArgs(e);
      d.cpu(k ? ins.slice(0, ins.length - k) : ins, out, k ? { ...c, inTypes: c.inTypes.slice(0, ins.length - k) } : c);
      if (!e) return;
      if (e.post) applyPost(e.post, ins.slice(ins.length - k), out);
      const q = quantOf(e);
      if (q) {
        const v = Float32Array.from(out), qv = quantizeCpu(v, c.type.shape, q.fmt, q.rounding, c.rng);
        c.onQuantize?.(v, qv);
        out.set(qv);
      }
      if (e.qpost) applyPost(e.qpost, ins.slice(ins.length - k), out);
    },
  });
}

/** Post-ops (ir/post.ts): every extra operand is the result's shape, or [1] where the op reads a scalar. */
function checkPost(e: PostExpr, extras: TensorType[], r: TensorType, key: 'post' | 'qpost'): void {
  const scalars = scalarArgs(e);
  const used = new Set<number>();
  const walk = (x: PostExpr): void => { if (x.kind === 'arg') used.add(x.index); else if (x.kind === 'op') x.args.forEach(walk); };
  walk(e);
  for (const j of used) need(j < extras.length, `${key} reads $${j} but the node has ${extras.length} extra operand(s)`);
  extras.forEach((t, j) => need(!used.has(j) || (scalars.has(j) ? numel(t.shape) === 1 : shapeEq(t.shape, r.shape)),
    `post-op operand $${j} ${str(t.shape)} does not match the result ${str(r.shape)}`));
}
function checkQpost(e: Epilogue): void {
  const text = postToString(e.qpost!);
  need(!!quantOf(e), `qpost '${text}' needs a quantizer (q) to follow`);
  // x flows through grid-keeping ops only; their other operands ($k: relu_bwd's y) only select
  const ok = (x: PostExpr): boolean => x.kind === 'x' ||
    (x.kind === 'op' && QPOST_OPS.has(x.op) && ok(x.args[0]) && x.args.slice(1).every((y) => y.kind === 'arg'));
  need(ok(e.qpost!), `qpost '${text}' may only apply ${[...QPOST_OPS].join(', ')} to x (other operands: $k)`);
}
/** Post-ops (or the qpost) applied in place, each step rounded to f32 when the values are f32 (as separate kernels would). */
function applyPost(e: PostExpr, extras: Arr[], out: Arr): void {
  const scalars = scalarArgs(e);
  const round = out instanceof Float32Array ? Math.fround : (v: number) => v;
  const args = new Array<number>(extras.length);
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < extras.length; j++) args[j] = scalars.has(j) ? extras[j][0] : extras[j][i];
    out[i] = evalPost(e, out[i], args, round);
  }
}
