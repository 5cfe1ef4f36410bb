/**
 * Batch norm: statistics, apply, the backward sums and input gradients, and the running-statistics update.
 * Reductions use the split scheme of channel-reduce.ts. bn_stats is two-pass per chunk (chunk mean, then Σ(x − chunk mean)²) and merges
 * chunks with Chan et al.'s pairwise update, so the variance is as accurate as the spec's two-pass float64
 * formula allows in f32 even when |mean| ≫ std. eps, momentum and counts are params.
 */
import { Kernel } from '../kernel.js';
import { Epilogue, NodeCtx, epilogue, ewWorkgroup, inBuf, makeKernel, outBuf, outNumel } from './builder.js';
import { CHUNK_HEADER, channelPartialsKernel, channelSplit, chunkLoop } from './channel-reduce.js';
import { partialsBuffer, sumPartialsKernel } from './split-reduce.js';

const eps = (c: NodeCtx) => ['f32', c.node.attrs.eps as number] as ['f32', number];
const INV = `
  let inv = 1.0 / sqrt(ST[P.c + ch] + P.eps);`;

/**
 * The body of a per-element kernel whose values depend on the element's channel: with H·W a multiple of 4 each
 * invocation takes four elements of one channel, so the channel (an integer division, scalarised on CPU drivers) and
 * the per-channel setup `pre` are computed once per four elements; otherwise one element per invocation. `value(i)`
 * is the element's value; the store goes through the node's epilogue.
 */
function perChannelElements(c: NodeCtx, ep: Epilogue, hw: number, pre: string, value: (i: string) => string): { body: string; invocations: number } {
  const n = outNumel(c);
  if (hw % 4 !== 0) return { invocations: n, body: `
  let i = t;
  let ch = (t / P.hw) % P.c;${pre}
  out[i] = ${ep.q(value('i'), 'i')};` };
  return {
    invocations: Math.ceil(n / 4),
    body: `
  let i0 = t * 4u;
  let ch = (i0 / P.hw) % P.c;${pre}
  for (var i = i0; i < min(i0 + 4u, P.n); i++) { out[i] = ${ep.q(value('i'), 'i')}; }`,
  };
}

export function bnStatsKernels(c: NodeCtx): Kernel[] {
  const sp = channelSplit(c, c.inTypes[0].shape);
  const partial = makeKernel({
    name: 'bn_stats_partial',
    buffers: [inBuf(c, 0, 'X'), partialsBuffer(sp.chunks, sp.C * 2, 'read_write')],
    params: { c: sp.C, hw: sp.hw, m: sp.m, per_chunk: sp.perChunk },
    invocations: sp.C * sp.chunks,
    body: `${CHUNK_HEADER}
  var s = 0.0;${chunkLoop('    s += X[k];')}
  let mean = s / f32(j1 - j0);
  var q = 0.0;${chunkLoop('    let d = X[k] - mean;\n    q += d * d;')}
  part[(chunk * P.c + ch) * 2u] = mean;
  part[(chunk * P.c + ch) * 2u + 1u] = q;`,
  });
  const ep = epilogue(c);
  const merge = makeKernel({
    name: 'bn_stats_merge',
    buffers: [partialsBuffer(sp.chunks, sp.C * 2, 'read'), outBuf(c)],
    params: { c: sp.C, m: sp.m, per_chunk: sp.perChunk, chunks: sp.chunks },
    invocations: sp.C,
    epilogue: ep,
    body: `
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var s = 0u; s < P.chunks; s++) {
    let nb = f32(min(P.m, (s + 1u) * P.per_chunk) - s * P.per_chunk);
    let d = part[(s * P.c + t) * 2u] - mean;
    let tot = n + nb;
    mean += d * (nb / tot);
    m2 += part[(s * P.c + t) * 2u + 1u] + d * d * (n * nb / tot);
    n = tot;
  }
  out[t] = ${ep.q('mean', 't')};
  out[P.c + t] = ${ep.q('m2 / f32(P.m)', 'P.c + t')};`,
  });
  return [partial, merge];
}

/**
 * bn_apply's value at element i of channel `ch` (after `BN_APPLY.pre`, which defines `inv` from `ch`), its bindings
 * and params: shared by its own kernel and DIVISION's compression computing it (compress.ts, with_input).
 */
