/**
 * Quantizer kernels, shared by the standalone quantize<fmt, rounding> op and the bfp epilogue of any computing op
 * (kernelsForNode). They use the quantizers of codegen/quant/wgsl.ts with widths in params (builder.ts
 * quantEpilogue), so one pipeline per (format kind, rounding) serves every width of a precision schedule. Values
 * travel as u32 bit patterns so NaN payloads and signed zeros survive. Stochastic rounding draws
 * lpc_random_bits(step.seed, step.step, tensorId = node id, flat index), exactly like the CPU interpreter.
 * bfp is two kernels: max |x| per block (atomicMax of bit patterns into a scratch buffer, which the runtime zeroes
 * via `clears`), then the elementwise quantizer reading its block's max.
 */
import { Format, Rounding } from '../../ir/format.js';
import { attrsOf } from '../../ir/op-registry.js';
import type { BlockLayout } from '../../ir/quant/layout.js';
import { numel } from '../../ir/types.js';
import { mergeWgslDecls, wgslBlockIndex } from '../quant/wgsl.js';
import { BufferRef, Kernel } from '../kernel.js';
import { mxKernel } from './mx.js';
import {
  BlockFormat, BufferDecl, NodeCtx, ParamValues, blockStatsLayout, ceilDiv, ewWorkgroup, isBlockFormat, makeKernel, nodeQuant, nodeRef,
  Variant, postOps, qpostOf, quantEpilogue, scratchRef,
} from './builder.js';

/** What to quantize: `src` (shape `shape`) into `dst`, or in place when `dst` is omitted. */
export interface QuantJob {
  src: BufferRef;
  dst?: BufferRef;
  shape: number[];
  fmt: Format;
  rounding: Rounding;
  /** RNG tensor id (the id of the node whose value this is). */
  tensorId: number;
  /** Scratch index for the block statistics (must not collide with the node's other kernels' scratch). */
  scratch: number;
  /** bfp/minmax: the producer already folded every value into the statistics at `scratch` (builder.ts trackEpilogue). */
  statsTracked?: boolean;
}

/** The quantize op: its input into its own buffer. */
export function quantizeKernels(c: NodeCtx): Kernel[] {
  const { fmt, rounding } = attrsOf(c.node, 'quantize');
  if (isBlockFormat(fmt) && onePassFits(fmt, c.inTypes[0].shape)) {
    return [onePassBlockKernel({
      name: 'quantize', fmt, rounding, tensorId: c.node.id, shape: c.inTypes[0].shape,
      buffers: [{ name: 'src', ref: nodeRef(c.node.inputs[0]), elem: 'f32', access: 'read' }, { name: 'dst', ref: nodeRef(c.node.id), elem: 'f32', access: 'read_write' }],
      params: {}, value: () => ({ loads: '', expr: 'src[i]' }), out: 'dst', variant: c.variant,
    })];
  }
  return quantizerKernels(c, {
    src: nodeRef(c.node.inputs[0]), dst: nodeRef(c.node.id), shape: c.inTypes[0].shape,
    fmt, rounding, tensorId: c.node.id, scratch: 0,
  });
}

/**
 * The block-format epilogue (bfp, minmax) of a computing op: its kernels have stored the raw fp32 result; quantize
 * that buffer in place. When they also tracked the block statistics (`statsTracked`, the usual case) that is one
 * kernel, else a statistics pass first. (fixed and float fuse into the producer's own store: builder.ts epilogue.)
 */
export function blockEpilogueKernels(c: NodeCtx, scratch: number, statsTracked = false): Kernel[] {
  const q = nodeQuant(c.node);
  if (!q || !isBlockFormat(q.fmt)) return [];
  return quantizerKernels(c, { src: nodeRef(c.node.id), shape: c.node.type.shape, ...q, tensorId: c.node.id, scratch, statsTracked });
}

// ---- one pass: a workgroup per block ----

const ONE_PASS_WG = 64;
/** Elements one workgroup may own: beyond this a block is too big for one workgroup (one CPU thread on lavapipe). */
const ONE_PASS_MAX_BLOCK = 1 << 14;
/** CPU drivers: blocks up to this many elements go one per invocation, ROW_WG invocations per workgroup. */
const ROW_BLOCK = 4096;
const ROW_WG = 8;

