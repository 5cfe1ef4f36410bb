/**
 * Kernels of the sequence ops (ir/ops/sequence.ts, ir/ops/activation.ts). Simple and deterministic first: row ops
 * (layer norm, softmax) run one invocation per row, column sums (layer norm's parameter gradients, the embedding
 * gradient) one invocation per output element looping over the rows or tokens in order, so every run gives the
 * same bits; batched matmul one invocation per output element. Every final store applies the node's epilogue.
 */
import { Kernel } from '../kernel.js';
import { NEG_INF, NEG_INF_PARAM, NodeCtx, epilogue, inBuf, makeKernel, outBuf, outNumel, scratchRef } from './builder.js';
import { numel } from '../../ir/types.js';
import { bmmDims, strides } from '../../ir/ops/sequence.js';

const last = (s: readonly number[]) => s[s.length - 1];

export function embeddingKernels(c: NodeCtx): Kernel[] {
  const [V, D] = c.inTypes[1].shape, ep = epilogue(c);
  return [makeKernel({
    name: 'embedding', buffers: [inBuf(c, 0, 'ids'), inBuf(c, 1, 'W'), outBuf(c)],
    params: { d: D, v: V }, invocations: outNumel(c), epilogue: ep,
    body: `
  let id = u32(clamp(ids[t / P.d], 0, i32(P.v) - 1));
  out[t] = ${ep.q('W[id * P.d + t % P.d]', 't')};`,
  })];
}

export function positionsKernels(c: NodeCtx): Kernel[] {
  return [makeKernel({
    name: 'positions', buffers: [outBuf(c)], params: { t: c.node.type.shape[1] }, invocations: outNumel(c),
    body: '  out[t] = i32(t % P.t);',
  })];
}

/**
 * The deterministic scatter-add, without atomics: a first kernel (one invocation per vocabulary row v) lists the
 * positions of v's tokens in order — at offset #{tokens with a smaller id}, so the lists tile one array — and a
 * second (one invocation per (v, d)) sums dy over v's list in that order: the order of the CPU's loop over the
 * tokens, so the same bits. Work V·N for the lists plus N·D for the sums, not V·D·N.
 */
export function embeddingBwdKernels(c: NodeCtx): Kernel[] {
  const [V, D] = c.node.type.shape, N = numel(c.inTypes[1].shape), ep = epilogue(c);
  const ranges = { name: 'R', ref: scratchRef(0, 2 * V * 4), elem: 'u32' as const };
  const pos = { name: 'POS', ref: scratchRef(1, N * 4), elem: 'u32' as const };
  const lists = makeKernel({
    name: 'embedding_bwd_lists', buffers: [inBuf(c, 1, 'ids'), { ...ranges, access: 'read_write' }, { ...pos, access: 'read_write' }],
    params: { tokens: N, v: V }, invocations: V,
    body: `
  let v = i32(t);
  var start = 0u;
  for (var n = 0u; n < P.tokens; n++) { let id = ids[n]; if (id >= 0 && id < v) { start++; } }
  var j = start;
  for (var n = 0u; n < P.tokens; n++) { if (ids[n] == v) { POS[j] = n; j++; } }
  R[2u * t] = start;
  R[2u * t + 1u] = j;`,
  });
  const sums = makeKernel({
    name: 'embedding_bwd_sum', buffers: [inBuf(c, 0, 'dy'), { ...ranges, access: 'read' }, { ...pos, access: 'read' }, outBuf(c)],
    params: { d: D }, invocations: V * D, epilogue: ep,
    body: `
  let v = t / P.d;
  let d = t % P.d;
  var s = 0.0;
  for (var j = R[2u * v]; j < R[2u * v + 1u]; j++) { s = s + dy[POS[j] * P.d + d]; }
  out[t] = ${ep.q('s', 't')};`,
  });
  return [lists, sums];
}

