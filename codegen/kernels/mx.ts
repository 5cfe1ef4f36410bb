/**
 * The MX quantizer kernel (ir/quant/mx.ts): one invocation per block of `block` (typically 32) elements along the
 * format's axis. It walks its block twice — max |x| bit patterns, the E8M0 scale byte, then every element rounded
 * with that byte — so MX needs no statistics pass, no scratch and no atomics, in place or into another buffer, for the
 * quantize op and for a producer's epilogue alike (kernels/index.ts appends it after the producer's raw store).
 * Stochastic rounding draws lpc_random_bits(seed, step, tensor id, flat index), as the CPU.
 */
import { Format, MX_ELEMS } from '../../ir/format.js';
import { mxLayoutOf } from '../../ir/quant/mx.js';
import { numel } from '../../ir/types.js';
import { Kernel } from '../kernel.js';
import { BufferDecl, NodeCtx, ewWorkgroup, makeKernel, postOps, qpostOf, quantEpilogue } from './builder.js';
import type { QuantJob } from './quantize.js';

export function mxKernel(c: NodeCtx, j: QuantJob): Kernel {
  const fmt = j.fmt as Extract<Format, { kind: 'mx' }>;
  const L = mxLayoutOf(fmt, j.shape);
  const dst: BufferDecl = { name: 'dst', ref: j.dst ?? j.src, elem: 'u32', access: 'read_write' };
  const buffers: BufferDecl[] = j.dst ? [{ name: 'src', ref: j.src, elem: 'u32', access: 'read' }, dst] : [dst];
  const after = qpostOf(c);
  if (c.node.attrs.qpost !== undefined) buffers.push(...postOps(c).buffers);
  const ep = quantEpilogue(fmt, j.rounding, j.tensorId, () => ['lpc_sb']);
  const src = j.dst ? 'src' : 'dst';
  // blocks in the order of the scale bytes: t = (o·nb + b)·inner + in
  const body = `
  let lpc_in = t % P.q_inner;
  let lpc_b = (t / P.q_inner) % P.q_nb;
  let lpc_base = (t / (P.q_inner * P.q_nb)) * P.q_len * P.q_inner + lpc_in;
  let lpc_l1 = min(lpc_b * P.q_block + P.q_block, P.q_len);
  var m = 0u;
  for (var l = lpc_b * P.q_block; l < lpc_l1; l++) { m = max(m, ${src}[lpc_base + l * P.q_inner] & 0x7fffffffu); }
  let lpc_sb = lpc_mx_scale(m, P.q_emax);
  for (var l = lpc_b * P.q_block; l < lpc_l1; l++) {
    let i = lpc_base + l * P.q_inner;
    dst[i] = bitcast<u32>(${after(ep.q(`bitcast<f32>(${src}[i])`, 'i'), 'i')});
  }`;
  if (numel(j.shape) === 0) throw new Error('mx: empty tensor');
  return makeKernel({
    name: `quantize_mx${j.dst ? '' : '_inplace'}`, buffers, epilogue: ep, invocations: L.blocks, workgroup: ewWorkgroup(c.variant),
    params: { q_len: L.len, q_inner: L.inner, q_nb: L.nb, q_block: L.block, q_emax: MX_ELEMS[fmt.elem].emax }, body,
  });
}
