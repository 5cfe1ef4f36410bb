/**
 * PEPPP's meta-LOOCV (README §6.4, with the bugs of §6.7 fixed): hold out each data set in turn, learn the
 * configuration embedding from the others (observed fully, or sampled and completed by SoftImpute), measure a few
 * configurations of the held-out set as a method chooses, predict the rest and score the predicted frontier.
 */
import { NamedMatrix, decimal } from './matrix-csv.js';
import { Dense, dense } from './linalg.js';
import { rowMetrics, summarize, medianOf, RowMetrics } from './metrics.js';
import { candidatesWithin, embedding, predictErrors } from './predict.js';
import { Method, selectColumns } from './select.js';
import { Sampling, nonuniformMask, nonuniformProbabilities, samplingRng, softImpute, uniformMask } from './softimpute.js';
import { mixSeed } from '../data/random.js';

/** A memory cap on the candidates of the held-out set: none, the median of the memory matrix, or a number of MB. */
export type Cap = 'none' | 'median' | number;

export function parseCap(text: string): Cap {
  if (text === 'none' || text === 'median') return text;
  const v = decimal(text);
  if (!(v > 0)) throw new Error(`a memory cap must be none, median or a number of MB > 0, got '${text}'`);
  return v;
}

export interface LoocvOptions {
  rank?: number;                  // embedding / completion rank k (5)
  methods?: Method[];             // (['ed', 'random'])
  measurements?: number[];        // n values (5..15)
  caps?: Cap[];                   // (['none'])
  sampling?: Sampling;            // how meta-training rows are observed ({kind: 'none'})
  /** a fixed (rows − 1) x cols observation mask for uniform sampling (e.g. the released one), row-major */
  mask?: Uint8Array;
  lambda?: number;                // SoftImpute λ (0.1)
  maxIter?: number;               // SoftImpute iteration cap (2500)
  seed?: number;                  // sampling masks and random-MF (0)
  testRows?: number[];            // held-out rows (default: all)
  onProgress?: (done: number, total: number, note: string) => void;
}

export interface LoocvRow extends RowMetrics { row: number; name: string; method: Method; cap: Cap; measurements: number; selected: number[] }

export interface LoocvResult {
  method: Method; cap: Cap; cap_mb: number | null; measurements: number; rows: number;
  hyperdiff: number; convergence: number; regret: number; memory_fraction: number;
  hyperdiff_se: number; convergence_se: number; regret_se: number; memory_fraction_se: number;
  hyperdiff_median: number; convergence_median: number; regret_median: number; memory_fraction_median: number;
}

export interface LoocvOutput {
  max_memory: number; median_cap: number; completion?: { iterations: number[]; converged: number };
  results: LoocvResult[]; per_row: LoocvRow[];
}

/** The meta-training matrix for held-out row r: completed (sampling) or the other rows as they are. */
function metaTraining(err: NamedMatrix, mem: NamedMatrix, r: number, o: Required<Pick<LoocvOptions, 'rank' | 'lambda' | 'maxIter' | 'seed'>> & LoocvOptions):
  { z: Dense; iterations?: number; converged?: boolean } {
  const train = err.data.filter((_, i) => i !== r), trainMem = mem.data.filter((_, i) => i !== r);
  const m = train.length, n = err.cols.length;
  const x = dense(m, n);
  train.forEach((row, i) => x.a.set(row, i * n));
  const s = o.sampling ?? { kind: 'none' };
  if (s.kind === 'none') return { z: x };
  let mask: Uint8Array, weights: Float64Array | undefined;
  if (s.kind === 'uniform') {
    // one pattern for every fold, as PEPPP's protocol: the given mask, or one drawn from the seed
    mask = o.mask ?? uniformMask(m, n, s.ratio, samplingRng(mixSeed(o.seed, 1)));
    if (mask.length !== m * n) throw new Error(`the observation mask has ${mask.length} entries; the meta-training matrix is ${m} x ${n}`);
  } else {
    // probabilities from the training rows only (PEPPP's notebook also sampled the test row: bug 5)
    const memFlat = new Float64Array(m * n);
    trainMem.forEach((row, i) => memFlat.set(row, i * n));
    ({ mask, weights } = nonuniformMask(nonuniformProbabilities(memFlat, s.pMax), samplingRng(mixSeed(o.seed, 2))));
  }
  const res = softImpute(x, mask, weights, { lambda: o.lambda, rank: o.rank, maxIter: o.maxIter });
  return { z: res.z, iterations: res.iterations, converged: res.converged };
}