/** Whether a block-format quantizer of `shape` can run as onePassBlockKernel: contiguous blocks of modest size. */
export function onePassFits(f: BlockFormat, shape: readonly number[]): boolean {
  if (f.kind === 'mx') return false; // its own kernel is one pass already (kernels/mx.ts)
  const L = blockStatsLayout(f, shape);
  return L.outer === 1 && L.inner <= ONE_PASS_MAX_BLOCK && L.axisLen <= 65535;
}

/**
 * A block-format quantizer in ONE dispatch, for contiguous blocks (outer = 1: per tensor, or along axis 0) of modest
 * size: workgroup a owns block a; its invocations compute their elements' values and fold them into the block
 * statistic, reduce it in workgroup memory, then compute the values again and store them quantized. Recomputing
 * (an elementwise formula or a load) is cheaper than a second dispatch, which dominates small tensors on CPU
 * drivers. The statistic is order-independent, so the result equals the two-pass kernels' bit for bit.
 *
 * On CPU drivers (`variant` 'cpu-driver') blocks of at most ROW_BLOCK elements, when there are several, go one per
 * invocation instead: a workgroup's invocations run as SIMD lanes of one thread there, so the workgroup reduction's
 * barriers cost more than walking a small block twice (a weight's rows, a bias).
 */
export function onePassBlockKernel(o: {
  name: string; fmt: BlockFormat; rounding: Rounding; tensorId: number; shape: readonly number[];
  buffers: BufferDecl[]; params: ParamValues;
  /** WGSL for the value at flat index `i` (u32): statements and an f32 expression. */
  value: (i: string) => { loads: string; expr: string };
  /** The output array (f32 elements). */
  out: string;
  /** WGSL applied to each quantized value of element i before it is stored (the node's qpost, qpostOf; its operands
   *  bound in `buffers`); the identity when absent. */
  after?: (v: string, i: string) => string;
  variant?: Variant;
}): Kernel {
  const after = o.after ?? ((x: string) => x);
  const L = blockStatsLayout(o.fmt, o.shape);
  const mm = o.fmt.kind === 'minmax';
  const stoch = o.rounding === 'stochastic';
  const ep = quantEpilogue(o.fmt, o.rounding, o.tensorId, () => (mm ? ['lpc_k', 'lpc_kn'] : ['lpc_k']), stoch ? (i) => `lpc_h[${i} & 3u]` : undefined);
  const v = o.value('i');
  const fold = mm
    ? 'let u = bitcast<u32>(v); m = max(m, lpc_key(u)); mn = max(mn, lpc_key(u ^ 0x80000000u));'
    : 'm = max(m, bitcast<u32>(v) & 0x7fffffffu);';
  // the second walk: stochastic rounding hashes once per four elements (elements 4g…4g+3 take the four words of the
  // hash of counter g, ir/quant/rng.ts)
  const store = (lo: string, hi: string, first: string, stride: string) => `let lo = ${lo};
  let hi = ${hi};
  ` + (stoch ? `for (var g = lo / 4u + ${first}; g * 4u < hi; g += ${stride}) {
    let lpc_h = lpc_pcg4d(vec4<u32>(stepu.seed, stepu.step, P.q_tid, g));
    for (var i = max(g * 4u, lo); i < min(g * 4u + 4u, hi); i++) {
      ${v.loads}${o.out}[i] = ${after(ep.q(v.expr, 'i'), 'i')};
    }
  }` : `for (var i = lo + ${first}; i < hi; i += ${stride}) {
    ${v.loads}${o.out}[i] = ${after(ep.q(v.expr, 'i'), 'i')};
  }`);
  if (o.variant === 'cpu-driver' && L.axisLen > 1 && L.inner <= ROW_BLOCK) {
    return makeKernel({
      name: `${o.name}_onepass`, buffers: o.buffers, params: { ...o.params, q_block: L.inner }, epilogue: ep,
      invocations: L.axisLen, workgroup: ROW_WG, body: `
  let a = t;
  var m = 0u;${mm ? '\n  var mn = 0u;' : ''}
  for (var i = a * P.q_block; i < (a + 1u) * P.q_block; i++) {
    ${v.loads}let v = ${v.expr};
    ${fold}
  }
  let lpc_k = m;${mm ? '\n  let lpc_kn = mn;' : ''}
  ${store('a * P.q_block', 'lo + P.q_block', '0u', '1u')}`,
    });
  }
  const reduce = (arr: string) => `if (lid < s) { ${arr}[lid] = max(${arr}[lid], ${arr}[lid + s]); }`;
  const body = `
  let lid = t % ${ONE_PASS_WG}u;
  let a = min(t / ${ONE_PASS_WG}u, P.n_inv / ${ONE_PASS_WG}u - 1u);
  var m = 0u;${mm ? '\n  var mn = 0u;' : ''}
  for (var j = lid; j < P.q_block; j += ${ONE_PASS_WG}u) {
    let i = a * P.q_block + j;
    ${v.loads}let v = ${v.expr};
    ${fold}
  }
  lpc_red[lid] = m;${mm ? '\n  lpc_red2[lid] = mn;' : ''}
  workgroupBarrier();
  for (var s = ${ONE_PASS_WG / 2}u; s > 0u; s = s >> 1u) {
    ${reduce('lpc_red')}${mm ? `\n    ${reduce('lpc_red2')}` : ''}
    workgroupBarrier();
  }
  let lpc_k = lpc_red[0];${mm ? '\n  let lpc_kn = lpc_red2[0];' : ''}
  ${store('a * P.q_block', 'lo + P.q_block', 'lid', `${ONE_PASS_WG}u`)}`;
  // (the minmax key functions come with the quantizer's own functions, ep.decls)
  const decls = `var<workgroup> lpc_red: array<u32, ${ONE_PASS_WG}>;\n${mm ? `var<workgroup> lpc_red2: array<u32, ${ONE_PASS_WG}>;\n` : ''}`;
  return makeKernel({
    name: `${o.name}_onepass`, buffers: o.buffers, params: { ...o.params, q_block: L.inner }, epilogue: ep,
    invocations: L.axisLen * ONE_PASS_WG, workgroup: ONE_PASS_WG, wholeGroups: true, decls, body,
  });
}

