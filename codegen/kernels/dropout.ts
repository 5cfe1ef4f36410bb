/**
 * dropout: element t kept when the top 24 of lpc_random_bits(seed, step, DROPOUT_STREAM + key, t) reach the
 * threshold p·2^24, and scaled by 1/(1 − p); the same bits as the CPU interpreter (ir/ops/elementwise.ts), so the same mask,
 * and the gradient (the same op on the error) reuses it.
 */
import { Kernel } from '../kernel.js';
import { attrsOf } from '../../ir/op-registry.js';
import { DROPOUT_STREAM, dropoutThreshold } from '../../ir/ops/index.js';
import { mergeWgslDecls } from '../quant/wgsl.js';
import { NodeCtx, epilogue, ewWorkgroup, inBuf, makeKernel, outBuf, outNumel } from './builder.js';

export function dropoutKernels(c: NodeCtx): Kernel[] {
  const ep = epilogue(c);
  const { p, key } = attrsOf(c.node, 'dropout');
  // a stochastic quantize epilogue brings the generator's functions already
  const rng = ep.decls.includes('fn lpc_random_bits') ? '' : mergeWgslDecls({ chunks: ['lpc_pcg4d', 'lpc_random_bits'] }) + '\n';
  return [makeKernel({
    name: 'dropout',
    buffers: [inBuf(c, 0, 'x'), outBuf(c)],
    params: { thr: dropoutThreshold(p), rid: (DROPOUT_STREAM + key) >>> 0, scale: ['f32', Math.fround(1 / (1 - p))] },
    invocations: outNumel(c),
    workgroup: ewWorkgroup(c.variant),
    usesStep: true,
    decls: rng,
    epilogue: ep,
    body: `  let r = lpc_random_bits(stepu.seed, stepu.step, P.rid, t);
  out[t] = ${ep.q('select(0.0, x[t] * P.scale, (r >> 8u) >= P.thr)', 't')};`,
  })];
}
