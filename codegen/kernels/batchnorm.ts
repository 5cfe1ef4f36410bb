/**
 * Batch norm: statistics, apply, the backward sums and input gradients, and the running-statistics update.
 * Reductions use the split scheme of channel-reduce.ts. bn_stats is two-pass per chunk (chunk mean, then Σ(x − chunk mean)²) and merges
 * chunks with Chan et al.'s pairwise update, so the variance is as accurate as the spec's two-pass float64
 * formula allows in f32 even when |mean| ≫ std. eps, momentum and counts are params.
 */
import { Kernel } from '../kernel.js';
import { attrsOf } from '../../ir/op-registry.js';
import { BufferDecl, NodeCtx, ParamValues, epilogue, ewWorkgroup, inBuf, makeKernel, outBuf, outNumel } from './builder.js';
import { XYZW } from './tiles.js';
import { CHUNK_HEADER, chanDims, channelPartialsKernel, channelSplit, chunkLoop } from './channel-reduce.js';
import { partialsBuffer, sumPartialsKernel } from './split-reduce.js';

const eps = (c: NodeCtx): ['f32', number] => ['f32', attrsOf(c.node, 'bn_apply', 'bn_bwd_sums', 'bn_bwd_x', 'bn_bwd_x_eval').eps];
const INV = `
  let inv = 1.0 / sqrt(ST[P.c + ch] + P.eps);`;

/**
 * A per-element kernel whose values depend on the element's channel. With H·W a multiple of 4 each invocation takes
 * four elements of one channel through vec4 views of the per-element buffers (`elems`, and `out`): one 16-byte load
 * or store per buffer, and the channel (an integer division, scalarised on CPU drivers) and the per-channel setup
 * `pre` computed once per four elements. Otherwise one element per invocation. `value(at)` is an element's value,
 * `at(name)` the element of per-element buffer `name`; the store goes through the node's epilogue.
 */
function perChannelKernel(
  c: NodeCtx, name: string, ins: BufferDecl[], elems: string[], params: ParamValues, pre: string, value: (at: (b: string) => string) => string,
): Kernel {
  const ep = epilogue(c), n = outNumel(c), { hw } = chanDims(c.node.type.shape);
  const vec4 = hw % 4 === 0;
  const view = (b: BufferDecl) => (vec4 && (elems.includes(b.name) || b.name === 'out') ? { ...b, view: 'vec4<f32>' } : b);
  const body = vec4 ? `
  let i0 = t * 4u;
  let ch = (i0 / P.hw) % P.c;${pre}
${elems.map((e) => `  let v_${e} = ${e}[t];`).join('\n')}
  out[t] = vec4<f32>(${[...XYZW].map((k, q) => ep.q(value((e) => `v_${e}.${k}`), `i0 + ${q}u`)).join(', ')});` : `
  let i = t;
  let ch = (t / P.hw) % P.c;${pre}
  out[i] = ${ep.q(value((e) => `${e}[i]`), 'i')};`;
  return makeKernel({
    name: `${name}${vec4 ? '_vec4' : ''}`, buffers: [...ins, outBuf(c)].map(view), params: { ...params, hw, n },
    invocations: vec4 ? n / 4 : n, workgroup: ewWorkgroup(c.variant), epilogue: ep, body,
  });
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
 * bn_apply's value of element x (WGSL) of channel `ch` (after `BN_APPLY.pre`, which defines `inv` from `ch`), its bindings
 * and params: shared by its own kernel and DIVISION's compression computing it (compress.ts, with_input).
 */
export const BN_APPLY = {
  pre: INV,
  value: (x: string) => `(${x} - ST[ch]) * inv * G[ch] + B[ch]`,
  buffers: (c: NodeCtx) => [inBuf(c, 0, 'X'), inBuf(c, 1, 'ST'), inBuf(c, 2, 'G'), inBuf(c, 3, 'B')],
  params: (c: NodeCtx) => ({ c: c.inTypes[0].shape[1], eps: eps(c) }),
};

export function bnApplyKernels(c: NodeCtx): Kernel[] {
  return [perChannelKernel(c, 'bn_apply', BN_APPLY.buffers(c), ['X'], BN_APPLY.params(c), BN_APPLY.pre, (at) => BN_APPLY.value(at('X')))];
}

export function bnBwdXEvalKernels(c: NodeCtx): Kernel[] {
  return [perChannelKernel(c, 'bn_bwd_x_eval', [inBuf(c, 0, 'DY'), inBuf(c, 1, 'ST'), inBuf(c, 2, 'G')], ['DY'],
    { c: c.inTypes[0].shape[1], eps: eps(c) }, '', (at) => `${at('DY')} * G[ch] / sqrt(ST[P.c + ch] + P.eps)`)];
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
  return [perChannelKernel(c, 'bn_bwd_x', [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), inBuf(c, 2, 'ST'), inBuf(c, 3, 'G'), inBuf(c, 4, 'S')], ['DY', 'X'],
    { c: sp.C, m: sp.m, eps: eps(c) }, `${INV}
  let mf = f32(P.m);`,
    (at) => `(G[ch] * inv / mf) * (mf * ${at('DY')} - S[ch] - ((${at('X')} - ST[ch]) * inv) * S[P.c + ch])`)];
}

/** r ← (1−m)·r + m·batch, the variance row scaled by count/(count−1) (PyTorch's unbiased running variance). */
export function bnRunningUpdateKernels(c: NodeCtx): Kernel[] {
  const C = c.node.type.shape[1], { momentum: m, count: cnt } = attrsOf(c.node, 'bn_running_update');
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
