/**
 * concat and slice (ir/ops/concat.ts) as copies. concat runs one kernel per input, each writing its part of the
 * output through the node's epilogue at the output's flat index (post-op operands and the quantizer see the output's
 * indices, as the spec applies them to the joined result); a kernel binds one input, so any number of inputs fits
 * the device's storage-buffer limit. slice is one gather.
 */
import { axisSplit } from '../../ir/ops/index.js';
import { Kernel } from '../kernel.js';
import { NodeCtx, epilogue, ewWorkgroup, inBuf, int, makeKernel, outBuf, outNumel } from './builder.js';

export function concatKernels(c: NodeCtx): Kernel[] {
  const axis = int(c, 'axis'), { inner, len: total } = axisSplit(c.node.type.shape, axis), ep = epilogue(c);
  let off = 0;
  return c.inTypes.map((tp, i) => {
    const len = tp.shape[axis], n = tp.shape.reduce((a, b) => a * b, 1);
    const k = makeKernel({
      name: 'concat_part', buffers: [inBuf(c, i, 'X'), outBuf(c)], params: { part: len * inner, total: total * inner, off: off * inner },
      invocations: n, workgroup: ewWorkgroup(c.variant), epilogue: ep, body: `
  let i = (t / P.part) * P.total + P.off + t % P.part;
  out[i] = ${ep.q('X[t]', 'i')};`,
    });
    off += len;
    return k;
  });
}

export function sliceKernels(c: NodeCtx): Kernel[] {
  const axis = int(c, 'axis'), { inner, len: total } = axisSplit(c.inTypes[0].shape, axis), len = c.node.type.shape[axis];
  const ep = epilogue(c);
  return [makeKernel({
    name: 'slice', buffers: [inBuf(c, 0, 'X'), outBuf(c)],
    params: { part: len * inner, total: total * inner, off: int(c, 'start') * inner },
    invocations: outNumel(c), workgroup: ewWorkgroup(c.variant), epilogue: ep, body: `
  out[t] = ${ep.q('X[(t / P.part) * P.total + P.off + t % P.part]', 't')};`,
  })];
}
