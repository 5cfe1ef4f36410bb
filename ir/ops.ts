/**
 * The op table: every op's arity, attribute schema, shape rule, CPU semantics and gradient rule, one entry per op.
 * The CPU semantics here are the living spec: the WGSL kernels in codegen/ must match them.
 * Layouts are PyTorch's: activations NCHW, conv weights [O,C,KH,KW], linear weights [O,K].
 */
import type { Attrs } from './graph.js';
import { Arr, AttrKind, CpuCtx, OpDef, register, wgslF32 } from './op-registry.js';
// the registry is its own module so that post.ts can look ops up without importing this file (no import cycle)
export type { Arr, AttrKind, CpuCtx, GradCtx, OpDef } from './op-registry.js';
export { allOps, getOp, wgslF32 } from './op-registry.js';
import { Format, F32, Rounding, formatToString } from './format.js';
import { TensorType, numel, shapeEq, tensorType } from './types.js';
import { quantize as quantizeCpu } from './quant/quantize.js';
import { randomBitsArray } from './quant/rng.js';
import { PostExpr, evalPost, parsePost, postToString, scalarArgs, substituteX } from './post.js';
import { MinmaxFormat, minmaxBits, minmaxQparams, minmaxRunningUpdate, quantizeMinmaxWith } from './quant/minmax.js';
import { argmaxCompress, divisionCompress, divisionDecompress, divisionLayout, maskCompress } from './quant/division.js';
import { formatCompress, formatDecompress, saveFormatError, saveWords } from './quant/save.js';


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

