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
import { BlockLayout, blockLayout } from '../../ir/quant/quantize.js';
import { numel } from '../../ir/types.js';
import { wgslBlockIndex } from '../quant/wgsl.js';
import { BufferRef, Kernel } from '../kernel.js';
import {
  BufferDecl, NodeCtx, ParamValues, ceilDiv, ewWorkgroup, makeKernel, nodeQuant, nodeRef, quantEpilogue, scratchRef,
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
  /** Scratch index for the bfp block maxima (must not collide with the node's other kernels' scratch). */
  scratch: number;
  /** bfp: the producer already folded every value into the maxima at `scratch` (builder.ts bfpTrackEpilogue). */
  maxTracked?: boolean;
}

/** The quantize op: its input into its own buffer. */
export function quantizeKernels(c: NodeCtx): Kernel[] {
  return quantizerKernels(c, {
    src: nodeRef(c.node.inputs[0]), dst: nodeRef(c.node.id), shape: c.inTypes[0].shape,
    fmt: c.node.attrs.fmt as Format, rounding: c.node.attrs.rounding as Rounding, tensorId: c.node.id, scratch: 0,
  });
}

/**
 * The bfp epilogue of a computing op: its kernels have stored the raw fp32 result; quantize that buffer in place.
 * When they also tracked the block maxima (`maxTracked`, the usual case) that is one kernel, else max-|x| first.
 * (fixed and float are fused into the producer's own store instead: builder.ts epilogue.)
 */
export function bfpEpilogueKernels(c: NodeCtx, scratch: number, maxTracked = false): Kernel[] {
  const q = nodeQuant(c.node);
  if (q?.fmt.kind !== 'bfp') return [];
  return quantizerKernels(c, { src: nodeRef(c.node.id), shape: c.node.type.shape, ...q, tensorId: c.node.id, scratch, maxTracked });
}

export function quantizerKernels(c: NodeCtx, j: QuantJob): Kernel[] {
  const n = numel(j.shape);
  const wg = ewWorkgroup(c.variant);
  // In place the value is read from and written to one read_write binding (WebGPU forbids binding one buffer both
  // read-only and writable in a dispatch).
  const dst: BufferDecl = { name: 'dst', ref: j.dst ?? j.src, elem: 'u32', access: 'read_write' };
  const src: BufferDecl = { name: 'src', ref: j.src, elem: 'u32', access: 'read' };
  const buffers = j.dst ? [src, dst] : [dst];
  const x = `bitcast<f32>(${j.dst ? 'src' : 'dst'}[t])`;
  if (j.fmt.kind === 'f32') {
    if (!j.dst) return [];
    return [makeKernel({ name: 'copy', buffers, params: {}, invocations: n, workgroup: wg, body: '  dst[t] = src[t];' })];
  }
  const kernels: Kernel[] = [];
  const params: ParamValues = { n };
  let maxAbsBits: ((i: string) => string) | undefined;
  if (j.fmt.kind === 'bfp') {
    const L = blockLayout(j.shape, j.fmt.axis);
    const bytes = L.axisLen * 4;
    if (!j.maxTracked) kernels.push(maxAbsKernel(src, scratchRef(j.scratch, bytes), j.scratch, L));
    buffers.push({ name: 'blockMax', ref: scratchRef(j.scratch, bytes), elem: 'u32', access: 'read' });
    params.axis_len = L.axisLen; params.inner = L.inner;
    // Integer division is scalarised on CPU drivers: a one-block layout needs none.
    maxAbsBits = L.axisLen === 1 ? () => 'blockMax[0]' : (i) => `blockMax[${wgslBlockIndex(i, 'P.axis_len', 'P.inner')}]`;
  }
  const ep = quantEpilogue(j.fmt, j.rounding, j.tensorId, maxAbsBits);
  const xi = `bitcast<f32>(${j.dst ? 'src' : 'dst'}[i])`;
  // Four elements per invocation: per-invocation overhead dominates on CPU drivers.
  kernels.push(makeKernel({
    name: `quantize${j.dst ? '' : '_inplace'}`,
    buffers, params, epilogue: ep, invocations: ceilDiv(n, 4), workgroup: wg,
    body: `  for (var i = t * 4u; i < min(t * 4u + 4u, P.n); i++) { dst[i] = bitcast<u32>(${ep.q(xi, 'i')}); }`,
  }));
  return kernels;
}

/**
 * max |x| bit pattern per block of the [outer, axisLen, inner] view: `lanes` invocations per block stride over its
 * outer·inner elements and atomicMax once each (unsigned order of |x| bits = order of |x|, NaN above Inf).
 */
function maxAbsKernel(src: BufferDecl, out: BufferRef, scratch: number, L: BlockLayout): Kernel {
  const count = L.outer * L.inner;
  const lanes = Math.max(1, Math.min(ceilDiv(count, 256), ceilDiv(4096, L.axisLen)));
  // Element j of block a: one block is the whole buffer; with nothing outside the axis (outer = 1) a block is one
  // contiguous run; else the general [outer, axisLen, inner] index (integer division is slow on CPU drivers).
  const at = L.axisLen === 1 ? 'j' : L.outer === 1 ? 'a * P.inner + j' : '(j / P.inner) * P.axis_len * P.inner + a * P.inner + (j % P.inner)';
  return makeKernel({
    name: `bfp_max_abs${L.axisLen === 1 ? '_tensor' : L.outer === 1 ? '_rows' : ''}`,
    buffers: [src, { name: 'bmax', ref: out, elem: 'atomic<u32>', access: 'read_write' }],
    params: { count, inner: L.inner, axis_len: L.axisLen, lanes },
    invocations: L.axisLen * lanes,
    clears: [scratch],
    body: `
  let a = t / P.lanes;
  var m = 0u;
  for (var j = t % P.lanes; j < P.count; j += P.lanes) {
    m = max(m, src[${at}] & 0x7fffffffu);
  }
  if (m != 0u) { atomicMax(&bmax[a], m); }`,
  });
}