/** WGSL: the row's mean `m` and `inv` = 1/√(var + eps) of X (row base = t·D), two passes in f32. */
const ROW_STATS = `
  let base = t * P.d;
  var s = 0.0;
  for (var j = 0u; j < P.d; j++) { s += X[base + j]; }
  let m = s / f32(P.d);
  var v = 0.0;
  for (var j = 0u; j < P.d; j++) { let e = X[base + j] - m; v += e * e; }
  let inv = 1.0 / sqrt(v / f32(P.d) + P.eps);`;

export function layernormKernels(c: NodeCtx): Kernel[] {
  const D = last(c.node.type.shape), ep = epilogue(c);
  return [makeKernel({
    name: 'layernorm', buffers: [inBuf(c, 0, 'X'), inBuf(c, 1, 'G'), inBuf(c, 2, 'B'), outBuf(c)],
    params: { d: D, eps: ['f32', c.node.attrs.eps as number] }, invocations: outNumel(c) / D, epilogue: ep,
    body: `${ROW_STATS}
  for (var j = 0u; j < P.d; j++) { out[base + j] = ${ep.q('(X[base + j] - m) * inv * G[j] + B[j]', 'base + j')}; }`,
  })];
}

export function layernormStatsKernels(c: NodeCtx): Kernel[] {
  const D = last(c.inTypes[0].shape), ep = epilogue(c);
  return [makeKernel({
    name: 'layernorm_stats', buffers: [inBuf(c, 0, 'X'), outBuf(c)],
    params: { d: D, eps: ['f32', c.node.attrs.eps as number] }, invocations: c.node.type.shape[0], epilogue: ep,
    body: `${ROW_STATS}
  out[2u * t] = ${ep.q('m', '2u * t')};
  out[2u * t + 1u] = ${ep.q('inv', '2u * t + 1u')};`,
  })];
}

export function layernormBwdXKernels(c: NodeCtx): Kernel[] {
  const D = last(c.node.type.shape), ep = epilogue(c);
  return [makeKernel({
    name: 'layernorm_bwd_x', buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), inBuf(c, 2, 'S'), inBuf(c, 3, 'G'), outBuf(c)],
    params: { d: D }, invocations: outNumel(c) / D, epilogue: ep,
    body: `
  let base = t * P.d;
  let m = S[2u * t];
  let inv = S[2u * t + 1u];
  var sg = 0.0;
  var sgx = 0.0;
  for (var j = 0u; j < P.d; j++) { let g = DY[base + j] * G[j]; sg += g; sgx += g * (X[base + j] - m) * inv; }
  sg = sg / f32(P.d);
  sgx = sgx / f32(P.d);
  for (var j = 0u; j < P.d; j++) {
    out[base + j] = ${ep.q('inv * (DY[base + j] * G[j] - sg - (X[base + j] - m) * inv * sgx)', 'base + j')};
  }`,
  })];
}

/** One invocation per feature d, summing over the rows in order; writes dγ (row 0) and dβ (row 1). */
export function layernormBwdParamsKernels(c: NodeCtx): Kernel[] {
  const D = c.node.type.shape[1], ep = epilogue(c);
  return [makeKernel({
    name: 'layernorm_bwd_params', buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), inBuf(c, 2, 'S'), outBuf(c)],
    params: { d: D, rows: numel(c.inTypes[1].shape) / D }, invocations: D, epilogue: ep,
    body: `
  var sx = 0.0;
  var s = 0.0;
  for (var r = 0u; r < P.rows; r++) {
    let k = r * P.d + t;
    sx += DY[k] * (X[k] - S[2u * r]) * S[2u * r + 1u];
    s += DY[k];
  }
  out[t] = ${ep.q('sx', 't')};
  out[P.d + t] = ${ep.q('s', 'P.d + t')};`,
  })];
}