function def(d: OpDef): void {
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


// ---------- shape helpers ----------
const f32 = (shape: number[], fmt: Format = F32) => tensorType(shape, 'f32', fmt);
function need(cond: boolean, msg: string): void { if (!cond) throw new Error(msg); }
const str = (s: number[]) => `[${s.join(', ')}]`;
const int = (a: Attrs, k: string) => a[k] as number;

export function convOutSize(h: number, k: number, stride: number, pad: number): number {
  return Math.floor((h + 2 * pad - k) / stride) + 1;
}
export function poolOutSize(h: number, k: number, stride: number): number {
  return Math.floor((h - k) / stride) + 1;
}
/** Channels of an NCHW or NC tensor, and the per-channel spatial size. */
function chanDims(shape: number[]): { n: number; c: number; hw: number } {
  return { n: shape[0], c: shape[1], hw: shape.length === 4 ? shape[2] * shape[3] : 1 };
}

// ---------- sources ----------
def({
  // kind 'bias_correction' / 'bias_correction_sqrt' with `beta`: computed by the runtime from the step (ir/step-inputs.ts)
  name: 'input', arity: 0, attrs: { name: 'string', kind: 'string', shape: 'ints', dtype: 'string', beta: 'float' }, optional: ['beta'],
  infer: (_t, a) => tensorType(a.shape as number[], a.dtype as 'f32' | 'i32'),
  cpu: () => { throw new Error('input is fed by the runtime'); },
});
/** Persistent state: parameters, buffers (BN running stats), optimizer state. Initialised by the runtime from `init`. */
def({
  name: 'state', arity: 0, attrs: { name: 'string', kind: 'string', shape: 'ints', init: 'string', bound: 'float', std: 'float' },
  optional: ['bound', 'std'],
  infer: (_t, a) => f32(a.shape as number[]),
  cpu: () => { throw new Error('state is held by the runtime'); },
});
def({
  name: 'fill', arity: 0, attrs: { shape: 'ints', value: 'float' },
  infer: (_t, a) => f32(a.shape as number[]),
  cpu: (_i, out, c) => out.fill(c.attrs.value as number),
});

// ---------- elementwise ----------
function ewInfer(t: TensorType[], scalarInputs: number[] = []): TensorType {
  const main = t.filter((_, i) => !scalarInputs.includes(i));
  for (const x of main) need(shapeEq(x.shape, main[0].shape), `shape mismatch: ${str(main[0].shape)} vs ${str(x.shape)}`);
  for (const i of scalarInputs) need(numel(t[i].shape) === 1, `expected a scalar [1], got ${str(t[i].shape)}`);
  return f32(main[0].shape);
}
function defEw(name: string, arity: number, ew: NonNullable<OpDef['ew']>, grad?: OpDef['grad'], attrs: Record<string, AttrKind> = {}): void {
  def({
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
defEw('add', 2, { cpu: ([a, b]) => a + b, wgsl: ([a, b]) => `(${a} + ${b})` }, (g) => [g.dy, g.dy]);
defEw('sub', 2, { cpu: ([a, b]) => a - b, wgsl: ([a, b]) => `(${a} - ${b})` }, (g) => [g.dy, g.add('scale', [g.dy], { c: -1 })]);
defEw('mul', 2, { cpu: ([a, b]) => a * b, wgsl: ([a, b]) => `(${a} * ${b})` },
  (g) => [g.add('mul', [g.dy, g.x[1]]), g.add('mul', [g.dy, g.x[0]])]);
defEw('scale', 1, { cpu: ([a], t) => a * (t.c as number), wgsl: ([a], t) => `(${a} * ${wgslF32(t.c as number)})` },
  (g) => [g.add('scale', [g.dy], { c: g.attrs.c })], { c: 'float' });
defEw('mul_scalar', 2, { cpu: ([a, s]) => a * s, wgsl: ([a, s]) => `(${a} * ${s})`, scalarInputs: [1] });
// the optimizers' arithmetic (Adam): constants are f32 (wgslF32), so CPU and WGSL multiply/add the same values
defEw('div', 2, { cpu: ([a, b]) => a / b, wgsl: ([a, b]) => `(${a} / ${b})` });
defEw('div_scalar', 2, { cpu: ([a, s]) => a / s, wgsl: ([a, s]) => `(${a} / ${s})`, scalarInputs: [1] });
defEw('sqrt', 1, { cpu: ([a]) => Math.sqrt(a), wgsl: ([a]) => `sqrt(${a})` });
defEw('add_const', 1, { cpu: ([a], t) => a + Math.fround(t.c as number), wgsl: ([a], t) => `(${a} + ${wgslF32(t.c as number)})` }, undefined, { c: 'float' });
// relu_bwd reads relu's output (y > 0 exactly where x > 0), so relu's input can fold relu into its producer
defEw('relu', 1, { cpu: ([a]) => (a > 0 ? a : 0), wgsl: ([a]) => `max(${a}, 0.0)` }, (g) => [g.add('relu_bwd', [g.dy, g.y])]);
defEw('relu_bwd', 2, { cpu: ([d, x]) => (x > 0 ? d : 0), wgsl: ([d, x]) => `select(0.0, ${d}, ${x} > 0.0)` });

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
  name: 'dropout', arity: 1, attrs: { p: 'float', key: 'int' },
  infer: (t, a) => {
    need((a.p as number) >= 0 && (a.p as number) < 1, `dropout p must be in [0, 1), got ${a.p}`);
    return f32(t[0].shape);
  },
  cpu: (ins, out, c) => {
    const p = c.attrs.p as number, thr = dropoutThreshold(p), scale = Math.fround(1 / (1 - p));
    const r = randomBitsArray(c.rng.seed >>> 0, c.rng.step >>> 0, (DROPOUT_STREAM + (c.attrs.key as number)) >>> 0, out.length);
    const round = out instanceof Float32Array ? Math.fround : (v: number) => v;
    for (let i = 0; i < out.length; i++) out[i] = (r[i] >>> 8) >= thr ? round(ins[0][i] * scale) : 0;
  },
  grad: (g) => [g.add('dropout', [g.dy], { p: g.attrs.p, key: g.attrs.key })],
});


// ---------- reshape ----------
def({
  name: 'reshape', arity: 1, attrs: { shape: 'ints' },
  infer: (t, a) => {
    const s = a.shape as number[];
    need(numel(s) === numel(t[0].shape), `cannot reshape ${str(t[0].shape)} to ${str(s)}`);
    return tensorType(s, t[0].dtype, t[0].fmt);
  },
  cpu: (ins, out) => out.set(ins[0]),
  grad: (g) => [g.add('reshape', [g.dy], { shape: g.inTypes[0].shape })],
});

// ---------- quantize (a format is part of the result type) ----------
/**
 * QPyTorch's Quantizer: the forward value to `fmt` (f32: identity) and, straight through, the error on the way back
 * to `bwd_fmt` (absent: identity). `role` says which policy role placed it (A, E, G, M, ACC, W).
 */
def({
  name: 'quantize', arity: 1,
  attrs: { fmt: 'format', rounding: 'string', role: 'string', bwd_fmt: 'format', bwd_rounding: 'string' },
  optional: ['bwd_fmt', 'bwd_rounding'],
  infer: (t, a) => {
    // a per-axis block format placed by a role on a tensor without that axis: say which role and format
    for (const [f, role] of [[a.fmt, a.role], [a.bwd_fmt, 'E']] as [Format | undefined, string][])
      if (f?.kind === 'bfp' && typeof f.axis === 'number')
        need(f.axis < t[0].shape.length, `precision ${role}=${formatToString(f)}: axis ${f.axis} does not exist in a tensor of shape ${str(t[0].shape)}`);
    return f32(t[0].shape, a.fmt as Format);
  },
  cpu: (ins, out, c) => {
    const q = quantizeCpu(Float32Array.from(ins[0]), c.inTypes[0].shape, c.attrs.fmt as Format,
      c.attrs.rounding as 'nearest' | 'stochastic', c.rng);
    c.onQuantize?.(ins[0], q);
    out.set(q);
  },
  grad: (g) => [g.attrs.bwd_fmt
    ? g.add('quantize', [g.dy], { fmt: g.attrs.bwd_fmt, rounding: g.attrs.bwd_rounding ?? 'nearest', role: 'E' })
    : g.dy],
});

/**
 * An explicit quantizer site from the DSL's `quantize(x, 'low')`: forward class `fwd`, backward class `bwd` (either
 * absent: identity that way). The quantize pass (passes/quantize.ts) turns it into a `quantize` node with the
 * precision spec's formats for those classes, before autodiff, so no later pass sees one.
 */
def({
  name: 'quantize_site', arity: 1, attrs: { fwd: 'string', bwd: 'string' }, optional: ['fwd', 'bwd'],
  infer: (t) => f32(t[0].shape, t[0].fmt),
  cpu: (ins, out) => out.set(ins[0]),
  grad: (g) => [g.dy],
});

// ---------- CPT's activation quantizer with running qparams (ir/quant/minmax.ts, passes/quantize.ts) ----------
const minmaxTensorFmt = (a: Attrs, op: string): MinmaxFormat => {
  const f = a.fmt as Format;
  need(f?.kind === 'minmax' && f.per === 'tensor', `${op}: fmt must be a per-tensor minmax format (got ${f ? formatToString(f) : 'none'})`);
  return f as MinmaxFormat;
};
/** [zero_point, range] = [min, max − min] of the whole tensor (CPT's calculate_qparams; not differentiated). */
def({
  name: 'minmax_qparams', arity: 1, attrs: {},
  infer: () => f32([2]),
  cpu: (ins, out) => out.set(minmaxQparams(ins[0])),
});
/** QuantMeasure's running buffers [zero_point, range]: r ← (1−m)·r + m·batch in f32; unchanged when the width of
 *  `fmt` (the activation format, scheduled or not) is 0 — CPT's conv then skips its quantizer altogether. */
def({
  name: 'minmax_running_update', arity: 2, attrs: { momentum: 'float', fmt: 'format' },
  infer: (t, a) => {
    minmaxTensorFmt(a, 'minmax_running_update');
    need(numel(t[0].shape) === 2 && numel(t[1].shape) === 2, `minmax_running_update expects [2] running and batch qparams, got ${str(t[0].shape)} and ${str(t[1].shape)}`);
    return f32(t[0].shape);
  },
  cpu: (ins, out, c) => {
    if (minmaxBits(c.attrs.fmt as MinmaxFormat, c.rng) === 0) out.set(ins[0]);
    else minmaxRunningUpdate(ins[0], ins[1], c.attrs.momentum as number, out);
  },
});
/** x quantized per tensor with given qparams [zero_point, range] (CPT's eval mode: the running buffers), to the
 *  per-tensor minmax `fmt`; straight-through gradient. */
def({
  name: 'minmax_quantize', arity: 2, attrs: { fmt: 'format', rounding: 'string' },
  infer: (t, a) => {
    const f = minmaxTensorFmt(a, 'minmax_quantize');
    need(numel(t[1].shape) === 2, `minmax_quantize expects qparams [2] (zero point, range), got ${str(t[1].shape)}`);
    need(a.rounding === 'nearest' || a.rounding === 'stochastic', `minmax_quantize: rounding must be nearest or stochastic (got ${String(a.rounding)})`);
    return f32(t[0].shape, f);
  },
  cpu: (ins, out, c) => {
    const q = quantizeMinmaxWith(ins[0], ins[1], c.attrs.fmt as MinmaxFormat, c.attrs.rounding === 'stochastic', c.rng);
    c.onQuantize?.(ins[0], q);
    out.set(q);
  },
  grad: (g) => [g.dy, null],
});

// ---------- dense ----------
/** y = x·Wᵀ + b, x [N,K], W [O,K], b [O]. */
def({
  name: 'linear', arity: [2, 3], attrs: {},
  infer: (t) => {
    need(t[0].shape.length === 2, `linear expects 2-D input [N, K], got ${str(t[0].shape)}`);
    need(t[1].shape[1] === t[0].shape[1], `linear: input has ${t[0].shape[1]} features but the weight expects ${t[1].shape[1]}`);
    if (t[2]) need(t[2].shape[0] === t[1].shape[0], `linear: bias ${str(t[2].shape)} does not match ${t[1].shape[0]} outputs`);
    return f32([t[0].shape[0], t[1].shape[0]]);
  },
  cpu: (ins, out, c) => {
    const [x, w, b] = ins;
    const [N, K] = c.inTypes[0].shape, O = c.inTypes[1].shape[0];
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        let s = b ? b[o] : 0;
        for (let k = 0; k < K; k++) s += x[n * K + k] * w[o * K + k];
        out[n * O + o] = s;
      }
  },
  grad: (g) => [
    g.add('matmul', [g.dy, g.x[1]], { ta: false, tb: false }),
    g.add('matmul', [g.dy, g.x[0]], { ta: true, tb: false }),
    ...(g.x[2] !== undefined ? [g.add('sum_channel', [g.dy])] : []),
  ],
});
/** C = op(A)·op(B), op = transpose when ta/tb. */
def({
  name: 'matmul', arity: 2, attrs: { ta: 'bool', tb: 'bool' },
  infer: (t, a) => {
    const [m, k1] = a.ta ? [t[0].shape[1], t[0].shape[0]] : t[0].shape;
    const [k2, n] = a.tb ? [t[1].shape[1], t[1].shape[0]] : t[1].shape;
    need(k1 === k2, `matmul inner dimensions differ: ${k1} vs ${k2}`);
    return f32([m, n]);
  },
  cpu: (ins, out, c) => {
    const [A, B] = ins, ta = !!c.attrs.ta, tb = !!c.attrs.tb;
    const [M, N] = c.type.shape, K = ta ? c.inTypes[0].shape[0] : c.inTypes[0].shape[1];
    const lda = c.inTypes[0].shape[1], ldb = c.inTypes[1].shape[1];
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
        out[i * N + j] = s;
      }
  },
});
/** Sum over every axis but 1 (bias gradients of linear [N,O] and conv [N,C,H,W]). */
def({
  name: 'sum_channel', arity: 1, attrs: {},
  infer: (t) => f32([t[0].shape[1]]),
  cpu: (ins, out, c) => {
    const { n, c: C, hw } = chanDims(c.inTypes[0].shape);
    for (let ch = 0; ch < C; ch++) {
      let s = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) s += ins[0][(i * C + ch) * hw + p];
      out[ch] = s;
    }
  },
});

