/**
 * The small dense linear algebra PEPPP's meta-learning needs, on row-major Float64Arrays.
 *
 * SoftImpute takes a top-k SVD of an ~86 x 99 matrix thousands of times; a full SVD (ml-matrix: ~16 ms) would make a
 * sampled LOOCV take an hour. `topSvd` is exact in float64 all the same: it forms the Gram matrix of the smaller side,
 * reduces it to tridiagonal form (Householder), finds the k largest eigenvalues by Sturm bisection and their vectors by
 * inverse iteration. Squaring costs accuracy only for singular values near eps·σ₁, which the shrinkage zeroes anyway.
 */
import { Matrix, SVD, pseudoInverse } from 'ml-matrix';

/** A row-major m x n matrix. */
export interface Dense { m: number; n: number; a: Float64Array }

export const dense = (m: number, n: number, a: Float64Array = new Float64Array(m * n)): Dense => ({ m, n, a });

/** Top-k singular triplets: s descending; u[l] has m entries, v[l] has n entries. */
export interface TopSvd { s: number[]; u: Float64Array[]; v: Float64Array[] }

/**
 * The k largest eigenvalues (descending) and unit eigenvectors of the symmetric n x n matrix `g` (row-major,
 * overwritten).
 */
export function topEigSym(g: Float64Array, n: number, k: number): { values: number[]; vectors: Float64Array[] } {
  k = Math.min(k, n);
  // Householder tridiagonalisation: step p zeroes column p below the subdiagonal; reflector I − β v vᵀ kept in vs
  const vs: Float64Array[] = [], betas: number[] = [];
  const p = new Float64Array(n), w = new Float64Array(n);
  for (let c = 0; c < n - 2; c++) {
    const v = new Float64Array(n);
    let sigma = 0;
    for (let i = c + 2; i < n; i++) sigma += g[i * n + c] ** 2;
    const x0 = g[(c + 1) * n + c];
    if (sigma === 0) { vs.push(v); betas.push(0); continue; }
    const mu = Math.sqrt(x0 * x0 + sigma);
    const v0 = x0 <= 0 ? x0 - mu : -sigma / (x0 + mu);
    v[c + 1] = 1;
    for (let i = c + 2; i < n; i++) v[i] = g[i * n + c] / v0;
    const beta = (2 * v0 * v0) / (sigma + v0 * v0);
    // A ← H A H on the trailing block: p = β A v, w = p − (β/2)(pᵀv) v, A −= v wᵀ + w vᵀ
    let pv = 0;
    for (let i = c; i < n; i++) {
      let t = 0;
      for (let j = c + 1; j < n; j++) t += g[i * n + j] * v[j];
      p[i] = beta * t;
      if (i > c) pv += p[i] * v[i];
    }
    for (let i = c; i < n; i++) w[i] = p[i] - 0.5 * beta * pv * v[i];
    w[c] = p[c]; // column c: v[c] = 0, so only A v lands there
    for (let i = c; i < n; i++) for (let j = c; j < n; j++) g[i * n + j] -= v[i] * w[j] + w[i] * v[j];
    vs.push(v); betas.push(beta);
  }
  const d = new Float64Array(n), e = new Float64Array(n); // e[i] couples i and i+1
  for (let i = 0; i < n; i++) { d[i] = g[i * n + i]; if (i + 1 < n) e[i] = g[(i + 1) * n + i]; }
  // Sturm count: how many eigenvalues are < x
  const below = (x: number): number => {
    let cnt = 0, q = d[0] - x;
    if (q < 0) cnt++;
    for (let i = 1; i < n; i++) {
      q = d[i] - x - (e[i - 1] * e[i - 1]) / (q === 0 ? 1e-300 : q);
      if (q < 0) cnt++;
    }
    return cnt;
  };
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const r = (i > 0 ? Math.abs(e[i - 1]) : 0) + (i + 1 < n ? Math.abs(e[i]) : 0);
    lo = Math.min(lo, d[i] - r); hi = Math.max(hi, d[i] + r);
  }
  const span = Math.max(hi - lo, Number.MIN_VALUE), scale = Math.max(Math.abs(lo), Math.abs(hi));
  const values: number[] = [];
  for (let t = 0; t < k; t++) {
    const idx = n - 1 - t; // the eigenvalue with exactly idx eigenvalues below it
    let a = lo - span * 1e-12, b = hi + span * 1e-12;
    while (b - a > 4 * Number.EPSILON * scale + Number.MIN_VALUE) {
      const mid = 0.5 * (a + b);
      if (mid === a || mid === b) break;
      if (below(mid) <= idx) a = mid; else b = mid;
    }
    values.push(0.5 * (a + b));
  }
  // inverse iteration on the tridiagonal matrix, orthogonalised against earlier vectors (clustered eigenvalues)
  const vectors: Float64Array[] = [];
  for (let t = 0; t < k; t++) {
    const z = new Float64Array(n);
    for (let i = 0; i < n; i++) z[i] = 1 + ((i * 7919 + t * 104729) % 1000) / 1000; // fixed, generic start
    const shift = values[t] + scale * 1e-14 * (t + 1);
    for (let it = 0; it < 3; it++) {
      solveTridiagShifted(d, e, shift, z);
      for (const q of vectors) { let dot = 0; for (let i = 0; i < n; i++) dot += q[i] * z[i]; for (let i = 0; i < n; i++) z[i] -= dot * q[i]; }
      let nn = 0; for (let i = 0; i < n; i++) nn += z[i] * z[i];
      nn = Math.sqrt(nn) || 1; for (let i = 0; i < n; i++) z[i] /= nn;
    }
    vectors.push(z);
  }
  // back to the original basis: x = H_0 H_1 … H_{n−3} z
  for (const z of vectors) {
    for (let c = vs.length - 1; c >= 0; c--) {
      const v = vs[c], beta = betas[c];
      if (beta === 0) continue;
      let dot = 0; for (let i = c + 1; i < n; i++) dot += v[i] * z[i];
      dot *= beta; for (let i = c + 1; i < n; i++) z[i] -= dot * v[i];
    }
  }
  return { values, vectors };
}

