/**
 * The epilogue every computing op may carry (a quantizer, post-ops, a qpost), and `def`, which registers an op with
 * it (ir/op-registry.ts holds the one registry).
 */
import type { Attrs } from '../graph.js';
import { Arr, OpDef, register } from '../op-registry.js';
import { Format, Rounding } from '../format.js';
import { TensorType, numel, shapeEq } from '../types.js';
import { quantize as quantizeCpu } from '../quant/quantize.js';
import { PostExpr, evalPost, parsePost, postToString, scalarArgs, substituteX } from '../post.js';
import { need, str } from './helpers.js';

/**
 * The quantize epilogue: every computing op may carry `qfmt` (a format) and `qround` (nearest | stochastic), which
 * quantize its result in place — the fusion pass folds a `quantize` node into its producer this way, and the result
 * type then carries the format. Stochastic bits use the producing node's id as tensor id. Sources, views and
 * `quantize` itself take no epilogue.
 */
export const EPILOGUE_ATTRS = { qfmt: 'format', qround: 'string', qrole: 'string', post: 'string', post_args: 'int', qpost: 'string' } as const;
/** `qrole`: the role (A, E, W, …, site:<fwd>/<bwd>) of the quantize node folded in, for diagnostics (--quant-stats). */
/**
 * `qpost`: an expression applied AFTER the quantizer (passes/fuse.ts folds a ReLU, or ReLU's backward, that reads a
 * quantized value: relu(Q(v)) ≠ Q(relu(v)) for block formats, so it cannot be a post-op). x may only pass through
 * ops that keep a value on its grid (so the result keeps the format); `$k` are the node's extra operands, shared
 * with `post`.
 */
export const QPOST_OPS = new Set(['relu', 'relu_bwd']);
const NO_EPILOGUE = new Set(['input', 'state', 'reshape', 'quantize', 'quantize_site', 'minmax_quantize']);

/** Extra inputs a node's post-ops (ir/post.ts) read: they follow the op's own inputs. */
export const postArgs = (a: Attrs) => (a.post_args as number | undefined) ?? 0;

/** Whether `op` may carry a quantize epilogue (fusion asks before folding a quantizer into it). */
export function takesEpilogue(op: string): boolean { return !NO_EPILOGUE.has(op); }

/** A node's quantize epilogue from its attributes, or undefined when it has none (absent or f32). */
export function epilogueOf(attrs: Attrs): { fmt: Format; rounding: Rounding } | undefined {
  const fmt = attrs.qfmt as Format | undefined;
  if (!fmt || fmt.kind === 'f32') return undefined;
  const rounding = (attrs.qround ?? 'nearest') as string;
  if (rounding !== 'nearest' && rounding !== 'stochastic') throw new Error(`unknown rounding '${rounding}'`);
  return { fmt, rounding };
}

/** Registers an op; every computing op also takes the epilogue attributes (quantizer, post-ops, qpost). */
export function def(d: OpDef): void {
  if (NO_EPILOGUE.has(d.name)) { register(d); return; }
  register({
    ...d,
    attrs: { ...d.attrs, ...EPILOGUE_ATTRS },
    optional: [...(d.optional ?? []), ...Object.keys(EPILOGUE_ATTRS)],
    infer: (t, a) => {
      const k = postArgs(a);
      const r = d.infer(k ? t.slice(0, t.length - k) : t, a);
      if (a.post !== undefined) checkPost(a, t.slice(t.length - k), r);
      if (a.qpost !== undefined) { checkQpost(a); checkPost(a, t.slice(t.length - k), r, 'qpost'); }
      return a.qfmt ? { ...r, fmt: a.qfmt as Format } : r;
    },
    cpu: (ins, out, c) => {
      const k = postArgs(c.attrs);
      d.cpu(k ? ins.slice(0, ins.length - k) : ins, out, k ? { ...c, inTypes: c.inTypes.slice(0, ins.length - k) } : c);
      if (c.attrs.post !== undefined) applyPost(c.attrs, ins.slice(ins.length - k), out);
      const q = epilogueOf(c.attrs);
      if (q) {
        const v = Float32Array.from(out), qv = quantizeCpu(v, c.type.shape, q.fmt, q.rounding, c.rng);
        c.onQuantize?.(v, qv);
        out.set(qv);
      }
      if (c.attrs.qpost !== undefined) applyPost(c.attrs, ins.slice(ins.length - k), out, 'qpost');
    },
  });
}

/** Post-ops (ir/post.ts): every extra operand is the result's shape, or [1] where the op reads a scalar. */
function checkPost(a: Attrs, extras: TensorType[], r: TensorType, key: 'post' | 'qpost' = 'post'): void {
  const e = parsePost(a[key] as string), scalars = scalarArgs(e);
  const used = new Set<number>();
  const walk = (x: PostExpr): void => { if (x.kind === 'arg') used.add(x.index); else if (x.kind === 'op') x.args.forEach(walk); };
  walk(e);
  for (const j of used) need(j < extras.length, `${key} reads $${j} but the node has ${extras.length} extra operand(s)`);
  extras.forEach((t, j) => need(!used.has(j) || (scalars.has(j) ? numel(t.shape) === 1 : shapeEq(t.shape, r.shape)),
    `post-op operand $${j} ${str(t.shape)} does not match the result ${str(r.shape)}`));
}
/** The attributes without the quantize epilogue: a qpost (no longer after a quantizer) joins the post-ops. */
export function withoutQuantizer(a: Attrs): Attrs {
  const { qfmt: _f, qround: _r, qrole: _o, qpost, ...rest } = a;
  if (qpost === undefined) return rest;
  const inner: PostExpr = rest.post === undefined ? { kind: 'x' } : parsePost(rest.post as string);
  return { ...rest, post: postToString(substituteX(parsePost(qpost as string), inner)) };
}
function checkQpost(a: Attrs): void {
  need(!!epilogueOf(a), `qpost '${String(a.qpost)}' needs a quantize epilogue (qfmt) to follow`);
  // x flows through grid-keeping ops only; their other operands ($k: relu_bwd's y) only select
  const ok = (e: PostExpr): boolean => e.kind === 'x' ||
    (e.kind === 'op' && QPOST_OPS.has(e.op) && ok(e.args[0]) && e.args.slice(1).every((x) => x.kind === 'arg'));
  need(ok(parsePost(a.qpost as string)), `qpost '${String(a.qpost)}' may only apply ${[...QPOST_OPS].join(', ')} to x (other operands: $k)`);
}
/** Post-ops (or the qpost) applied in place, each step rounded to f32 when the values are f32 (as separate kernels would). */
function applyPost(a: Attrs, extras: Arr[], out: Arr, key: 'post' | 'qpost' = 'post'): void {
  const e = parsePost(a[key] as string), scalars = scalarArgs(e);
  const round = out instanceof Float32Array ? Math.fround : (v: number) => v;
  const args = new Array<number>(extras.length);
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < extras.length; j++) args[j] = scalars.has(j) ? extras[j][0] : extras[j][i];
    out[i] = evalPost(e, out[i], args, round);
  }
}
