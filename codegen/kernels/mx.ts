/**
 * MX quantizer kernels (ir/quant/mx.ts): an invocation owns whole blocks, so a block's max |x|, its E8M0 scale byte
 * and its rounded elements need no statistics pass, no scratch and no atomics. The same generator serves the quantize
 * op, the in-place rounding pass after a tiled GEMM's raw store, and producers that can give each element's value by
 * its flat index (elementwise ops, reduction results, max pooling and its gradient): those compute, round and store
 * in ONE dispatch.
 *
 * Layouts ([outer, len, inner] around the MX axis, blocks along len):
 * - `lanes`: inner a multiple of 4 (NCHW activations along channels): an invocation owns the 4 blocks at inner
 *   positions 4j…4j+3, so each step along the axis is 4 consecutive elements — one vec4 access, and one
 *   counter-based hash gives their 4 random words (ir/quant/rng.ts: element i takes word i & 3 of hash(i >> 2));
 * - `rows`: inner 1 (the last axis) with len and block multiples of 4: an invocation owns one block of consecutive
 *   elements, walked 4 at a time the same way;
 * - `scalar`: anything else (weights with 5×5 taps inside the axis, odd lengths): an element at a time.
 * A costly value (a window's max, a reduction) is computed once: the block waits in a private array between the max
 * and the rounding; a cheap one (a load, an elementwise formula) is computed again (`recompute`). The element format
 * and rounding are literals, so the driver folds the format's constants into the rounding code.
 */
import { Format, Rounding } from '../../ir/format.js';
import { mxLayoutOf, MX_NEAREST, MX_STOCHASTIC } from '../../ir/quant/mx.js';
import { numel } from '../../ir/types.js';
import { mxScaleWgsl, mxWordWgsl, wgslQuantFns } from '../quant/wgsl.js';
import { Kernel } from '../kernel.js';
import { BufferDecl, Epilogue, NodeCtx, ParamValues, Variant, ewWorkgroup, makeKernel, nodeQuant, outBuf, postOps, qpostOf } from './builder.js';
import type { QuantJob } from './quantize.js';

export type MxFormat = Extract<Format, { kind: 'mx' }>;

/** Values kept per invocation between the two walks of a block (vec4 slots); past this a walk recomputes them. */
const CACHE_SLOTS = 64;

export interface MxBlocksSpec {
  name: string; fmt: MxFormat; rounding: Rounding; tensorId: number; shape: readonly number[];
  buffers: BufferDecl[]; params: ParamValues; variant: Variant;
  /** WGSL for the value of flat element `i` (u32): statements and an f32 expression (never `t`). */
  value: (i: string) => { loads: string; expr: string };
  /** Optionally the 4 values at flat elements 4·i4 … 4·i4+3 at once (a vec4<f32> expression): a vec4 load. */
  value4?: (i4: string) => { loads: string; expr: string };
  /** The output array and how its elements are declared: f32 or u32 (bit patterns), scalar or vec4 view. */
  out: { name: string; elem: 'f32' | 'u32'; vec4: boolean };
  /** WGSL applied to the quantized value of element i before it is stored (the node's qpost); identity when absent. */
  after?: (v: string, i: string) => string;
  /** The value is cheap (a load, an elementwise formula): compute it again in the rounding walk rather than keep the
   *  block in a private array (a CPU driver indexes one lane by lane: for a load, 1.8× slower on lavapipe). */
  recompute?: boolean;
}

/** Which walk a layout allows (see the header). */
export function mxWalk(fmt: MxFormat, shape: readonly number[]): 'lanes' | 'rows' | 'scalar' {
  const L = mxLayoutOf(fmt, shape);
  if (L.inner > 1 && L.inner % 4 === 0) return 'lanes';
  if (L.inner === 1 && L.len % 4 === 0 && L.block % 4 === 0) return 'rows';
  return 'scalar';
}

/** The quantizer of one element given WGSL for its scale byte and random word (the literal element format); also
 *  what a tiled GEMM's store rounds with (mx-store.ts). */
export function mxQuantizer(fmt: MxFormat, rounding: Rounding, tensorId: number): Epilogue & { at: (v: string, sb: string, r: string) => string } {
  const stoch = rounding === 'stochastic';
  const fns = wgslQuantFns(fmt, rounding);
  const at = (v: string, sb: string, r: string) => fns.call(v, '0u', { mxScale: sb, mxElem: mxWordWgsl(fmt), mode: `${stoch ? MX_STOCHASTIC : MX_NEAREST}u`, randomWord: () => r });
  return {
    params: stoch ? { q_tid: tensorId } : {}, decls: fns.decls, usesStep: stoch || !!fmt.sched, kind: `mx${stoch ? '_sr' : ''}`,
    q: () => { throw new Error('mx: the block kernel rounds its elements itself'); }, at,
  };
}

const COMP = ['x', 'y', 'z', 'w'];