/** Row `index` of a [R, C] value (the rows of bn_bwd_sums are BN's parameter gradients). */
def({
  name: 'row', arity: 1, attrs: { index: 'int' },
  infer: (t, a) => {
    const i = int(a, 'index');
    need(t[0].shape.length === 2 && i >= 0 && i < t[0].shape[0], `row ${i} of ${str(t[0].shape)}: expected a 2-D value with more than ${i} rows`);
    return f32([t[0].shape[1]]);
  },
  cpu: (ins, out, c) => {
    const C = c.type.shape[0], i = c.attrs.index as number;
    for (let k = 0; k < C; k++) out[k] = ins[0][i * C + k];
  },
});

// ---------- convolution ----------
def({
  name: 'conv2d', arity: [2, 3], attrs: { stride: 'int', pad: 'int' },
  infer: (t, a) => {
    const [x, w, b] = t;
    need(x.shape.length === 4, `conv2d expects 4-D input [N, C, H, W], got ${str(x.shape)}`);
    need(w.shape[1] === x.shape[1], `conv2d: input has ${x.shape[1]} channels but the weight expects ${w.shape[1]}`);
    if (b) need(b.shape[0] === w.shape[0], `conv2d: bias ${str(b.shape)} does not match ${w.shape[0]} output channels`);
    const oh = convOutSize(x.shape[2], w.shape[2], int(a, 'stride'), int(a, 'pad'));
    const ow = convOutSize(x.shape[3], w.shape[3], int(a, 'stride'), int(a, 'pad'));
    need(oh > 0 && ow > 0, `conv2d: kernel ${w.shape[2]}×${w.shape[3]} is larger than the padded input ${x.shape[2]}×${x.shape[3]}`);
    return f32([x.shape[0], w.shape[0], oh, ow]);
  },
  cpu: (ins, out, c) => {
    const [x, w, b] = ins;
    const [N, C, H, W] = c.inTypes[0].shape, [O, , KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.type.shape;
    const s = int(c.attrs, 'stride'), p = int(c.attrs, 'pad');
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      let acc = b ? b[o] : 0;
      for (let ci = 0; ci < C; ci++) for (let ky = 0; ky < KH; ky++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < KW; kx++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          acc += x[((n * C + ci) * H + iy) * W + ix] * w[((o * C + ci) * KH + ky) * KW + kx];
        }
      }
      out[((n * O + o) * OH + oy) * OW + ox] = acc;
    }
  },
  grad: (g) => [
    g.add('conv2d_bwd_data', [g.dy, g.x[1]], { stride: g.attrs.stride, pad: g.attrs.pad, in_hw: g.inTypes[0].shape.slice(2) }),
    g.add('conv2d_bwd_weight', [g.dy, g.x[0]], { stride: g.attrs.stride, pad: g.attrs.pad, k_hw: g.inTypes[1].shape.slice(2) }),
    ...(g.x[2] !== undefined ? [g.add('sum_channel', [g.dy])] : []),
  ],
});
/** dx[n,c,iy,ix] = Σ_{o,ky,kx} dy[n,o,oy,ox]·w[o,c,ky,kx] where iy = oy·s − p + ky. */
def({
  name: 'conv2d_bwd_data', arity: 2, attrs: { stride: 'int', pad: 'int', in_hw: 'ints' },
  infer: (t, a) => f32([t[0].shape[0], t[1].shape[1], ...(a.in_hw as number[])]),
  cpu: (ins, out, c) => {
    const [dy, w] = ins;
    const [N, C, H, W] = c.type.shape, [O, , KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.inTypes[0].shape;
    const s = int(c.attrs, 'stride'), p = int(c.attrs, 'pad');
    out.fill(0);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const d = dy[((n * O + o) * OH + oy) * OW + ox];
      for (let ci = 0; ci < C; ci++) for (let ky = 0; ky < KH; ky++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < KW; kx++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          out[((n * C + ci) * H + iy) * W + ix] += d * w[((o * C + ci) * KH + ky) * KW + kx];
        }
      }
    }
  },
});
/** dw[o,c,ky,kx] = Σ_{n,oy,ox} dy[n,o,oy,ox]·x[n,c,oy·s−p+ky,ox·s−p+kx]. */
def({
  name: 'conv2d_bwd_weight', arity: 2, attrs: { stride: 'int', pad: 'int', k_hw: 'ints' },
  infer: (t, a) => f32([t[0].shape[1], t[1].shape[1], ...(a.k_hw as number[])]),
  cpu: (ins, out, c) => {
    const [dy, x] = ins;
    const [N, C, H, W] = c.inTypes[1].shape, [O, , KH, KW] = c.type.shape, [, , OH, OW] = c.inTypes[0].shape;
    const s = int(c.attrs, 'stride'), p = int(c.attrs, 'pad');
    for (let o = 0; o < O; o++) for (let ci = 0; ci < C; ci++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      let acc = 0;
      for (let n = 0; n < N; n++) for (let oy = 0; oy < OH; oy++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let ox = 0; ox < OW; ox++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          acc += dy[((n * O + o) * OH + oy) * OW + ox] * x[((n * C + ci) * H + iy) * W + ix];
        }
      }
      out[((o * C + ci) * KH + ky) * KW + kx] = acc;
    }
  },
});