export function softmaxKernels(c: NodeCtx): Kernel[] {
  const s = c.node.type.shape, K = last(s), ep = epilogue(c), causal = !!c.node.attrs.causal;
  return [makeKernel({
    name: 'softmax', buffers: [inBuf(c, 0, 'X'), outBuf(c)],
    params: { k: K, rows_t: s.length >= 2 ? s[s.length - 2] : 1, causal: causal ? 1 : 0, ...NEG_INF_PARAM },
    invocations: outNumel(c) / K, epilogue: ep,
    body: `
  let base = t * P.k;
  let n = select(P.k, t % P.rows_t + 1u, P.causal == 1u);
  var m = ${NEG_INF};
  for (var j = 0u; j < n; j++) { m = max(m, X[base + j]); }
  var e = 0.0;
  for (var j = 0u; j < n; j++) { e += exp(X[base + j] - m); }
  for (var j = 0u; j < P.k; j++) {
    out[base + j] = ${ep.q('select(0.0, exp(X[base + j] - m) / e, j < n)', 'base + j')};
  }`,
  })];
}

export function softmaxBwdKernels(c: NodeCtx): Kernel[] {
  const K = last(c.node.type.shape), ep = epilogue(c);
  return [makeKernel({
    name: 'softmax_bwd', buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'Y'), outBuf(c)],
    params: { k: K }, invocations: outNumel(c) / K, epilogue: ep,
    body: `
  let base = t * P.k;
  var s = 0.0;
  for (var j = 0u; j < P.k; j++) { s += DY[base + j] * Y[base + j]; }
  for (var j = 0u; j < P.k; j++) { out[base + j] = ${ep.q('Y[base + j] * (DY[base + j] - s)', 'base + j')}; }`,
  })];
}

/** One invocation per output element: its coordinates by the output shape, its source by the permuted strides
 *  (shapes padded to 6 axes with leading 1s). */
export function permuteKernels(c: NodeCtx): Kernel[] {
  const p = c.node.attrs.perm as number[], os = c.node.type.shape, is = strides(c.inTypes[0].shape), ep = epilogue(c);
  const pad = 6 - os.length, dims = [...new Array(pad).fill(1), ...os], src = [...new Array(pad).fill(0), ...p.map((a) => is[a])];
  const params: Record<string, number> = {};
  dims.forEach((d, k) => { params[`o${k}`] = d; });
  src.forEach((s, k) => { params[`s${k}`] = s; });
  const steps = [5, 4, 3, 2, 1, 0].map((k) => `  src += (r % P.o${k}) * P.s${k}; r = r / P.o${k};`).join('\n');
  return [makeKernel({
    name: 'permute', buffers: [inBuf(c, 0, 'X'), outBuf(c)], params, invocations: outNumel(c), epilogue: ep,
    body: `
  var r = t;
  var src = 0u;
${steps}
  out[t] = ${ep.q('X[src]', 't')};`,
  })];
}

/**
 * A 4×4 register tile of C per invocation (rows and columns past the edge clamp their loads and skip their stores):
 * each element is still Σ_k in order, as the CPU's loop, with 16 products per 8 loads.
 */
export function batchMatmulKernels(c: NodeCtx): Kernel[] {
  const ta = !!c.node.attrs.ta, tb = !!c.node.attrs.tb, ep = epilogue(c);
  const { batch, M, N, K } = bmmDims(c.inTypes[0].shape, c.inTypes[1].shape, ta, tb);
  const tm = Math.ceil(M / 4), tn = Math.ceil(N / 4);
  const a = (r: string) => (ta ? `A[a0 + k * P.m + ${r}]` : `A[a0 + ${r} * P.k + k]`), b = (col: string) => (tb ? `B[b0 + ${col} * P.k + k]` : `B[b0 + k * P.n + ${col}]`);
  const rows = [0, 1, 2, 3].map((r) => `min(i0 + ${r}u, P.m - 1u)`), cols = [0, 1, 2, 3].map((q) => `min(j0 + ${q}u, P.n - 1u)`);
  const stores = [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((q) => {
    const i = `(c0 + (i0 + ${r}u) * P.n + j0 + ${q}u)`;
    return `  if (i0 + ${r}u < P.m && j0 + ${q}u < P.n) { out[${i}] = ${ep.q(`acc${r}.${'xyzw'[q]}`, i)}; }`;
  }).join('\n')).join('\n');
  return [makeKernel({
    name: `batch_matmul${ta ? '_ta' : ''}${tb ? '_tb' : ''}`, buffers: [inBuf(c, 0, 'A'), inBuf(c, 1, 'B'), outBuf(c)],
    params: { m: M, n: N, k: K, tm, tn }, invocations: numel(batch) * tm * tn, epilogue: ep, flops: 2 * outNumel(c) * K,
    body: `
  let q = t / (P.tm * P.tn);
  let i0 = ((t / P.tn) % P.tm) * 4u;
  let j0 = (t % P.tn) * 4u;
  let a0 = q * P.m * P.k;
  let b0 = q * P.k * P.n;
  let c0 = q * P.m * P.n;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < P.k; k++) {
    let bv = vec4<f32>(${cols.map(b).join(', ')});
    acc0 += ${a(rows[0])} * bv;
    acc1 += ${a(rows[1])} * bv;
    acc2 += ${a(rows[2])} * bv;
    acc3 += ${a(rows[3])} * bv;
  }
${stores}`,
  })];
}