/** A kernel in which each invocation owns whole MX blocks: it computes their values, scale bytes, and rounded stores. */
export function mxBlocksKernel(s: MxBlocksSpec): Kernel {
  if (numel(s.shape) === 0) throw new Error('mx: empty tensor');
  const L = mxLayoutOf(s.fmt, s.shape);
  const walk = mxWalk(s.fmt, s.shape);
  const stoch = s.rounding === 'stochastic';
  const ep = mxQuantizer(s.fmt, s.rounding, s.tensorId);
  const after = s.after ?? ((v: string) => v);
  const bits = (v: string) => (s.out.elem === 'u32' ? `bitcast<u32>(${v})` : v);
  const params: ParamValues = { ...s.params, q_len: L.len, q_inner: L.inner, q_nb: L.nb, q_block: L.block };
  // one value inside its own scope (a value's statements may declare names)
  const one = (i: string, dst: string) => { const v = s.value(i); return `{ ${v.loads}${dst} = ${v.expr}; }`; };
  const span = Math.min(L.block, L.len);

  if (walk === 'scalar') {
    const cache = !s.recompute && span <= CACHE_SLOTS * 4;
    const rnd = stoch ? 'lpc_random_bits(stepu.seed, stepu.step, P.q_tid, i)' : '0u';
    const body = `
  let lpc_in = t % P.q_inner;
  let lpc_b = (t / P.q_inner) % P.q_nb;
  let lpc_base = (t / (P.q_inner * P.q_nb)) * P.q_len * P.q_inner + lpc_in;
  let lpc_l0 = lpc_b * P.q_block;
  let lpc_l1 = min(lpc_l0 + P.q_block, P.q_len);
  ${cache ? `var lpc_c: array<f32, ${span}>;\n  ` : ''}var lpc_m = 0u;
  for (var l = lpc_l0; l < lpc_l1; l++) {
    let i = lpc_base + l * P.q_inner;
    var lpc_x: f32;
    ${one('i', 'lpc_x')}
    ${cache ? 'lpc_c[l - lpc_l0] = lpc_x;\n    ' : ''}lpc_m = max(lpc_m, bitcast<u32>(lpc_x) & 0x7fffffffu);
  }
  let lpc_sb = ${mxScaleWgsl(s.fmt, 'lpc_m')};
  for (var l = lpc_l0; l < lpc_l1; l++) {
    let i = lpc_base + l * P.q_inner;
    ${cache ? 'let lpc_x = lpc_c[l - lpc_l0];' : `var lpc_x: f32;\n    ${one('i', 'lpc_x')}`}
    ${s.out.name}[i] = ${bits(after(ep.at('lpc_x', 'lpc_sb', rnd), 'i'))};
  }`;
    return makeKernel({ name: `${s.name}_mx`, buffers: s.buffers, params, epilogue: ep, invocations: L.blocks, workgroup: ewWorkgroup(s.variant), body });
  }

  // lanes and rows: a walk over quads of 4 consecutive elements at i0 (a multiple of 4)
  const lanes = walk === 'lanes';
  const quads = lanes ? span : span / 4;
  const cache = !s.recompute && quads <= CACHE_SLOTS;
  const load4 = (i0: string) => {
    if (s.value4) { const v = s.value4(`(${i0} / 4u)`); return `{ ${v.loads}lpc_x = ${v.expr}; }`; }
    return COMP.map((c, k) => one(`(${i0} + ${k}u)`, `lpc_x.${c}`)).join('\n    ');
  };
  const head = lanes ? `
  let lpc_q4 = P.q_inner / 4u;
  let lpc_r = t / lpc_q4;
  let lpc_base = (lpc_r / P.q_nb) * P.q_len * P.q_inner + (t % lpc_q4) * 4u;
  let lpc_l0 = (lpc_r % P.q_nb) * P.q_block;
  let lpc_l1 = min(lpc_l0 + P.q_block, P.q_len);`
    : `
  let lpc_base = (t / P.q_nb) * P.q_len;
  let lpc_l0 = (t % P.q_nb) * P.q_block / 4u;
  let lpc_l1 = min((t % P.q_nb) * P.q_block + P.q_block, P.q_len) / 4u;`;
  const i0 = lanes ? 'lpc_base + l * P.q_inner' : 'lpc_base + l * 4u';
  const scale = lanes
    ? `vec4<u32>(${COMP.map((c) => mxScaleWgsl(s.fmt, `lpc_m.${c}`)).join(', ')})`
    : `vec4<u32>(${mxScaleWgsl(s.fmt, 'max(max(lpc_m.x, lpc_m.y), max(lpc_m.z, lpc_m.w))')})`;
  const q = COMP.map((c, k) => bits(after(ep.at(`lpc_x.${c}`, `lpc_sb.${c}`, stoch ? `lpc_h.${c}` : '0u'), `(i0 + ${k}u)`)));
  const store = s.out.vec4
    ? `${s.out.name}[i0 / 4u] = vec4<${s.out.elem}>(${q.join(', ')});`
    : q.map((v, k) => `${s.out.name}[i0 + ${k}u] = ${v};`).join('\n    ');
  const body = `${head}
  ${cache ? `var lpc_c: array<vec4<f32>, ${quads}>;\n  ` : ''}var lpc_m = vec4<u32>(0u);
  for (var l = lpc_l0; l < lpc_l1; l++) {
    let i0 = ${i0};
    var lpc_x: vec4<f32>;
    ${load4('i0')}
    ${cache ? 'lpc_c[l - lpc_l0] = lpc_x;\n    ' : ''}lpc_m = max(lpc_m, bitcast<vec4<u32>>(lpc_x) & vec4<u32>(0x7fffffffu));
  }
  let lpc_sb = ${scale};
  for (var l = lpc_l0; l < lpc_l1; l++) {
    let i0 = ${i0};
    ${cache ? 'let lpc_x = lpc_c[l - lpc_l0];' : `var lpc_x: vec4<f32>;\n    ${load4('i0')}`}
    ${stoch ? 'let lpc_h = lpc_pcg4d(vec4<u32>(stepu.seed, stepu.step, P.q_tid, i0 / 4u));\n    ' : ''}${store}
  }`;
  return makeKernel({
    name: `${s.name}_mx${lanes ? '4' : 'rows'}`, buffers: s.buffers, params, epilogue: ep,
    invocations: lanes ? L.blocks / 4 : L.blocks, workgroup: ewWorkgroup(s.variant), body,
  });
}

