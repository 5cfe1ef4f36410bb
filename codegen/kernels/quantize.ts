/**
 * quantize<fmt, rounding>: the quantizers of codegen/quant/wgsl.ts with widths in params, so one pipeline per
 * (format kind, rounding, fixed flags via a param) serves every width of a precision schedule. Values travel as u32
 * bit patterns so NaN payloads and signed zeros survive. Stochastic rounding draws
 * lpc_random_bits(step.seed, step.step, tensorId = node id, flat index), exactly like the CPU interpreter.
 * bfp is two kernels: max |x| per block (atomicMax of bit patterns into scratch 0, which the runtime zeroes via
 * `clears`), then the elementwise quantizer reading its block's max.
 */
import { Format, Rounding } from '../../ir/format.js';
import { FIXED_NOCLAMP, FIXED_STOCHASTIC, FIXED_SYM } from '../../ir/quant/bits.js';
import { blockLayout } from '../../ir/quant/quantize.js';
import { wgslBlockIndex, wgslQuantFns } from '../quant/wgsl.js';
import { Kernel } from '../kernel.js';
import { BufferDecl, NodeCtx, ParamValues, ceilDiv, ewWorkgroup, makeKernel, nodeRef, outNumel, scratchRef } from './builder.js';

export function quantizeKernels(c: NodeCtx): Kernel[] {
  const fmt = c.node.attrs.fmt as Format;
  const rounding = c.node.attrs.rounding as Rounding;
  if (rounding !== 'nearest' && rounding !== 'stochastic') throw new Error(`quantize %${c.node.id}: unknown rounding '${rounding}'`);
  const n = outNumel(c);
  const src: BufferDecl = { name: 'src', ref: nodeRef(c.node.inputs[0]), elem: 'u32', access: 'read' };
  const dst: BufferDecl = { name: 'dst', ref: nodeRef(c.node.id), elem: 'u32', access: 'read_write' };
  if (fmt.kind === 'f32') {
    return [makeKernel({ name: 'copy', buffers: [src, dst], params: {}, invocations: n, workgroup: ewWorkgroup(c.variant), body: '  dst[t] = src[t];' })];
  }
  const stoch = rounding === 'stochastic';
  const q = wgslQuantFns(fmt, rounding);
  const rng = { seed: 'stepu.seed', step: 'stepu.step', tensorId: 'P.tid' };
  const params: ParamValues = { tid: c.node.id };
  const kernels: Kernel[] = [];
  const buffers = [src, dst];
  let call: string;
  const x = 'bitcast<f32>(src[t])';
  switch (fmt.kind) {
    case 'fixed':
      params.wl = fmt.wl; params.fl = fmt.fl;
      params.mode = (stoch ? FIXED_STOCHASTIC : 0) | (fmt.noclamp ? FIXED_NOCLAMP : 0) | (fmt.sym ? FIXED_SYM : 0);
      call = q.call(x, 't', { wl: 'P.wl', fl: 'P.fl', mode: 'P.mode', ...rng });
      break;
    case 'float':
      params.exp = fmt.exp; params.man = fmt.man;
      call = q.call(x, 't', { exp: 'P.exp', man: 'P.man', ...rng });
      break;
    case 'bfp': {
      const L = blockLayout(c.inTypes[0].shape, fmt.axis);
      const bytes = L.axisLen * 4;
      kernels.push(maxAbsKernel(c, src, bytes, L));
      buffers.push({ name: 'blockMax', ref: scratchRef(0, bytes), elem: 'u32', access: 'read' });
      params.wl = fmt.wl; params.axis_len = L.axisLen; params.inner = L.inner;
      call = q.call(x, 't', { wl: 'P.wl', maxAbsBits: `blockMax[${wgslBlockIndex('t', 'P.axis_len', 'P.inner')}]`, ...rng });
      break;
    }
  }
  kernels.push(makeKernel({
    name: `quantize_${fmt.kind}${stoch ? '_sr' : ''}`,
    buffers, params, usesStep: stoch, decls: q.decls,
    invocations: n,
    workgroup: ewWorkgroup(c.variant),
    body: `  dst[t] = bitcast<u32>(${call});`,
  }));
  return kernels;
}

/**
 * max |x| bit pattern per block of the [outer, axisLen, inner] view: `lanes` invocations per block stride over its
 * outer·inner elements and atomicMax once each (unsigned order of |x| bits = order of |x|, NaN above Inf).
 */
function maxAbsKernel(c: NodeCtx, src: BufferDecl, bytes: number, L: { outer: number; axisLen: number; inner: number }): Kernel {
  const count = L.outer * L.inner;
  const lanes = Math.max(1, Math.min(ceilDiv(count, 256), ceilDiv(4096, L.axisLen)));
  return makeKernel({
    name: 'bfp_max_abs',
    buffers: [src, { name: 'bmax', ref: scratchRef(0, bytes), elem: 'atomic<u32>', access: 'read_write' }],
    params: { count, inner: L.inner, axis_len: L.axisLen, lanes },
    invocations: L.axisLen * lanes,
    clears: [0],
    body: `
  let a = t / P.lanes;
  var m = 0u;
  for (var j = t % P.lanes; j < P.count; j += P.lanes) {
    m = max(m, src[(j / P.inner) * P.axis_len * P.inner + a * P.inner + (j % P.inner)] & 0x7fffffffu);
  }
  if (m != 0u) { atomicMax(&bmax[a], m); }`,
  });
}