/** Solves (T − σI) x = z in place for the symmetric tridiagonal T (diag d, off-diag e), LU with partial pivoting. */
function solveTridiagShifted(d: Float64Array, e: Float64Array, sigma: number, z: Float64Array): void {
  const n = d.length;
  if (n === 1) { z[0] /= (d[0] - sigma) || 1e-300; return; }
  // rows of U hold up to 3 entries (diag, +1, +2) after pivoting
  const u0 = new Float64Array(n), u1 = new Float64Array(n), u2 = new Float64Array(n);
  let a = d[0] - sigma, b = e[0], c2 = 0; // current row: [a, b, c2] at columns i, i+1, i+2
  for (let i = 0; i < n - 1; i++) {
    const below0 = e[i], below1 = d[i + 1] - sigma, below2 = i + 1 < n - 1 ? e[i + 1] : 0;
    if (Math.abs(a) >= Math.abs(below0)) {
      const l = a === 0 ? 0 : below0 / (a || 1e-300);
      u0[i] = a || 1e-300; u1[i] = b; u2[i] = c2;
      z[i + 1] -= l * z[i];
      a = below1 - l * b; b = below2 - l * c2; c2 = 0;
    } else {
      const l = a / below0;
      u0[i] = below0; u1[i] = below1; u2[i] = below2;
      const zi = z[i]; z[i] = z[i + 1]; z[i + 1] = zi - l * z[i];
      const na = b - l * below1, nb = c2 - l * below2;
      a = na; b = nb; c2 = 0;
    }
  }
  u0[n - 1] = a || 1e-300;
  z[n - 1] /= u0[n - 1];
  if (n >= 2) z[n - 2] = (z[n - 2] - u1[n - 2] * z[n - 1]) / u0[n - 2];
  for (let i = n - 3; i >= 0; i--) z[i] = (z[i] - u1[i] * z[i + 1] - u2[i] * z[i + 2]) / u0[i];
}

/** The k largest singular triplets of `x`, exact in float64 (see the file comment). Zero singular values are dropped. */
export function topSvd(x: Dense, k: number): TopSvd {
  const { m, n, a } = x;
  const wide = m <= n, r = wide ? m : n; // Gram of the smaller side: r x r
  const g = new Float64Array(r * r);
  if (wide) {
    for (let i = 0; i < m; i++) for (let j = i; j < m; j++) {
      let t = 0; const oi = i * n, oj = j * n;
      for (let c = 0; c < n; c++) t += a[oi + c] * a[oj + c];
      g[i * m + j] = t; g[j * m + i] = t;
    }
  } else {
    for (let row = 0; row < m; row++) {
      const o = row * n;
      for (let i = 0; i < n; i++) { const ai = a[o + i]; if (ai === 0) continue; for (let j = i; j < n; j++) g[i * n + j] += ai * a[o + j]; }
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i];
  }
  const { values, vectors } = topEigSym(g, r, k);
  const out: TopSvd = { s: [], u: [], v: [] };
  const tiny = (values[0] > 0 ? values[0] : 0) * 1e-28;
  values.forEach((lam, l) => {
    if (!(lam > tiny) || lam <= 0) return;
    const s = Math.sqrt(lam), q = vectors[l];
    // the other side's vector: Xᵀu/σ (wide) or Xv/σ (tall)
    const other = new Float64Array(wide ? n : m);
    if (wide) { for (let i = 0; i < m; i++) { const qi = q[i] / s; if (qi === 0) continue; for (let c = 0; c < n; c++) other[c] += a[i * n + c] * qi; } }
    else for (let i = 0; i < m; i++) { let t = 0; for (let c = 0; c < n; c++) t += a[i * n + c] * q[c]; other[i] = t / s; }
    out.s.push(s);
    out.u.push(wide ? q : other);
    out.v.push(wide ? other : q);
  });
  return out;
}

/** Full-accuracy right singular vectors (rows of Vᵀ, the first k) via ml-matrix's SVD: for the embedding. */
export function topRightSingularVectors(x: Dense, k: number): Float64Array[] {
  const mat = new Matrix(x.m, x.n);
  for (let i = 0; i < x.m; i++) for (let j = 0; j < x.n; j++) mat.set(i, j, x.a[i * x.n + j]);
  const svd = new SVD(mat, { autoTranspose: true, computeLeftSingularVectors: false });
  const V = svd.rightSingularVectors, s = svd.diagonal;
  const order = s.map((_, i) => i).sort((p, q) => s[q] - s[p] || p - q).slice(0, Math.min(k, s.length));
  return order.map((c) => Float64Array.from({ length: x.n }, (_, j) => V.get(j, c)));
}

/** Minimum-norm least-squares solution of A x ≈ b (A: rows x cols, given as rows). */
export function minNormLstsq(rows: readonly ArrayLike<number>[], b: ArrayLike<number>): Float64Array {
  const A = new Matrix(rows.map((r) => Array.from(r)));
  const x = pseudoInverse(A).mmul(Matrix.columnVector(Array.from(b)));
  return Float64Array.from(x.getColumn(0));
}
