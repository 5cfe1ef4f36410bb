/**
 * CPT's activation quantizer with running qparams (ir/ops/quantize.ts minmax_qparams, minmax_running_update,
 * minmax_quantize; semantics in ir/quant/minmax.ts):
 *   minmax_qparams         [min, max − min] of a tensor: max key(x) and max key(−x) by atomicMax of the
 *                          order-preserving keys the minmax quantizer reduces (lpc_key), then one invocation turning
 *                          them into floats — the very (zp, range) a per-tensor minmax quantizer of x uses
 *   minmax_running_update  r ← r·(1 − m) + batch·m on the two qparams (unchanged at width 0)
 *   minmax_quantize        x quantized with given [zp, range] (lpc_q_minmax_zr, the function lpc_q_minmax uses)
 * A scheduled width is read from the step uniform, so one pipeline serves every width.
 */
import { MinmaxFormat } from '../../ir/quant/minmax.js';
import { attrsOf } from '../../ir/op-registry.js';
import { mergeWgslDecls } from '../quant/wgsl.js';
import { Kernel } from '../kernel.js';
import { NodeCtx, ParamValues, ceilDiv, epilogue, ewWorkgroup, inBuf, makeKernel, outBuf, scratchRef } from './builder.js';
import { numel } from '../../ir/types.js';

/** The width expression of a minmax format: a param, or the step uniform's scheduled width. */
function widthOf(f: MinmaxFormat, params: ParamValues): string {
  if (f.sched) return `stepu.bits_${f.sched}`;
  params.mm_bits = f.bits;
  return 'P.mm_bits';
}

export function minmaxQparamsKernels(c: NodeCtx): Kernel[] {
  const count = numel(c.inTypes[0].shape);
  const lanes = Math.max(1, Math.min(ceilDiv(count, 256), 4096));
  const keys = scratchRef(0, 8);
  const stats = makeKernel({
    name: 'minmax_qparams_keys',
    buffers: [{ ...inBuf(c, 0, 'src'), elem: 'u32' }, { name: 'stats', ref: keys, elem: 'atomic<u32>', access: 'read_write' }],
    params: { count, lanes },
    invocations: lanes,
    clears: [0],
    decls: mergeWgslDecls({ chunks: ['lpc_minmax_key'] }) + '\n',
    body: `
  var m = 0u;
  var mn = 0u;
  for (var j = t; j < P.count; j += P.lanes) {
    let u = src[j];
    m = max(m, lpc_key(u));
    mn = max(mn, lpc_key(u ^ 0x80000000u));
  }
  atomicMax(&stats[0], m);
  atomicMax(&stats[1], mn);`,
  });
  const ep = epilogue(c);
  const fin = makeKernel({
    name: 'minmax_qparams',
    buffers: [{ name: 'stats', ref: keys, elem: 'u32', access: 'read' }, outBuf(c)],
    params: {},
    invocations: 1,
    epilogue: ep,
    decls: mergeWgslDecls({ chunks: ['lpc_minmax_key'] }) + '\n',
    body: `
  let mx = bitcast<f32>(lpc_from_key(stats[0]));
  let mn = -bitcast<f32>(lpc_from_key(stats[1]));
  out[0] = ${ep.q('mn', '0u')};
  out[1] = ${ep.q('mx - mn', '1u')};`,
  });
  return [stats, fin];
}

export function minmaxRunningUpdateKernels(c: NodeCtx): Kernel[] {
  const a = attrsOf(c.node, 'minmax_running_update'), f = a.fmt as MinmaxFormat, m = a.momentum;
  const params: ParamValues = { keep: ['f32', Math.fround(1 - m)], mom: ['f32', Math.fround(m)] };
  const bits = widthOf(f, params);
  const ep = epilogue(c);
  return [makeKernel({
    name: 'minmax_running_update',
    buffers: [inBuf(c, 0, 'R'), inBuf(c, 1, 'B'), outBuf(c)],
    params, invocations: 2, epilogue: ep, usesStep: !!f.sched,
    body: `
  let kept = R[t] * P.keep;
  let added = B[t] * P.mom;
  out[t] = ${ep.q(`select(kept + added, R[t], ${bits} == 0u)`, 't')};`,
  })];
}

export function minmaxQuantizeKernels(c: NodeCtx): Kernel[] {
  const a = attrsOf(c.node, 'minmax_quantize'), f = a.fmt as MinmaxFormat, rounding = a.rounding;
  const stoch = rounding === 'stochastic';
  const n = numel(c.inTypes[0].shape);
  const params: ParamValues = { n };
  const bits = widthOf(f, params);
  if (stoch) params.tid = c.node.id;
  const r = stoch ? 'lpc_random_bits(stepu.seed, stepu.step, P.tid, i)' : '0u';
  return [makeKernel({
    name: `minmax_quantize${stoch ? '_sr' : ''}`,
    buffers: [{ ...inBuf(c, 0, 'src'), elem: 'u32' }, inBuf(c, 1, 'QP'), { ...outBuf(c), elem: 'u32' }],
    params, invocations: ceilDiv(n, 4), workgroup: ewWorkgroup(c.variant), usesStep: stoch || !!f.sched,
    decls: mergeWgslDecls({ chunks: ['lpc_q_minmax_zr', ...(stoch ? ['lpc_pcg4d', 'lpc_random_bits'] : [])] }) + '\n',
    body: `
  let zp = QP[0];
  let range = QP[1];
  for (var i = t * 4u; i < min(t * 4u + 4u, P.n); i++) {
    out[i] = bitcast<u32>(lpc_q_minmax_zr(bitcast<f32>(src[i]), zp, range, ${bits}, ${stoch}, ${r}));
  }`,
  })];
}
