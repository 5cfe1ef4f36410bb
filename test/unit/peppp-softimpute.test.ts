/** Weighted SoftImpute (§6.1) and the sampling masks (§6.5), on synthetic matrices with known answers. */
import { dense } from '../../runtime/peppp/linalg.js';
import { nonuniformMask, nonuniformProbabilities, parseSampling, samplingRng, softImpute, uniformMask } from '../../runtime/peppp/softimpute.js';
import { rand } from './helpers.js';

/** A rank-r matrix with entries in [0.1, 0.9]: a constant (one rank) plus r − 1 products of uniform factors. */
function lowRank(m: number, n: number, rank: number, seed: number): Float64Array {
  const g = rand(seed), r = rank - 1;
  const U = Array.from({ length: m }, () => Array.from({ length: r }, () => g())), V = Array.from({ length: n }, () => Array.from({ length: r }, () => g()));
  return Float64Array.from({ length: m * n }, (_, i) => 0.1 + (0.8 / r) * U[Math.floor(i / n)].reduce((s, u, l) => s + u * V[i % n][l], 0));
}
const relFro = (a: Float64Array, b: Float64Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / b.reduce((s, v) => s + v * v, 0));

describe('weighted SoftImpute', () => {
  test('a rank-3 86 x 99 matrix (the size PEPPP completes) observed on 30% is recovered closely', () => {
    const m = 86, n = 99, truth = lowRank(m, n, 3, 1);
    const mask = uniformMask(m, n, 0.3, samplingRng(2));
    const x = Float64Array.from(truth, (v, i) => (mask[i] ? v : NaN));
    const res = softImpute(dense(m, n, x), mask, undefined, { rank: 3, lambda: 0.1 });
    const off = (a: Float64Array) => a.filter((_, i) => !mask[i]);
    expect(relFro(off(res.z.a), off(truth))).toBeLessThan(0.05);
    for (const v of res.z.a) expect(v >= 0 && v <= 1).toBe(true);
  });

  test('the fully observed case with a tiny λ returns the matrix itself, and stops before the cap', () => {
    const m = 12, n = 9, truth = lowRank(m, n, 2, 5);
    const res = softImpute(dense(m, n, truth), new Uint8Array(m * n).fill(1), undefined, { rank: 2, lambda: 1e-9 });
    expect(res.converged).toBe(true);
    expect(relFro(res.z.a, truth)).toBeLessThan(1e-6);
  });

  test('weights: an entry with weight 0 does not pull the fit', () => {
    const m = 6, n = 5, truth = lowRank(m, n, 2, 9);
    const x = truth.slice(); x[7] = 1; // a wild value, weighted 0
    const w = new Float64Array(m * n).fill(1); w[7] = 0;
    const res = softImpute(dense(m, n, x), new Uint8Array(m * n).fill(1), w, { rank: 2, lambda: 1e-9 });
    expect(Math.abs(res.z.a[7] - truth[7])).toBeLessThan(1e-4);
  });

  test('an observed NaN is an error', () => {
    expect(() => softImpute(dense(1, 2, Float64Array.from([NaN, 0.5])), Uint8Array.from([1, 1]))).toThrow('entry (0, 0) is observed but not a number');
  });
});

describe('sampling', () => {
  test('uniform: about the ratio, reproducible from the seed', () => {
    const a = uniformMask(100, 100, 0.2, samplingRng(3)), b = uniformMask(100, 100, 0.2, samplingRng(3));
    expect(a).toEqual(b);
    const frac = a.reduce((s, v) => s + v, 0) / a.length;
    expect(Math.abs(frac - 0.2)).toBeLessThan(0.02);
  });

  test('non-uniform: p = p_max · rank(1/memory) / (N − 1); the largest memory is never sampled; weights 1/p', () => {
    const mem = Float64Array.from([300, 100, 200, 400, 250]);
    // 1/mem ascending: 400, 300, 250, 200, 100 → ranks 0..4
    const p = nonuniformProbabilities(mem, 0.2);
    expect(Array.from(p)).toEqual([0.05, 0.2, 0.15000000000000002, 0, 0.1]);
    const big = Float64Array.from({ length: 2000 }, (_, i) => 100 + i);
    const { mask, weights } = nonuniformMask(nonuniformProbabilities(big, 0.4), samplingRng(1));
    expect(mask[1999]).toBe(0);
    const pb = nonuniformProbabilities(big, 0.4);
    mask.forEach((v, i) => { if (v) expect(weights[i]).toBeCloseTo(1 / pb[i], 12); else expect(weights[i]).toBe(0); });
    // small memories are sampled more often than large ones
    const first = mask.slice(0, 1000).reduce((s, v) => s + v, 0), last = mask.slice(1000).reduce((s, v) => s + v, 0);
    expect(first).toBeGreaterThan(last * 2);
  });

  test('parseSampling', () => {
    expect(parseSampling('none')).toEqual({ kind: 'none' });
    expect(parseSampling('uniform=0.2')).toEqual({ kind: 'uniform', ratio: 0.2 });
    expect(parseSampling('nonuniform=1')).toEqual({ kind: 'nonuniform', pMax: 1 });
    for (const bad of ['uniform', 'uniform=0', 'uniform=1.5', 'random=0.2', 'uniform=abc']) expect(() => parseSampling(bad)).toThrow('sampling must be');
  });
});