// ---------- pooling ----------
function poolInfer(t: TensorType[], a: Attrs, op: string): TensorType {
  const x = t[0].shape;
  need(x.length === 4, `${op} expects 4-D input [N, C, H, W], got ${str(x)}`);
  const k = int(a, 'k'), s = int(a, 'stride');
  const oh = poolOutSize(x[2], k, s), ow = poolOutSize(x[3], k, s);
  need(oh > 0 && ow > 0, `${op}: window ${k} is larger than the input ${x[2]}×${x[3]}`);
  return f32([x[0], x[1], oh, ow]);
}
/** Max pooling; ties go to the first element in row-major window order (as PyTorch). */
def({
  name: 'maxpool', arity: 1, attrs: { k: 'int', stride: 'int' },
  infer: (t, a) => poolInfer(t, a, 'maxPool'),
  cpu: (ins, out, c) => poolCpu(ins[0], out, c, (x, base, W, k) => {
    let m = -Infinity;
    for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) { const v = x[base + ky * W + kx]; if (v > m) m = v; }
    return m;
  }),
  grad: (g) => [g.add('maxpool_bwd', [g.dy, g.x[0]], { k: g.attrs.k, stride: g.attrs.stride })],
});
def({
  name: 'avgpool', arity: 1, attrs: { k: 'int', stride: 'int' },
  infer: (t, a) => poolInfer(t, a, 'avgPool'),
  cpu: (ins, out, c) => poolCpu(ins[0], out, c, (x, base, W, k) => {
    let s = 0;
    for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) s += x[base + ky * W + kx];
    return s / (k * k);
  }),
  grad: (g) => [g.add('avgpool_bwd', [g.dy], { k: g.attrs.k, stride: g.attrs.stride, in_hw: g.inTypes[0].shape.slice(2) })],
});
function poolCpu(x: Arr, out: Arr, c: CpuCtx, win: (x: Arr, base: number, W: number, k: number) => number): void {
  const [N, C, H, W] = c.inTypes[0].shape, [, , OH, OW] = c.type.shape;
  const k = int(c.attrs, 'k'), s = int(c.attrs, 'stride');
  for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++)
    out[(nc * OH + oy) * OW + ox] = win(x, (nc * H + oy * s) * W + ox * s, W, k);
}
/** Routes each output gradient to the argmax of its window (first max in row-major order). */
def({
  name: 'maxpool_bwd', arity: 2, attrs: { k: 'int', stride: 'int' },
  infer: (t) => f32(t[1].shape),
  cpu: (ins, out, c) => {
    const [dy, x] = ins;
    const [N, C, H, W] = c.inTypes[1].shape, [, , OH, OW] = c.inTypes[0].shape;
    const k = int(c.attrs, 'k'), s = int(c.attrs, 'stride');
    out.fill(0);
    for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      let best = -1, m = -Infinity;
      for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
        const idx = (nc * H + oy * s + ky) * W + ox * s + kx;
        if (x[idx] > m || best < 0) { m = x[idx]; best = idx; }
      }
      out[best] += dy[(nc * OH + oy) * OW + ox];
    }
  },
});
def({
  name: 'avgpool_bwd', arity: 1, attrs: { k: 'int', stride: 'int', in_hw: 'ints' },
  infer: (t, a) => f32([t[0].shape[0], t[0].shape[1], ...(a.in_hw as number[])]),
  cpu: (ins, out, c) => {
    const [N, C, H, W] = c.type.shape, [, , OH, OW] = c.inTypes[0].shape;
    const k = int(c.attrs, 'k'), s = int(c.attrs, 'stride');
    out.fill(0);
    for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const d = ins[0][(nc * OH + oy) * OW + ox] / (k * k);
      for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) out[(nc * H + oy * s + ky) * W + ox * s + kx] += d;
    }
  },
});

