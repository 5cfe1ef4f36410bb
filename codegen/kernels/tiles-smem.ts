/**
 * The shared-memory tiling for GPUs, one generator for every GEMM-like op: C[M×N] = Σ_k A(m,k)·B(k,n), where the
 * op supplies A and B as WGSL functions (a plain matrix, or an implicit im2col gather for the convolutions) and
 * the store of one C element. A workgroup of 16×16 invocations computes a B×B block of C; per K-slice of 16 it
 * stages A[B×16] and B[16×B] in workgroup memory (each invocation loads B/16 elements of each, zero past the edges),
 * then each invocation accumulates (B/16)² outputs at rows ty + 16·i and columns tx + 16·j (spread so that the
 * reads of a row of invocations hit consecutive words). Split-K: workgroups along z take consecutive K ranges.
 */
import { range } from './tiles.js';

export interface SmemGemm {
  /** Block size B (32 or 64). */
  b: number;
  /** WGSL u32 expressions of the sizes. */
  m: string; n: string; k: string;
  /** WGSL declarations of `fn gemm_a(m: u32, k: u32) -> f32` and `fn gemm_b(k: u32, n: u32) -> f32` (called in range). */
  loaders: string;
  /** WGSL statements storing f32 `v` as C(gm, gn) (u32s, in range). */
  store: string;
  /** Split-K: WGSL u32 expression of the K-range length per z workgroup (default: all of K). */
  perChunk?: string;
}

const T = 16, BK = 16;

/** The body and declarations of a smem GEMM kernel (workgroup [16, 16, 1]; dispatch [⌈N/B⌉, ⌈M/B⌉, chunks]). */
export function smemGemm(s: SmemGemm): { body: string; decls: string } {
  const R = s.b / T; // outputs per invocation per side
  const I = range(R);
  const loadsA = (s.b * BK) / (T * T), loadsB = loadsA;
  const decls = `${s.loaders}
var<workgroup> sa: array<f32, ${s.b * BK}>;
var<workgroup> sb: array<f32, ${s.b * BK}>;
`;
  const body = `
  let gm_n = ${s.m};
  let gn_n = ${s.n};
  let m0 = wid.y * ${s.b}u;
  let n0 = wid.x * ${s.b}u;
  ${s.perChunk ? `let k_lo = wid.z * (${s.perChunk});
  let k_hi = min(${s.k}, k_lo + (${s.perChunk}));` : `let k_lo = 0u;
  let k_hi = ${s.k};`}
${I.map((i) => `  var acc${i} = array<f32, ${R}>(${I.map(() => '0.0').join(', ')});`).join('\n')}
  for (var k0 = k_lo; k0 < k_hi; k0 += ${BK}u) {
${range(loadsA).map((e) => `    {
      let idx = li + ${e * T * T}u;
      let mm = idx % ${s.b}u; let kk = idx / ${s.b}u;
      let gm = m0 + mm; let gk = k0 + kk;
      let ok = gm < gm_n && gk < k_hi;
      sa[kk * ${s.b}u + mm] = select(0.0, gemm_a(min(gm, gm_n - 1u), min(gk, k_hi - 1u)), ok);
    }`).join('\n')}
${range(loadsB).map((e) => `    {
      let idx = li + ${e * T * T}u;
      let nn = idx % ${s.b}u; let kk = idx / ${s.b}u;
      let gn = n0 + nn; let gk = k0 + kk;
      let ok = gn < gn_n && gk < k_hi;
      sb[kk * ${s.b}u + nn] = select(0.0, gemm_b(min(gk, k_hi - 1u), min(gn, gn_n - 1u)), ok);
    }`).join('\n')}
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
${I.map((i) => `      let a${i} = sa[kk * ${s.b}u + lid.y + ${i * T}u];`).join('\n')}
${I.map((j) => `      let b${j} = sb[kk * ${s.b}u + lid.x + ${j * T}u];`).join('\n')}
${I.map((i) => I.map((j) => `      acc${i}[${j}] += a${i} * b${j};`).join(' ')).join('\n')}
    }
    workgroupBarrier();
  }
${I.map((i) => I.map((j) => `  {
    let gm = m0 + lid.y + ${i * T}u; let gn = n0 + lid.x + ${j * T}u;
    if (gm < gm_n && gn < gn_n) { let v = acc${i}[${j}]; ${s.store} }
  }`).join('\n')).join('\n')}`;
  return { body, decls };
}

export const SMEM_WORKGROUP: [number, number, number] = [T, T, 1];