/** The quantize op's kernel, or the in-place rounding pass after a producer's raw store (kernels/index.ts). */
export function mxKernel(c: NodeCtx, j: QuantJob): Kernel {
  const fmt = j.fmt as MxFormat;
  const vec = mxWalk(fmt, j.shape) !== 'scalar';
  const view = vec ? 'vec4<u32>' : undefined;
  const dst: BufferDecl = { name: 'dst', ref: j.dst ?? j.src, elem: 'u32', access: 'read_write', ...(view ? { view } : {}) };
  const buffers: BufferDecl[] = j.dst ? [{ name: 'src', ref: j.src, elem: 'u32', access: 'read', ...(view ? { view } : {}) }, dst] : [dst];
  if (c.node.attrs.qpost !== undefined || c.node.epi?.qpost) buffers.push(...postOps(c).buffers);
  const src = j.dst ? 'src' : 'dst';
  return mxBlocksKernel({
    name: `quantize${j.dst ? '' : '_inplace'}`, fmt, rounding: j.rounding, tensorId: j.tensorId, shape: j.shape,
    buffers, params: {}, variant: c.variant, after: qpostOf(c),
    value: (i) => ({ loads: '', expr: `bitcast<f32>(${src}[${i}])` }),
    ...(vec ? { value4: (i4: string) => ({ loads: '', expr: `bitcast<vec4<f32>>(${src}[${i4}])` }) } : {}),
    out: { name: 'dst', elem: 'u32', vec4: vec }, recompute: true,
  });
}

/**
 * A node's result with its MX epilogue in one dispatch: `value(i)` computes the result at flat index i (before the
 * node's post-ops) from `inputs`; post-ops, rounding and qpost follow as the epilogue orders them (ir/epilogue.ts).
 */
export function mxNodeKernel(c: NodeCtx, name: string, inputs: BufferDecl[], params: ParamValues,
  value: (i: string) => { loads: string; expr: string },
  o: {
    /** the values of 4 consecutive elements 4·i4 … 4·i4+3 at once (a vec4<f32>), where computing them together is cheaper */
    value4?: (i4: string) => { loads: string; expr: string };
    recompute?: boolean;
  } = {}): Kernel {
  const value4 = o.value4;
  const q = nodeQuant(c.node);
  if (q?.fmt.kind !== 'mx') throw new Error(`mxNodeKernel: %${c.node.id} has no MX epilogue`);
  const post = postOps(c), out = outBuf(c), vec = mxWalk(q.fmt, c.node.type.shape) !== 'scalar';
  return mxBlocksKernel({
    name, fmt: q.fmt, rounding: q.rounding, tensorId: c.node.id, shape: c.node.type.shape, variant: c.variant,
    buffers: [...inputs, vec ? { ...out, view: 'vec4<f32>' } : out, ...post.buffers], params, after: qpostOf(c),
    value: (i) => { const v = value(i); return { loads: v.loads, expr: post.apply(v.expr, i) }; },
    ...(value4 && vec ? { value4: (i4: string) => {
      const v = value4(i4);
      if (!c.post) return v;
      // post-ops per element: the 4 values, then each through the post expression at its own index
      return { loads: `${v.loads}let lpc_v4 = ${v.expr};\n    `, expr: `vec4<f32>(${[0, 1, 2, 3].map((k) => post.apply(`lpc_v4[${k}]`, `(4u * ${i4} + ${k}u)`)).join(', ')})` };
    } } : {}),
    out: { name: out.name, elem: 'f32', vec4: vec }, recompute: o.recompute,
  });
}
