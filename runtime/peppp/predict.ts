/**
 * A new data set (README §6.2): embed the candidate configurations with the meta-training matrix, regress the few
 * measured errors on the embedding, predict every candidate's error, and read off the predicted frontier and the
 * configuration to use under a memory budget.
 */
import { Dense, dense, minNormLstsq, topRightSingularVectors } from './linalg.js';
import { paretoFrontier } from './pareto.js';
import { Embedding } from './select.js';

/** Columns of `z` (rows x cols, row-major) whose indices are `cols`, as a dense matrix. */
export function takeColumns(z: Dense, cols: readonly number[]): Dense {
  const out = dense(z.m, cols.length);
  for (let i = 0; i < z.m; i++) cols.forEach((c, j) => { out.a[i * cols.length + j] = z.a[i * z.n + c]; });
  return out;
}

/**
 * Y: the first k right singular vectors of the completed meta-training matrix restricted to the candidate columns
 * (k x |V|, orthonormal rows, no scaling, no centring). Fewer rows if the matrix has fewer than k dimensions.
 */
export function embedding(z: Dense, candidates: readonly number[], k: number): Embedding {
  if (!candidates.length) throw new Error('no candidate configurations to embed');
  for (const v of z.a) if (!Number.isFinite(v)) throw new Error('the meta-training matrix has missing entries; complete it first (lpc peppp fit)');
  return topRightSingularVectors(takeColumns(z, candidates), Math.min(k, z.m, candidates.length));
}

/**
 * Predicted errors of all candidates from measured errors at positions `measured` (into the candidate list):
 * x = argmin ||Y_Sᵀ x − e_S|| (minimum norm), ê = Yᵀ x, not clipped.
 */
export function predictErrors(y: Embedding, measured: readonly number[], errors: readonly number[]): Float64Array {
  if (measured.length !== errors.length) throw new Error(`${measured.length} measured positions but ${errors.length} errors`);
  if (!measured.length) throw new Error('no measured configurations to predict from');
  const k = y.length, nc = y[0].length;
  const x = minNormLstsq(measured.map((j) => Float64Array.from({ length: k }, (_, p) => y[p][j])), errors);
  return Float64Array.from({ length: nc }, (_, j) => { let s = 0; for (let p = 0; p < k; p++) s += y[p][j] * x[p]; return s; });
}

/**
 * The configuration to use under `budget` MB: the lowest (predicted) error among those whose memory is <= budget;
 * ties go to less memory, then the lower index. A budget below every memory is an error naming the smallest.
 */
export function recommend(memory: ArrayLike<number>, error: ArrayLike<number>, budget: number, names?: readonly string[]): number {
  let best = -1, minMem = Infinity, minAt = -1;
  for (let j = 0; j < memory.length; j++) {
    if (Number.isNaN(memory[j]) || Number.isNaN(error[j])) continue;
    if (memory[j] < minMem) { minMem = memory[j]; minAt = j; }
    if (memory[j] > budget) continue;
    if (best < 0 || error[j] < error[best] || (error[j] === error[best] && memory[j] < memory[best])) best = j;
  }
  if (minAt < 0) throw new Error('no configuration has both a memory and an error');
  if (best < 0) throw new Error(`budget ${budget} MB is below every configuration's memory; the smallest is ${minMem} MB (${names ? names[minAt] : `column ${minAt}`})`);
  return best;
}

/** Predicted frontier over the candidates: indices into the candidate list, by memory ascending. */
export function predictedFrontier(candidateMemory: ArrayLike<number>, predicted: ArrayLike<number>): number[] {
  return paretoFrontier(candidateMemory, predicted);
}

/** The candidate configurations of a memory row: those at most `limit` MB (NaN memory: never a candidate). */
export function candidatesWithin(memRow: ArrayLike<number>, limit: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < memRow.length; j++) if (memRow[j] <= limit) out.push(j);
  return out;
}

/** A new data set's prediction over its candidate columns: predicted errors (by candidate position), the predicted
 *  frontier and, with a budget, the recommended column. */
export interface RowPrediction { predicted: Float64Array; frontier: number[]; recommended?: number }

/**
 * Predicts a new data set from the measured `cols` (column indices, all candidates) and their `errors`: embedding
 * `y` over `cand`, memory `memRow` by column. Frontier and recommendation are column indices.
 */
export function predictRow(y: Embedding, cand: readonly number[], cols: readonly number[], errors: readonly number[],
  memRow: ArrayLike<number>, budget?: number, names?: readonly string[]): RowPrediction {
  const predicted = predictErrors(y, cols.map((j) => cand.indexOf(j)), errors);
  const candMem = cand.map((j) => memRow[j]);
  const frontier = paretoFrontier(candMem, predicted).map((q) => cand[q]);
  const recommended = budget === undefined ? undefined : cand[recommend(candMem, predicted, budget, names && cand.map((j) => names[j]))];
  return { predicted, frontier, recommended };
}
