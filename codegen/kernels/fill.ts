/** fill: every element = value (a param, so one pipeline serves every value and shape). */
import { Kernel } from '../kernel.js';
import { attrsOf } from '../../ir/op-registry.js';
import { NodeCtx, epilogue, ewWorkgroup, makeKernel, outBuf, outNumel } from './builder.js';

export function fillKernels(c: NodeCtx): Kernel[] {
  const ep = epilogue(c);
  return [makeKernel({
    name: 'fill',
    buffers: [outBuf(c)],
    params: { value: ['f32', attrsOf(c.node, 'fill').value] },
    invocations: outNumel(c),
    workgroup: ewWorkgroup(c.variant),
    epilogue: ep,
    body: `  out[t] = ${ep.q('P.value', 't')};`,
  })];
}