export function quantizerKernels(c: NodeCtx, j: QuantJob): Kernel[] {
  if (j.fmt.kind === 'mx') return [mxKernel(c, j)];
  const n = numel(j.shape);
  const wg = ewWorkgroup(c.variant);
  // In place the value is read from and written to one read_write binding (WebGPU forbids binding one buffer both
  // read-only and writable in a dispatch).
  const dst: BufferDecl = { name: 'dst', ref: j.dst ?? j.src, elem: 'u32', access: 'read_write' };
  const src: BufferDecl = { name: 'src', ref: j.src, elem: 'u32', access: 'read' };
  const buffers = j.dst ? [src, dst] : [dst];
  if (j.fmt.kind === 'f32') {
    if (!j.dst) return [];
    return [makeKernel({ name: 'copy', buffers, params: {}, invocations: n, workgroup: wg, body: '  dst[t] = src[t];' })];
  }
  const kernels: Kernel[] = [];
  const params: ParamValues = { n };
  let blockStats: ((i: string) => string[]) | undefined;
  if (isBlockFormat(j.fmt)) {
    const L = blockStatsLayout(j.fmt, j.shape);
    const ref = scratchRef(j.scratch, L.axisLen * L.perBlock * 4);
    if (!j.statsTracked) kernels.push(statsKernel(src, ref, j.scratch, j.fmt, L));
    buffers.push({ name: 'stats', ref, elem: 'u32', access: 'read' });
    params.axis_len = L.axisLen; params.inner = L.inner;
    // Integer division is scalarised on CPU drivers: a one-block layout needs none.
    const block = (i: string) => (L.axisLen === 1 ? '0u' : wgslBlockIndex(i, 'P.axis_len', 'P.inner'));
    blockStats = (i) => (L.perBlock === 1 ? [`stats[${block(i)}]`]
      : L.axisLen === 1 ? ['stats[0]', 'stats[1]'] : [`stats[${block(i)}]`, `stats[P.axis_len + ${block(i)}]`]);
  }
  // the node's qpost follows its quantizer (identity without one; its operands are the node's post-op bindings)
  const after = qpostOf(c);
  if (c.node.epi?.qpost) buffers.push(...postOps(c).buffers);
  // Four elements per invocation (per-invocation overhead dominates on CPU drivers): elements 4t…4t+3 are the four
  // words of one hash of counter t (ir/quant/rng.ts), computed once.
  const stoch = j.rounding === 'stochastic';
  const ep = quantEpilogue(j.fmt, j.rounding, j.tensorId, blockStats, stoch ? (i) => `lpc_h[${i} & 3u]` : undefined);
  const q = (x: string, i: string) => after(ep.q(x, i), i);
  // n a multiple of 4: the four elements are one vec4 load and one vec4 store (a gather and a scatter instead of
  // four of each on a CPU driver)
  const vec4 = n % 4 === 0;
  if (vec4) for (const b of buffers) if (b.name === 'dst' || b.name === 'src') b.view = 'vec4<u32>';
  const at = (i: string) => `bitcast<f32>(${j.dst ? 'src' : 'dst'}[${i}])`;
  const body = vec4
    ? `  let lpc_v = ${j.dst ? 'src' : 'dst'}[t];
  let i0 = t * 4u;
  dst[t] = vec4<u32>(${[0, 1, 2, 3].map((k) => `\n    bitcast<u32>(${q(`bitcast<f32>(lpc_v[${k}])`, `(i0 + ${k}u)`)})`).join(',')});`
    // four statements with constant offsets when all four are in range (the hash word i & 3 then folds to the
    // constant lane k), a loop for the last invocation
    : `  let i0 = t * 4u;
  if (i0 + 3u < P.n) {
${[0, 1, 2, 3].map((k) => `    { let i = i0 + ${k}u; dst[i] = bitcast<u32>(${q(at('i'), 'i')}); }`).join('\n')}
  } else {
    for (var i = i0; i < P.n; i++) { dst[i] = bitcast<u32>(${q(at('i'), 'i')}); }
  }`;
  kernels.push(makeKernel({
    name: `quantize${j.dst ? '' : '_inplace'}${vec4 ? '_vec4' : ''}`,
    buffers, params, epilogue: ep, invocations: ceilDiv(n, 4), workgroup: wg,
    body: `${stoch ? '  let lpc_h = lpc_pcg4d(vec4<u32>(stepu.seed, stepu.step, P.q_tid, t));\n' : ''}${body}`,
  }));
  return kernels;
}