export const BN_APPLY = {
  pre: INV,
  value: (i: string) => `(X[${i}] - ST[ch]) * inv * G[ch] + B[ch]`,
  buffers: (c: NodeCtx) => [inBuf(c, 0, 'X'), inBuf(c, 1, 'ST'), inBuf(c, 2, 'G'), inBuf(c, 3, 'B')],
  params: (c: NodeCtx) => ({ c: c.inTypes[0].shape[1], eps: eps(c) }),
};

export function bnApplyKernels(c: NodeCtx): Kernel[] {
  const sp = channelSplit(c, c.inTypes[0].shape);
  const ep = epilogue(c);
  const { body, invocations } = perChannelElements(c, ep, sp.hw, BN_APPLY.pre, BN_APPLY.value);
  return [makeKernel({
    name: 'bn_apply',
    buffers: [...BN_APPLY.buffers(c), outBuf(c)],
    params: { ...BN_APPLY.params(c), hw: sp.hw, n: outNumel(c) },
    invocations, workgroup: ewWorkgroup(c.variant), epilogue: ep, body,
  })];
}

export function bnBwdXEvalKernels(c: NodeCtx): Kernel[] {
  const sp = channelSplit(c, c.inTypes[0].shape);
  const ep = epilogue(c);
  const { body, invocations } = perChannelElements(c, ep, sp.hw, '', (i) => `DY[${i}] * G[ch] / sqrt(ST[P.c + ch] + P.eps)`);
  return [makeKernel({
    name: 'bn_bwd_x_eval',
    buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'ST'), inBuf(c, 2, 'G'), outBuf(c)],
    params: { c: sp.C, hw: sp.hw, eps: eps(c), n: outNumel(c) },
    invocations, workgroup: ewWorkgroup(c.variant), epilogue: ep, body,
  })];
}

/** [Σdy; inv·Σdy·(x − mean)] per channel: one split reduction over dy and x (partials [chunk, term, channel]). */
export function bnBwdSumsKernels(c: NodeCtx): Kernel[] {
  const sp = channelSplit(c, c.inTypes[1].shape);
  return [
    channelPartialsKernel(c, 'bn_bwd_sums', sp, [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), inBuf(c, 2, 'ST')],
      ['DY[k]', 'DY[k] * (X[k] - mean)'], '\n  let mean = ST[ch];'),
    sumPartialsKernel(c, 'bn_bwd_sums', sp.chunks, sp.C * 2, {
      extra: [inBuf(c, 2, 'ST')], params: { c: sp.C, eps: eps(c) },
      finish: (i) => `acc * select(1.0, 1.0 / sqrt(ST[${i}] + P.eps), ${i} >= P.c)`,
    }),
  ];
}

/** Training-mode dx, elementwise from bn_bwd_sums' S. */
export function bnBwdXKernels(c: NodeCtx): Kernel[] {
  const sp = channelSplit(c, c.inTypes[1].shape);
  const ep = epilogue(c);
  const { body, invocations } = perChannelElements(c, ep, sp.hw, `${INV}
  let mf = f32(P.m);`,
    (i) => `(G[ch] * inv / mf) * (mf * DY[${i}] - S[ch] - ((X[${i}] - ST[ch]) * inv) * S[P.c + ch])`);
  return [makeKernel({
    name: 'bn_bwd_x',
    buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), inBuf(c, 2, 'ST'), inBuf(c, 3, 'G'), inBuf(c, 4, 'S'), outBuf(c)],
    params: { c: sp.C, hw: sp.hw, m: sp.m, eps: eps(c), n: outNumel(c) },
    invocations, workgroup: ewWorkgroup(c.variant), epilogue: ep, body,
  })];
}

/** r ← (1−m)·r + m·batch, the variance row scaled by count/(count−1) (PyTorch's unbiased running variance). */
export function bnRunningUpdateKernels(c: NodeCtx): Kernel[] {
  const C = c.node.type.shape[1], m = c.node.attrs.momentum as number, cnt = c.node.attrs.count as number;
  const ep = epilogue(c);
  return [makeKernel({
    name: 'bn_running_update',
    buffers: [inBuf(c, 0, 'R'), inBuf(c, 1, 'ST'), outBuf(c)],
    params: { c: C, keep: ['f32', 1 - m], mom: ['f32', m], momv: ['f32', m * (cnt / Math.max(cnt - 1, 1))] },
    invocations: 2 * C,
    epilogue: ep,
    body: `  out[t] = ${ep.q('P.keep * R[t] + select(P.mom, P.momv, t >= P.c) * ST[t]', 't')};`,
  })];
}
