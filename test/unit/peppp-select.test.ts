/** Embedding, least squares, QR pivots, ED-MF and random-MF: the README's worked examples (§6.2, §6.3) and brute force. */
import * as path from 'node:path';
import { Matrix, SVD } from 'ml-matrix';
import { dense, minNormLstsq, topSvd, topRightSingularVectors } from '../../runtime/peppp/linalg.js';
import { qrPivots, selectEd, selectQr, selectRandom } from '../../runtime/peppp/select.js';
import { candidatesWithin, embedding, predictErrors, recommend } from '../../runtime/peppp/predict.js';
import { readMatrixCsv } from '../../runtime/peppp/matrix-csv.js';
import { rand, randn } from './helpers.js';

const FIX = path.resolve('test/fixtures/peppp');

/** An m x r matrix with orthonormal columns (Gram-Schmidt of Gaussian columns). */
function orthonormal(m: number, r: number, seed: number): number[][] {
  const g = rand(seed), cols: number[][] = [];
  for (let c = 0; c < r; c++) {
    const v = Array.from(randn(g, m));
    for (const q of cols) { const d = q.reduce((s, x, i) => s + x * v[i], 0); q.forEach((x, i) => { v[i] -= d * x; }); }
    const nn = Math.hypot(...v); cols.push(v.map((x) => x / nn));
  }
  return cols;
}

/** U diag(s) Vᵀ, row-major. */
function fromSvd(m: number, n: number, s: number[], seed: number): Float64Array {
  const U = orthonormal(m, s.length, seed), V = orthonormal(n, s.length, seed + 1), a = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) a[i * n + j] = s.reduce((t, sv, l) => t + sv * U[l][i] * V[l][j], 0);
  return a;
}

const det = (rows: number[][]): number => new Matrix(rows).isSquare() ? new SVD(new Matrix(rows)).diagonal.reduce((a, b) => a * b, 1) : NaN;

describe('SVD accuracy (float64, a matrix with known singular values)', () => {
  const s = [9, 4, 2.5, 1, 0.5, 1e-3, 1e-6];
  test.each([[20, 30], [30, 20], [86, 99]])('top-5 of %i x %i', (m, n) => {
    const a = fromSvd(m, n, s, m * 31 + n);
    const t = topSvd(dense(m, n, a), 5);
    t.s.forEach((v, l) => expect(Math.abs(v - s[l])).toBeLessThan(1e-11));
    // ‖A v − σ u‖ small: the vectors are singular vectors, not just the values
    t.s.forEach((sv, l) => { for (let i = 0; i < m; i++) { let r = 0; for (let j = 0; j < n; j++) r += a[i * n + j] * t.v[l][j]; expect(Math.abs(r - sv * t.u[l][i])).toBeLessThan(1e-10); } });
    const ml = new SVD(new Matrix(Array.from({ length: m }, (_, i) => Array.from(a.slice(i * n, (i + 1) * n)))), { autoTranspose: true });
    ml.diagonal.slice(0, s.length).forEach((v, l) => expect(Math.abs(v - s[l])).toBeLessThan(1e-12));
    // right singular vectors from ml-matrix span the same top-5 space (|<v, v'>| = 1)
    const rv = topRightSingularVectors(dense(m, n, a), 5);
    rv.forEach((v, l) => expect(Math.abs(v.reduce((d, x, j) => d + x * t.v[l][j], 0))).toBeCloseTo(1, 9));
  });
});

describe('least squares and prediction (§6.2)', () => {
  test('Y = [[1,2,3,4],[0,1,0,1]], measuring columns 0, 1 of e = (0.2, 0.1)ᵀY predicts e exactly', () => {
    const y = [Float64Array.from([1, 2, 3, 4]), Float64Array.from([0, 1, 0, 1])];
    const x = minNormLstsq([[1, 0], [2, 1]], [0.2, 0.5]);
    expect(x[0]).toBeCloseTo(0.2, 12); expect(x[1]).toBeCloseTo(0.1, 12);
    Array.from(predictErrors(y, [0, 1], [0.2, 0.5])).forEach((v, j) => expect(v).toBeCloseTo([0.2, 0.5, 0.6, 0.9][j], 12));
  });

  test('underdetermined: the minimum-norm solution (orthogonal to the null space)', () => {
    const x = minNormLstsq([[1, 1]], [2]);
    expect(x[0]).toBeCloseTo(1, 12); expect(x[1]).toBeCloseTo(1, 12);
  });

  test('rank 1: one measured entry recovers a rank-1 row', () => {
    const u = [0.5, 0.8, 0.3, 0.9], v = [0.2, 0.4, 0.9, 0.6, 0.7, 0.1];
    const z = dense(4, 6, Float64Array.from({ length: 24 }, (_, i) => u[Math.floor(i / 6)] * v[i % 6]));
    const y = embedding(z, [0, 1, 2, 3, 4, 5], 1);
    const c = 0.7, row = v.map((x) => c * x);
    const pred = predictErrors(y, [2], [row[2]]);
    row.forEach((e, j) => expect(pred[j]).toBeCloseTo(e, 12));
  });

  test('recommend: lowest error under the budget; a budget below everything names the smallest memory', () => {
    const mem = [100, 200, 300], err = [0.5, 0.2, 0.1];
    expect(recommend(mem, err, 250)).toBe(1);
    expect(recommend(mem, err, 1e9)).toBe(2);
    expect(() => recommend(mem, err, 50, ['a', 'b', 'c'])).toThrow('budget 50 MB is below every configuration\'s memory; the smallest is 100 MB (a)');
  });
});

