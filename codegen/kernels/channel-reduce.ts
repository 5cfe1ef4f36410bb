/**
 * Per-channel reductions over every axis but 1 of [N,C,H,W] or [N,C] (sum_channel, bn_bwd_sums): the N·H·W elements
 * of a channel are split into chunks (split-reduce.ts); one invocation per (chunk, channel) walks its chunk with
 * incremental indices and writes `terms.length` partial sums, laid out [chunk, term, channel] (so the summed
 * result is [term, channel]), which a second kernel adds up.
 */
import { Kernel } from '../kernel.js';
import { attrsOf } from '../../ir/op-registry.js';
import { BufferDecl, NodeCtx, inBuf, makeKernel } from './builder.js';
import { chooseChunks, partialsBuffer, resultKernel, sumPartialsKernel } from './split-reduce.js';

/** Channels and per-channel spatial size, as the op table's chanDims. */
export function chanDims(shape: number[]): { n: number; c: number; hw: number } {
  return { n: shape[0], c: shape[1], hw: shape.length === 4 ? shape[2] * shape[3] : 1 };
}

export interface ChannelSplit { C: number; hw: number; m: number; chunks: number; perChunk: number }

export function channelSplit(c: NodeCtx, shape: number[]): ChannelSplit {
  const { n, c: C, hw } = chanDims(shape);
  const m = n * hw;
  return { C, hw, m, ...chooseChunks(m, C, c.variant, 256) };
}

/** WGSL defining this invocation's channel `ch`, `chunk` and its element range j0 ≤ j < j1. */
export const CHUNK_HEADER = `
  let ch = t % P.c;
  let chunk = t / P.c;
  let j0 = chunk * P.per_chunk;
  let j1 = min(P.m, j0 + P.per_chunk);`;

/** WGSL that walks the chunk's elements of channel `ch`, running `step` with flat index `k` (after CHUNK_HEADER). */
export function chunkLoop(step: string): string {
  return `
  {
  var p = j0 % P.hw;
  var k = ((j0 / P.hw) * P.c + ch) * P.hw + p;
  let skip = (P.c - 1u) * P.hw;
  for (var j = j0; j < j1; j++) {
${step}
    p++;
    k++;
    if (p == P.hw) { p = 0u; k += skip; }
  }
  }`;
}

/**
 * Partial sums of `terms` (WGSL f32 expressions of flat index `k` and channel `ch`; `pre` may define per-channel
 * values) over each chunk: part[(chunk·T + i)·C + ch].
 */
export function channelPartialsKernel(
  c: NodeCtx, name: string, sp: ChannelSplit, inputs: BufferDecl[], terms: string[], pre = '',
): Kernel {
  const T = terms.length;
  return makeKernel({
    name: `${name}_partial`,
    buffers: [...inputs, partialsBuffer(sp.chunks, sp.C * T, 'read_write')],
    params: { c: sp.C, hw: sp.hw, m: sp.m, per_chunk: sp.perChunk },
    invocations: sp.C * sp.chunks,
    body: `${CHUNK_HEADER}${pre}
${terms.map((_, i) => `  var acc${i} = 0.0;`).join('\n')}
${chunkLoop(terms.map((e, i) => `    acc${i} += ${e};`).join('\n'))}
${terms.map((_, i) => `  part[(chunk * ${T}u + ${i}u) * P.c + ch] = acc${i};`).join('\n')}`,
  });
}

/** sum_channel: bias gradients of linear and conv. */
export function sumChannelKernels(c: NodeCtx): Kernel[] {
  const sp = channelSplit(c, c.inTypes[0].shape);
  return [
    channelPartialsKernel(c, 'sum_channel', sp, [inBuf(c, 0, 'X')], ['X[k]']),
    sumPartialsKernel(c, 'sum_channel', sp.chunks, sp.C),
  ];
}

/** row: one row of a [R, C] value (BN's parameter gradients are rows of bn_bwd_sums), through the node's epilogue. */
export function rowKernels(c: NodeCtx): Kernel[] {
  const C = c.node.type.shape[0];
  return [resultKernel(c, 'row', [inBuf(c, 0, 'S')], { base: attrsOf(c.node, 'row').index * C }, (i) => ({ loads: '', expr: `S[P.base + ${i}]` }))];
}