// ---------- batch norm ----------
/** Per-channel batch mean and biased variance: [2, C] (row 0 mean, row 1 var). Not differentiated: bn_apply's
 *  x-gradient already includes the path through the statistics. */
def({
  name: 'bn_stats', arity: 1, attrs: {},
  infer: (t) => {
    need(t[0].shape.length === 4 || t[0].shape.length === 2, `batchNorm expects [N, C, H, W] or [N, C], got ${str(t[0].shape)}`);
    return f32([2, t[0].shape[1]]);
  },
  cpu: (ins, out, c) => {
    const { n, c: C, hw } = chanDims(c.inTypes[0].shape);
    const x = ins[0], cnt = n * hw;
    for (let ch = 0; ch < C; ch++) {
      let s = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) s += x[(i * C + ch) * hw + p];
      const mean = s / cnt;
      let v = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) { const d = x[(i * C + ch) * hw + p] - mean; v += d * d; }
      out[ch] = mean;
      out[C + ch] = v / cnt;
    }
  },
});
/** y = (x − mean)·rsqrt(var + eps)·γ + β, with stats [2,C] from bn_stats (training) or the running state (eval). */
def({
  name: 'bn_apply', arity: 4, attrs: { eps: 'float', training: 'bool' },
  infer: (t) => {
    const C = t[0].shape[1];
    need(t[1].shape[1] === C && t[2].shape[0] === C && t[3].shape[0] === C, `batchNorm: parameters do not match ${C} channels`);
    return f32(t[0].shape);
  },
  cpu: (ins, out, c) => {
    const [x, st, ga, be] = ins;
    const { n, c: C, hw } = chanDims(c.inTypes[0].shape), eps = c.attrs.eps as number;
    for (let ch = 0; ch < C; ch++) {
      const inv = 1 / Math.sqrt(st[C + ch] + eps), m = st[ch];
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) {
        const k = (i * C + ch) * hw + p;
        out[k] = (x[k] - m) * inv * ga[ch] + be[ch];
      }
    }
  },
  // One per-channel reduction of dy serves all three gradients: dβ = Σdy and dγ = Σdy·x̂ are its rows, and the
  // training-mode dx reads both.
  grad: (g) => {
    const sums = g.add('bn_bwd_sums', [g.dy, g.x[0], g.x[1]], { eps: g.attrs.eps });
    return [
      g.attrs.training
        ? g.add('bn_bwd_x', [g.dy, g.x[0], g.x[1], g.x[2], sums], { eps: g.attrs.eps })
        : g.add('bn_bwd_x_eval', [g.dy, g.x[1], g.x[2]], { eps: g.attrs.eps }),
      null,
      g.add('row', [sums], { index: 1 }),
      g.add('row', [sums], { index: 0 }),
    ];
  },
});
/** BN backward's per-channel sums, [2, C]: row 0 Σdy (= dβ), row 1 Σdy·x̂ with x̂ = (x − mean)·inv (= dγ). */
def({
  name: 'bn_bwd_sums', arity: 3, attrs: { eps: 'float' },
  infer: (t) => f32([2, t[1].shape[1]]),
  cpu: (ins, out, c) => {
    const [dy, x, st] = ins;
    const { n, c: C, hw } = chanDims(c.inTypes[1].shape), eps = c.attrs.eps as number;
    for (let ch = 0; ch < C; ch++) {
      const inv = 1 / Math.sqrt(st[C + ch] + eps), m = st[ch];
      let sd = 0, sdx = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) {
        const k = (i * C + ch) * hw + p;
        sd += dy[k];
        sdx += dy[k] * (x[k] - m) * inv;
      }
      out[ch] = sd;
      out[C + ch] = sdx;
    }
  },
});
/** Training-mode input gradient from bn_bwd_sums' S: dx = γ·inv/M · (M·dy − S₀ − x̂·S₁). */
def({
  name: 'bn_bwd_x', arity: 5, attrs: { eps: 'float' },
  infer: (t) => {
    need(t[4].shape.length === 2 && t[4].shape[0] === 2 && t[4].shape[1] === t[1].shape[1], `bn_bwd_x: sums ${str(t[4].shape)} are not [2, ${t[1].shape[1]}]`);
    return f32(t[1].shape);
  },
  cpu: (ins, out, c) => {
    const [dy, x, st, ga, S] = ins;
    const { n, c: C, hw } = chanDims(c.inTypes[1].shape), eps = c.attrs.eps as number, M = n * hw;
    for (let ch = 0; ch < C; ch++) {
      const inv = 1 / Math.sqrt(st[C + ch] + eps), m = st[ch];
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) {
        const k = (i * C + ch) * hw + p;
        out[k] = (ga[ch] * inv / M) * (M * dy[k] - S[ch] - (x[k] - m) * inv * S[C + ch]);
      }
    }
  },
});
/** Eval-mode input gradient (statistics are constants): dx = dy·γ·inv. */
def({
  name: 'bn_bwd_x_eval', arity: 3, attrs: { eps: 'float' },
  infer: (t) => f32(t[0].shape),
  cpu: (ins, out, c) => {
    const [dy, st, ga] = ins;
    const { n, c: C, hw } = chanDims(c.inTypes[0].shape), eps = c.attrs.eps as number;
    for (let i = 0; i < n; i++) for (let ch = 0; ch < C; ch++) for (let p = 0; p < hw; p++) {
      const k = (i * C + ch) * hw + p;
      out[k] = dy[k] * ga[ch] / Math.sqrt(st[C + ch] + eps);
    }
  },
});
/** PyTorch's running-statistics update: r ← (1−m)·r + m·batch, with the unbiased variance (count/(count−1)). */
def({
  name: 'bn_running_update', arity: 2, attrs: { momentum: 'float', count: 'int' },
  infer: (t) => f32(t[0].shape),
  cpu: (ins, out, c) => {
    const [r, st] = ins, m = c.attrs.momentum as number, cnt = c.attrs.count as number, C = c.type.shape[1];
    for (let ch = 0; ch < C; ch++) {
      out[ch] = (1 - m) * r[ch] + m * st[ch];
      out[C + ch] = (1 - m) * r[C + ch] + m * st[C + ch] * (cnt / Math.max(cnt - 1, 1));
    }
  },
});