describe('QR pivots and ED-MF (§6.3)', () => {
  const Y = [Float64Array.from([3, 0, 1, 2]), Float64Array.from([0, 1, 2, -0.5])];

  test('README example: QR pivots [0, 2]; ED adds 3 (score 0.625 > 0.2778) then 1: [0, 2, 3, 1]', () => {
    expect(selectQr(Y, 2)).toEqual([0, 2]);
    // the scores by hand: (Y_S Y_Sᵀ) for S = {0, 2} is [[10, 2], [2, 4]]
    const I = new Matrix([[4, -2], [-2, 10]]).div(36); // its inverse
    const score = (j: number) => { const yv = [Y[0][j], Y[1][j]]; return yv[0] * (I.get(0, 0) * yv[0] + I.get(0, 1) * yv[1]) + yv[1] * (I.get(1, 0) * yv[0] + I.get(1, 1) * yv[1]); };
    expect(score(1)).toBeCloseTo(0.2778, 4); expect(score(3)).toBeCloseTo(0.625, 4);
    expect(selectEd(Y, 4)).toEqual([0, 2, 3, 1]);
    expect(selectEd(Y, 3)).toEqual([0, 2, 3]); // n − k additions (bug 1 fixed), not n
    expect(selectEd(Y, 1)).toEqual([0]);
  });

  test('QR pivots follow the greedy volume rule (brute force with Gram determinants)', () => {
    const g = rand(3);
    for (let t = 0; t < 20; t++) {
      const k = 3, n = 12;
      const y = Array.from({ length: k }, () => randn(g, n));
      const piv = qrPivots(y);
      expect([...piv].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      const S: number[] = [];
      for (let step = 0; step < k; step++) {
        // residual norm² of column j after projecting out S = det(G_{S+j}) / det(G_S)
        const gram = (cols: number[]) => cols.map((a) => cols.map((b) => y.reduce((s, r) => s + r[a] * r[b], 0)));
        const base = S.length ? det(gram(S)) : 1;
        let best = -1, bestV = -Infinity;
        for (let j = 0; j < n; j++) if (!S.includes(j)) { const v = det(gram([...S, j])) / base; if (v > bestV) { bestV = v; best = j; } }
        expect(piv[step]).toBe(best);
        S.push(best);
      }
    }
  });

  test('ED greedy additions maximise det(Y_S Y_Sᵀ) step by step (brute force)', () => {
    const g = rand(11);
    const k = 3, n = 15;
    const y = Array.from({ length: k }, () => randn(g, n));
    const sel = selectEd(y, 9);
    expect(new Set(sel).size).toBe(9);
    for (let step = k; step < 9; step++) {
      const info = (cols: number[]) => y.map((a) => y.map((b) => cols.reduce((s, c) => s + a[c] * b[c], 0)));
      const before = sel.slice(0, step);
      const dets = Array.from({ length: n }, (_, j) => (before.includes(j) ? -Infinity : det(info([...before, j]))));
      expect(dets[sel[step]]).toBeCloseTo(Math.max(...dets), 8);
    }
  });

  test('on the released data: ED never picks a configuration over the cap; uncapped it picks >= k independent columns', () => {
    const e = readMatrixCsv(path.join(FIX, 'error_matrix_slice.csv')), m = readMatrixCsv(path.join(FIX, 'memory_mb_matrix_slice.csv'));
    const n = e.cols.length, z = dense(e.rows.length - 1, n);
    e.data.slice(1).forEach((r, i) => z.a.set(r, i * n));
    // the README's median cap of the 87-row matrix: 64x64 rows keep 30, 33 or 39 columns
    for (const [row, cap] of [[0, 230], [10, 816.3723754882812], [15, 816.3723754882812]]) {
      const cand = candidatesWithin(m.data[row], cap);
      expect(cand).toEqual([...m.data[row].keys()].filter((j) => m.data[row][j] <= cap)); // brute force
      expect(row === 0 ? cand.length < n : [30, 33, 39].includes(cand.length)).toBe(true);
      const y = embedding(z, cand, 5);
      for (const q of selectEd(y, 12)) expect(m.data[row][cand[q]]).toBeLessThanOrEqual(cap);
    }
    const all = Array.from({ length: n }, (_, j) => j);
    const y = embedding(z, all, 5);
    for (const cnt of [5, 8, 15]) {
      const sel = selectEd(y, cnt);
      expect(new Set(sel).size).toBe(cnt);
      // rank of the selected columns of the meta-training matrix: >= 5 independent ones
      const cols = new Matrix(Array.from({ length: z.m }, (_, i) => sel.map((j) => z.a[i * n + j])));
      expect(new SVD(cols).rank).toBeGreaterThanOrEqual(5);
    }
  });

  test('random-MF: prefixes of one seeded permutation, all distinct, seeds differ', () => {
    const a = selectRandom(30, 15, 4, 1), b = selectRandom(30, 5, 4, 1), c = selectRandom(30, 15, 5, 1);
    expect(a.slice(0, 5)).toEqual(b);
    expect(new Set(a).size).toBe(15);
    for (const j of a) expect(j >= 0 && j < 30).toBe(true);
    expect(c).not.toEqual(a);
  });
});
