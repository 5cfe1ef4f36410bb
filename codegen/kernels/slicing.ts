/**
 * Kernels of slicing and stacking (ir/ops/slicing.ts): one invocation per output element of a slice or its
 * gradient; a stack is one copy kernel per input (each binds its input and the output, and writes its own slots), so
 * any number of inputs fits the device's storage-binding limit.
 */
import { Kernel } from '../kernel.js';
import { NodeCtx, epilogue, inBuf, isBlockFormat, makeKernel, nodeQuant, outBuf, outNumel } from './builder.js';
import { axisSplit } from '../../ir/ops/index.js';

export function sliceBwdKernels(c: NodeCtx): Kernel[] {
  const ax = c.node.attrs.axis as number, { len: L, inner } = axisSplit(c.node.type.shape, ax), ep = epilogue(c);
  return [makeKernel({
    name: 'slice_bwd', buffers: [inBuf(c, 0, 'DY'), outBuf(c)],
    params: { len: c.inTypes[0].shape[ax], full: L, inner, start: c.node.attrs.start as number }, invocations: outNumel(c), epilogue: ep,
    body: `
  let i = t % P.inner;
  let a = (t / P.inner) % P.full;
  let o = t / (P.inner * P.full);
  let inside = a >= P.start && a < P.start + P.len;
  let j = select(0u, a - P.start, inside);
  out[t] = ${ep.q('select(0.0, DY[(o * P.len + j) * P.inner + i], inside)', 't')};`,
  })];
}

export function stackKernels(c: NodeCtx): Kernel[] {
  const q = nodeQuant(c.node);
  // a block format's statistics would need one reduction over all the copies: no quantizer is placed on a stack
  if (q && isBlockFormat(q.fmt)) throw new Error(`stack (%${c.node.id}) cannot carry a ${q.fmt.kind} quantizer; quantize its inputs instead`);
  const ax = c.node.attrs.axis as number, { len: k, inner } = axisSplit(c.node.type.shape, ax), ep = epilogue(c);
  const outer = outNumel(c) / (k * inner);
  return c.node.inputs.map((_, j) => makeKernel({
    name: 'stack_copy', buffers: [inBuf(c, j, 'X'), outBuf(c)],
    params: { k, inner, j }, invocations: outer * inner, epilogue: ep,
    body: `
  let i = t % P.inner;
  let o = t / P.inner;
  let d = (o * P.k + P.j) * P.inner + i;
  out[d] = ${ep.q('X[t]', 'd')};`,
  }));
}
