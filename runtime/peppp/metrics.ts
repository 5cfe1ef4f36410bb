/**
 * How good a prediction for one held-out data set is (README §6.6): hypervolume difference and convergence between
 * the predicted and the true frontier, regret of the best configuration found, and the share of memory spent measuring.
 */
import { hypervolume, paretoFrontier } from './pareto.js';

export interface RowMetrics {
  hyperdiff: number;
  convergence: number;
  regret: number;
  memory_fraction: number;
  best_error: number;
  /** the predicted frontier, as column indices */
  predicted_frontier: number[];
}

/**
 * `mem`, `err`: the held-out row's true memory and error over all columns; `candidates`: the columns under the cap
 * (V); `measured`: the measured columns (S, column indices); `predicted[p]`: ê of candidate position p;
 * `maxMemory`: the x scale (max of the whole memory matrix).
 */
export function rowMetrics(mem: ArrayLike<number>, err: ArrayLike<number>, candidates: readonly number[], measured: readonly number[],
  predicted: ArrayLike<number>, maxMemory: number): RowMetrics {
  // TF over all columns (also under a cap, as PEPPP does); PF over the candidates with predicted errors
  const tf = paretoFrontier(mem, err);
  const candMem = candidates.map((j) => mem[j]);
  const pfPos = paretoFrontier(candMem, predicted);
  const pf = pfPos.map((p) => candidates[p]);
  let maxError = 1;
  for (const p of pfPos) maxError = Math.max(maxError, predicted[p]);
  let conv = 0;
  for (const p of pfPos) {
    let best = Infinity;
    for (const q of tf) best = Math.min(best, Math.hypot((predicted[p] - err[q]) / maxError, (candMem[p] - mem[q]) / maxMemory));
    conv += best;
  }
  conv /= pfPos.length || 1;
  const ref = [1, maxError] as const;
  const hvP = hypervolume(pfPos.map((p) => [candMem[p] / maxMemory, predicted[p]] as const), ref);
  const hvT = hypervolume(tf.map((q) => [mem[q] / maxMemory, err[q]] as const), ref);
  // best true error among the measured and the predicted-frontier configurations (all within the cap)
  let found = Infinity;
  for (const j of measured) found = Math.min(found, err[j]);
  for (const j of pf) found = Math.min(found, err[j]);
  let bestAvail = Infinity, memV = 0, memS = 0;
  for (const j of candidates) { bestAvail = Math.min(bestAvail, err[j]); memV += mem[j]; }
  for (const j of measured) memS += mem[j];
  return { hyperdiff: Math.abs(hvP - hvT), convergence: conv, regret: found - bestAvail, memory_fraction: memS / memV, best_error: found, predicted_frontier: pf };
}

/** Mean, standard error std(ddof=0)/sqrt(n) and median of a list. */
export function summarize(xs: readonly number[]): { mean: number; se: number; median: number } {
  const n = xs.length;
  if (!n) return { mean: NaN, se: NaN, median: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  const s = [...xs].sort((a, b) => a - b);
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { mean, se: sd / Math.sqrt(n), median };
}

/** The median of all entries of a matrix (numpy's median: the mean of the middle two for an even count). */
export function medianOf(rows: readonly ArrayLike<number>[]): number {
  const all: number[] = [];
  for (const r of rows) for (let j = 0; j < r.length; j++) all.push(r[j]);
  return summarize(all).median;
}