// ---------- loss and metrics ----------
function xentInfer(t: TensorType[]): void {
  need(t[0].shape.length === 2, `crossEntropy expects logits [N, classes], got ${str(t[0].shape)}`);
  need(t[1].dtype === 'i32' && t[1].shape.length === 1 && t[1].shape[0] === t[0].shape[0],
    `crossEntropy expects i32 labels [${t[0].shape[0]}], got ${t[1].dtype} ${str(t[1].shape)}`);
}
/** Mean softmax cross-entropy over the samples whose label is ≥ 0 (label −1 pads a partial batch). */
def({
  name: 'softmax_xent', arity: 2, attrs: {},
  infer: (t) => { xentInfer(t); return f32([1]); },
  cpu: (ins, out, c) => {
    const [z, lab] = ins, [N, K] = c.inTypes[0].shape;
    let s = 0, cnt = 0;
    for (let n = 0; n < N; n++) {
      if (lab[n] < 0) continue;
      let m = -Infinity;
      for (let k = 0; k < K; k++) m = Math.max(m, z[n * K + k]);
      let e = 0;
      for (let k = 0; k < K; k++) e += Math.exp(z[n * K + k] - m);
      s += Math.log(e) + m - z[n * K + lab[n]];
      cnt++;
    }
    out[0] = cnt ? s / cnt : 0;
  },
  grad: (g) => [g.add('softmax_xent_bwd', [g.x[0], g.x[1], g.dy]), null],
});
def({
  name: 'softmax_xent_bwd', arity: 3, attrs: {},
  infer: (t) => f32(t[0].shape),
  cpu: (ins, out, c) => {
    const [z, lab, d] = ins, [N, K] = c.inTypes[0].shape;
    let cnt = 0;
    for (let n = 0; n < N; n++) if (lab[n] >= 0) cnt++;
    for (let n = 0; n < N; n++) {
      if (lab[n] < 0) { for (let k = 0; k < K; k++) out[n * K + k] = 0; continue; }
      let m = -Infinity;
      for (let k = 0; k < K; k++) m = Math.max(m, z[n * K + k]);
      let e = 0;
      for (let k = 0; k < K; k++) e += Math.exp(z[n * K + k] - m);
      for (let k = 0; k < K; k++) out[n * K + k] = (d[0] / cnt) * (Math.exp(z[n * K + k] - m) / e - (k === lab[n] ? 1 : 0));
    }
  },
});
/** Number of samples whose argmax (first max) equals the label. */
def({
  name: 'correct_count', arity: 2, attrs: {},
  infer: (t) => { xentInfer(t); return f32([1]); },
  cpu: (ins, out, c) => {
    const [z, lab] = ins, [N, K] = c.inTypes[0].shape;
    let cnt = 0;
    for (let n = 0; n < N; n++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (z[n * K + k] > z[n * K + best]) best = k;
      if (lab[n] >= 0 && best === lab[n]) cnt++;
    }
    out[0] = cnt;
  },
});