/**
 * Statistics per block of the [outer, axisLen, inner] view — bfp: max |x| bit pattern (unsigned order of |x| bits =
 * order of |x|, NaN above Inf); minmax: max key(x) at [a] and max key(−x) at [axisLen + a] (order-preserving keys):
 * `lanes` invocations per block stride over its outer·inner elements and atomicMax once each.
 */
function statsKernel(src: BufferDecl, out: BufferRef, scratch: number, f: BlockFormat, L: BlockLayout): Kernel {
  const count = L.outer * L.inner;
  const lanes = Math.max(1, Math.min(ceilDiv(count, 256), ceilDiv(4096, L.axisLen)));
  // Element j of block a: one block is the whole buffer; with nothing outside the axis (outer = 1) a block is one
  // contiguous run; else the general [outer, axisLen, inner] index (integer division is slow on CPU drivers).
  const at = L.axisLen === 1 ? 'j' : L.outer === 1 ? 'a * P.inner + j' : '(j / P.inner) * P.axis_len * P.inner + a * P.inner + (j % P.inner)';
  const variant = L.axisLen === 1 ? '_tensor' : L.outer === 1 ? '_rows' : '';
  const body = f.kind === 'bfp' ? `
  let a = t / P.lanes;
  var m = 0u;
  for (var j = t % P.lanes; j < P.count; j += P.lanes) {
    m = max(m, src[${at}] & 0x7fffffffu);
  }
  if (m != 0u) { atomicMax(&stats[a], m); }` : `
  let a = t / P.lanes;
  var m = 0u;
  var mn = 0u;
  for (var j = t % P.lanes; j < P.count; j += P.lanes) {
    let u = src[${at}];
    m = max(m, lpc_key(u));
    mn = max(mn, lpc_key(u ^ 0x80000000u));
  }
  atomicMax(&stats[a], m);
  atomicMax(&stats[P.axis_len + a], mn);`;
  return makeKernel({
    name: `${f.kind === 'bfp' ? 'bfp_max_abs' : 'minmax_stats'}${variant}`,
    buffers: [src, { name: 'stats', ref: out, elem: 'atomic<u32>', access: 'read_write' }],
    params: { count, inner: L.inner, axis_len: L.axisLen, lanes },
    invocations: L.axisLen * lanes,
    clears: [scratch],
    decls: f.kind === 'minmax' ? mergeWgslDecls({ chunks: ['lpc_minmax_key'] }) + '\n' : undefined,
    body,
  });
}