/**
 * erfc(x/√2) in f32 from x (Numerical Recipes' erfcc, a Chebyshev fit with fractional error below 1.2e-7): relative
 * accuracy for both signs, so GELU of negative inputs (½·x·erfc(|x|/√2), a small number) keeps its precision.
 * e^(−x²/2) is formed from x itself (lpc_gauss): rounding z = x/√2, or x²/2, to f32 first would cost |x²|·2^−24
 * relative in the tail (8e-6 at x = −11). With xh = |x| cut to 8 bits, x² = xh² + (|x| − xh)(|x| + xh), and
 * e^(−xh²/2) = 2^(−xh²/2·log2 e) with log2 e = 1.4375 + L2: xh²/2·1.4375 is exact and splits into an integer n
 * (applied by ldexp) and a fraction.
 */
const ERFC_WGSL = `
fn lpc_gauss(x: f32) -> f32 {
  let ax = abs(x);
  let xh = bitcast<f32>(bitcast<u32>(ax) & 0xffff0000u);
  let s = 0.5 * xh * xh;
  let a = s * 1.4375;
  let n = round(a);
  return ldexp(exp2(-((a - n) + s * 0.0051950407214462757)), -i32(n)) * exp(0.5 * (xh - ax) * (xh + ax));
}
fn lpc_erfcs(x: f32) -> f32 {
  let z = abs(x) * 0.70710678118654752;
  let u = 1.0 / (1.0 + 0.5 * z);
  let r = u * lpc_gauss(x) * exp(-1.26551223 + u * (1.00002368 + u * (0.37409196 + u * (0.09678418 + u * (-0.18628806 +
    u * (0.27886807 + u * (-1.13520398 + u * (1.48851587 + u * (-0.82215223 + u * 0.17087277)))))))));
  return select(2.0 - r, r, x >= 0.0);
}
`;

export function geluKernels(c: NodeCtx): Kernel[] {
  const ep = epilogue(c);
  return [makeKernel({
    name: 'gelu', buffers: [inBuf(c, 0, 'X'), outBuf(c)], params: {}, invocations: outNumel(c), epilogue: ep, decls: ERFC_WGSL,
    body: `
  let x = X[t];
  out[t] = ${ep.q('0.5 * x * lpc_erfcs(-x)', 't')};`,
  })];
}

export function geluBwdKernels(c: NodeCtx): Kernel[] {
  const ep = epilogue(c);
  return [makeKernel({
    name: 'gelu_bwd', buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), outBuf(c)], params: {}, invocations: outNumel(c), epilogue: ep, decls: ERFC_WGSL,
    body: `
  let x = X[t];
  let dg = 0.5 * lpc_erfcs(-x) + x * 0.39894228040143268 * lpc_gauss(x);
  out[t] = ${ep.q('DY[t] * dg', 't')};`,
  })];
}