// ---------- saved-activation compression (DIVISION; ir/quant/division.ts, passes/compress.ts) ----------
/** Packed u32 words in an interpreter value (float32 storage keeps the bit patterns; float64 holds them as numbers). */
function writeWords(out: Arr, w: Uint32Array): void {
  if (out instanceof Float32Array) new Uint32Array(out.buffer, out.byteOffset, out.length).set(w);
  else out.set(w);
}
function readWords(a: Arr): Uint32Array {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : Uint32Array.from(a);
}
const words = (n: number) => tensorType([n], 'u32');
/**
 * x [B,C,H,W] → packed low-frequency bf16 + `bits`-bit stochastic residual + bf16 min/scale per (b,c). `with_input`
 * (passes/fuse-compress.ts): its kernel also computes x (a bn_apply, whose node then has no kernel); same values.
 */
def({
  name: 'division_compress', arity: 1, attrs: { block: 'int', bits: 'int', with_input: 'bool' }, optional: ['with_input'],
  infer: (t, a) => {
    const l = divisionLayout(t[0].shape, int(a, 'block'), int(a, 'bits'));
    need(!!l, `division_compress: ${str(t[0].shape)} is not compressible (needs [B, C, H, W] with H > 1, W ≥ the window, bits dividing 32)`);
    return words(l!.words);
  },
  cpu: (ins, out, c) => writeWords(out, divisionCompress(ins[0], c.inTypes[0].shape, int(c.attrs, 'block'), int(c.attrs, 'bits'), c.rng)),
});
def({
  name: 'division_decompress', arity: 1, attrs: { block: 'int', bits: 'int', shape: 'ints' },
  infer: (t, a) => {
    const l = divisionLayout(a.shape as number[], int(a, 'block'), int(a, 'bits'));
    need(!!l && t[0].dtype === 'u32' && t[0].shape[0] === l.words, `division_decompress: ${str(t[0].shape)} words do not hold ${str(a.shape as number[])}`);
    return f32(a.shape as number[]);
  },
  cpu: (ins, out, c) => divisionDecompress(readWords(ins[0]), c.attrs.shape as number[], int(c.attrs, 'block'), int(c.attrs, 'bits'), out),
});
/** ReLU's saved form: the 1-bit mask x > 0, 32 per word. */
def({
  name: 'mask_compress', arity: 1, attrs: {},
  infer: (t) => words(Math.ceil(numel(t[0].shape) / 32)),
  cpu: (ins, out) => writeWords(out, maskCompress(ins[0])),
});
/** The mask as 1.0 (x > 0) / 0.0: relu_bwd(dy, mask) equals relu_bwd(dy, x). */
def({
  name: 'mask_decompress', arity: 1, attrs: { shape: 'ints' },
  infer: (t, a) => {
    need(t[0].dtype === 'u32' && t[0].shape[0] === Math.ceil(numel(a.shape as number[]) / 32), `mask_decompress: ${str(t[0].shape)} words do not hold ${str(a.shape as number[])}`);
    return f32(a.shape as number[]);
  },
  cpu: (ins, out) => {
    const w = readWords(ins[0]);
    for (let i = 0; i < out.length; i++) out[i] = (w[i >> 5] >>> (i & 31)) & 1;
  },
});
/** Max pooling's saved form: the argmax offset ky·k + kx of each window (first maximum), 8 bits, 4 per word. */
def({
  name: 'argmax_compress', arity: 1, attrs: { k: 'int', stride: 'int' },
  infer: (t, a) => {
    need(int(a, 'k') <= 16, `argmax_compress: a ${int(a, 'k')}×${int(a, 'k')} window does not fit 8 bits`);
    return words(Math.ceil(numel(poolInfer(t, a, 'maxPool').shape) / 4));
  },
  cpu: (ins, out, c) => writeWords(out, argmaxCompress(ins[0], c.inTypes[0].shape, int(c.attrs, 'k'), int(c.attrs, 'stride'),
    poolInfer(c.inTypes, c.attrs, 'maxPool').shape)),
});
/** maxpool_bwd from the saved argmax: dx[window argmax] += dy, windows in row-major order. */
def({
  name: 'maxpool_bwd_argmax', arity: 2, attrs: { k: 'int', stride: 'int', in_shape: 'ints' },
  infer: (t, a) => {
    const o = poolInfer([f32(a.in_shape as number[])], a, 'maxPool').shape;
    need(shapeEq(t[0].shape, o) && t[1].dtype === 'u32' && t[1].shape[0] === Math.ceil(numel(o) / 4), `maxpool_bwd_argmax: inputs do not match ${str(o)}`);
    return f32(a.in_shape as number[]);
  },
  cpu: (ins, out, c) => {
    const [dy] = ins, idx = readWords(ins[1]);
    const [N, C, H, W] = c.type.shape, [, , OH, OW] = c.inTypes[0].shape;
    const k = int(c.attrs, 'k'), s = int(c.attrs, 'stride');
    out.fill(0);
    for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const o = (nc * OH + oy) * OW + ox, a = (idx[o >> 2] >>> ((o & 3) * 8)) & 0xff;
      out[(nc * H + oy * s + Math.floor(a / k)) * W + ox * s + (a % k)] += dy[o];
    }
  },
});
/** Saved activations in a narrow format (save=fp16|bf16|float<e,m>|fixed<wl,fl>; ir/quant/save.ts): nearest
 *  rounding, the codes packed 4 (≤ 8 bits) or 2 (≤ 16 bits) per u32 word; any shape. */
def({
  name: 'format_compress', arity: 1, attrs: { fmt: 'format' },
  infer: (t, a) => {
    const e = saveFormatError(a.fmt as Format);
    need(!e, `format_compress: ${e}`);
    return words(saveWords(a.fmt as Format, numel(t[0].shape)));
  },
  cpu: (ins, out, c) => writeWords(out, formatCompress(ins[0], c.attrs.fmt as Format)),
});
def({
  name: 'format_decompress', arity: 1, attrs: { fmt: 'format', shape: 'ints' },
  infer: (t, a) => {
    const e = saveFormatError(a.fmt as Format);
    need(!e, `format_decompress: ${e}`);
    const n = numel(a.shape as number[]);
    need(t[0].dtype === 'u32' && t[0].shape[0] === saveWords(a.fmt as Format, n), `format_decompress: ${str(t[0].shape)} words do not hold ${str(a.shape as number[])}`);
    return f32(a.shape as number[]);
  },
  cpu: (ins, out, c) => formatDecompress(readWords(ins[0]), c.attrs.fmt as Format, out.length, out),
});
