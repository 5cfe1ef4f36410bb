/**
 * Which configurations to measure on a new data set (README §6.3), given the embedding Y (k x |V|, one column per
 * candidate). All functions return positions into the candidate list, in selection order.
 */
import { pseudoInverse, Matrix } from 'ml-matrix';
import { permutation, splitmix32, mixSeed } from '../data/random.js';

/** Y as rows (k arrays of |V| numbers). */
export type Embedding = readonly Float64Array[];

/**
 * The column order of QR with column pivoting, as LAPACK's geqp3 produces it: at step i the remaining column with the
 * largest residual norm (after projecting out the chosen ones; the first in the current order on ties) is swapped
 * into place i. After min(k, |V|) steps the rest keep the order the swaps left them in (an artefact, as in LAPACK).
 * Residual norms are recomputed, not downdated: only exact ties could tell the difference.
 */
export function qrPivots(y: Embedding): number[] {
  const k = y.length, nc = k ? y[0].length : 0;
  const a = y.map((r) => Float64Array.from(r)); // working copy, columns permuted as we go
  const perm = Array.from({ length: nc }, (_, j) => j);
  for (let i = 0; i < Math.min(k, nc); i++) {
    let best = i, bestNorm = -1;
    for (let j = i; j < nc; j++) {
      let s = 0; for (let r = i; r < k; r++) s += a[r][j] * a[r][j];
      if (s > bestNorm) { bestNorm = s; best = j; }
    }
    if (best !== i) { for (const row of a) [row[i], row[best]] = [row[best], row[i]]; [perm[i], perm[best]] = [perm[best], perm[i]]; }
    // Householder reflector zeroing column i below row i, applied to the trailing columns
    let norm = 0; for (let r = i; r < k; r++) norm += a[r][i] * a[r][i];
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    const alpha = a[i][i] > 0 ? -norm : norm;
    const v = new Float64Array(k);
    for (let r = i; r < k; r++) v[r] = a[r][i];
    v[i] -= alpha;
    let vv = 0; for (let r = i; r < k; r++) vv += v[r] * v[r];
    if (vv === 0) continue;
    for (let j = i; j < nc; j++) {
      let d = 0; for (let r = i; r < k; r++) d += v[r] * a[r][j];
      const f = (2 * d) / vv;
      for (let r = i; r < k; r++) a[r][j] -= f * v[r];
    }
  }
  return perm;
}

/** QR-MF: the first n pivots. */
export function selectQr(y: Embedding, n: number): number[] {
  return qrPivots(y).slice(0, n);
}

/**
 * ED-MF: the first min(k, n) QR pivots, then n − k greedy D-optimal additions (bug 1 of §6.7 fixed: the released
 * notebook added n on top), each the candidate maximising y_jᵀ (Y_S Y_Sᵀ)⁺ y_j; ties go to the lowest position.
 */
export function selectEd(y: Embedding, n: number): number[] {
  const k = y.length, nc = k ? y[0].length : 0;
  n = Math.min(n, nc);
  const s = qrPivots(y).slice(0, Math.min(k, n));
  const chosen = new Set(s);
  while (s.length < n) {
    // the information matrix Y_S Y_Sᵀ (k x k) and its pseudo-inverse (it is singular only if Y_S has rank < k)
    const info = Matrix.zeros(k, k);
    for (const j of s) for (let p = 0; p < k; p++) for (let q = 0; q < k; q++) info.set(p, q, info.get(p, q) + y[p][j] * y[q][j]);
    const inv = pseudoInverse(info);
    let best = -1, bestScore = -Infinity;
    for (let j = 0; j < nc; j++) {
      if (chosen.has(j)) continue;
      let score = 0;
      for (let p = 0; p < k; p++) { let t = 0; for (let q = 0; q < k; q++) t += inv.get(p, q) * y[q][j]; score += y[p][j] * t; }
      if (score > bestScore) { bestScore = score; best = j; }
    }
    s.push(best); chosen.add(best);
  }
  return s;
}

/** Random-MF: the first n of one uniformly random permutation of the candidates, seeded by (seed, stream). */
export function selectRandom(candidates: number, n: number, seed: number, stream = 0): number[] {
  return Array.from(permutation(candidates, splitmix32(mixSeed(seed, stream)))).slice(0, Math.min(n, candidates));
}

export type Method = 'ed' | 'qr' | 'random';
export const METHODS: readonly Method[] = ['ed', 'qr', 'random'];

/** Positions of the n candidates `method` measures. `seed`/`stream` only matter for random-MF. */
export function selectColumns(method: Method, y: Embedding, n: number, seed = 0, stream = 0): number[] {
  if (method === 'ed') return selectEd(y, n);
  if (method === 'qr') return selectQr(y, n);
  return selectRandom(y[0]?.length ?? 0, n, seed, stream);
}