export function runLoocv(err: NamedMatrix, mem: NamedMatrix, opts: LoocvOptions = {}): LoocvOutput {
  const o = { rank: 5, lambda: 0.1, maxIter: 2500, seed: 0, ...opts };
  const methods = o.methods ?? ['ed', 'random'];
  const ns = o.measurements ?? Array.from({ length: 11 }, (_, i) => i + 5);
  const caps = o.caps ?? ['none'];
  const R = err.rows.length, C = err.cols.length;
  if (R < 2) throw new Error('LOOCV needs at least 2 data sets');
  for (const d of [err, mem]) for (const row of d.data) for (const v of row) if (!Number.isFinite(v)) throw new Error('LOOCV needs complete error and memory matrices (no missing entries)');
  let maxMemory = -Infinity;
  for (const row of mem.data) for (const v of row) maxMemory = Math.max(maxMemory, v);
  const medianCap = medianOf(mem.data);
  const testRows = o.testRows ?? Array.from({ length: R }, (_, i) => i);
  const perRow: LoocvRow[] = [];
  const iterations: number[] = [];
  let converged = 0;
  testRows.forEach((r, done) => {
    const t = metaTraining(err, mem, r, o);
    if (t.iterations !== undefined) { iterations.push(t.iterations); if (t.converged) converged++; }
    const memRow = mem.data[r], errRow = err.data[r];
    caps.forEach((cap) => {
      const limit = cap === 'none' ? Infinity : cap === 'median' ? medianCap : cap;
      const cand = candidatesWithin(memRow, limit);
      if (!cand.length) return; // nothing fits this row under the cap: the row does not count for it
      const y = embedding(t.z, cand, o.rank);
      methods.forEach((method) => ns.forEach((n) => {
        if (n > cand.length) return;
        const pos = selectColumns(method, y, n, o.seed, mixSeed(r, cand.length));
        const pred = predictErrors(y, pos, pos.map((p) => errRow[cand[p]]));
        const selected = pos.map((p) => cand[p]);
        perRow.push({ row: r, name: err.rows[r], method, cap, measurements: n, selected, ...rowMetrics(memRow, errRow, cand, selected, pred, maxMemory) });
      }));
    });
    o.onProgress?.(done + 1, testRows.length, t.iterations !== undefined ? `SoftImpute ${t.iterations} iterations${t.converged ? '' : ' (cap)'}` : '');
  });
  const results: LoocvResult[] = [];
  for (const cap of caps) for (const method of methods) for (const n of ns) {
    const rs = perRow.filter((x) => x.cap === cap && x.method === method && x.measurements === n);
    if (!rs.length) continue;
    const [hd, cv, rg, mf] = (['hyperdiff', 'convergence', 'regret', 'memory_fraction'] as const).map((k) => summarize(rs.map((x) => x[k])));
    results.push({
      method, cap, cap_mb: cap === 'none' ? null : cap === 'median' ? medianCap : cap, measurements: n, rows: rs.length,
      hyperdiff: hd.mean, convergence: cv.mean, regret: rg.mean, memory_fraction: mf.mean,
      hyperdiff_se: hd.se, convergence_se: cv.se, regret_se: rg.se, memory_fraction_se: mf.se,
      hyperdiff_median: hd.median, convergence_median: cv.median, regret_median: rg.median, memory_fraction_median: mf.median,
    });
  }
  return { max_memory: maxMemory, median_cap: medianCap, ...(iterations.length ? { completion: { iterations, converged } } : {}), results, per_row: perRow };
}

/** Parses a measurement range: `N`, `A..B` or a comma list of those. */
export function parseMeasurements(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:\.\.(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`measurements must be N, A..B or a comma list of those, got '${text}'`);
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b < a) throw new Error(`measurement range '${part}' must run upwards from 1 or more`);
    for (let n = a; n <= b; n++) if (!out.includes(n)) out.push(n);
  }
  return out;
}
