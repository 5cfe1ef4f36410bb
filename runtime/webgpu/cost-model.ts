/**
 * A cost model per op kind that picks a tile for a shape class nobody has measured on this adapter (tune.ts, when
 * the budget runs out). Fitted on full tunes' timings of every candidate (bench/ship-tiles.ts ships one per driver
 * family, shipped-cost-model-data.ts), it predicts each candidate's time relative to the class's fastest, as log2:
 *
 * - a regression on features of the class and the tile: the tile's typical speed for the op; its slopes in the GEMM
 *   sides M, N, K; the waste of partial tiles on the M and N sides (padded / real); and too little parallelism
 *   (log2 of the invocations below 2^11, per tile kind and per kernel/stride family);
 * - the measured profiles of the nearest classes (up to 3 of the same op and kernel size, weighted by 1 / (1 + their
 *   log2 distance)): the shipped ones and those this adapter measured.
 *
 * The two are averaged. Timings on a loaded CPU driver are noisy (a candidate can read 10× slow once), so targets are
 * clipped at 4× the best and several measurements of a class are merged by their minimum. Features come from the
 * class string alone, so the model needs no graph and the shipped data is class → tile → number.
 */
import { parseTile, Tile } from '../../codegen/kernels/tiles.js';

/** Relative log2 times above this are "slow", not "how slow": one noisy reading must not steer the fit. */
export const CAP = 2;
const RIDGE = 3;
const NEIGHBOURS = 3;
/** A stride that differs counts as this many octaves of size difference between neighbours. */
const STRIDE_DISTANCE = 3;

/** Shape class → tile → milliseconds (a tune cache entry's `ms`). */
export type Timings = Record<string, Record<string, number>>;

export interface CostModel {
  /** Feature name → coefficient of the regression. */
  weights: Record<string, number>;
  /** Shape class → tile → log2(time / the class's best), clipped at CAP: the nearest-class part. */
  profiles: Record<string, Record<string, number>>;
}

interface ClassInfo { op: string; kh: number; kw: number; stride: number; m: number; n: number; k: number }

/** The op, kernel size, stride and GEMM sides of a shape class string (tiles.ts shapeClass). */
export function parseClass(cls: string): ClassInfo {
  const parts = cls.split(' ');
  const [m, n, k] = parts.slice(-3).map((p) => Number(p.slice(1)) || 1);
  const kernel = parts.find((p) => /^k\d+x\d+$/.test(p));
  const [kh, kw] = kernel ? kernel.slice(1).split('x').map(Number) : [1, 1];
  const s = parts.find((p) => /^s\d+$/.test(p));
  return { op: parts[0], kh, kw, stride: s ? Number(s.slice(1)) : 1, m, n, k };
}

const log2 = (x: number) => Math.log2(Math.max(x, 1e-9));

/**
 * How many GEMM columns (the N side) one invocation covers: N for register tiles, N rows of every kx for window tiles,
 * N Winograd tiles of 2×2 or 4×4 outputs (weight gradients: N input channels of 3×3 taps).
 */
function columnsPerInvocation(c: ClassInfo, t: Tile): number {
  if (t.kind === 'smem') return t.b;
  if (t.kind === 'reg') return t.n;
  if (t.kind === 'win') return t.n * c.kw;
  const bwdWeight = c.op === 'conv2d_bwd_weight';
  return t.n * (bwdWeight ? 9 : t.kind === 'wino' ? 4 : 16);
}

/** The regression's features of a tile on a shape class (name → value; absent means 0). */
export function features(cls: string, tileName: string): Record<string, number> {
  const c = parseClass(cls), t = parseTile(tileName);
  const tm = t.kind === 'smem' ? t.b : t.m, cols = columnsPerInvocation(c, t);
  const kind = t.kind, op = c.op;
  const invocations = Math.ceil(c.m / tm) * Math.ceil(c.n / cols);
  const f: Record<string, number> = {
    [`${op}|${tileName}`]: 1,
    [`${op}|${tileName}|M`]: 0.3 * log2(c.m),
    [`${op}|${tileName}|N`]: 0.3 * log2(c.n),
    [`${op}|${tileName}|K`]: 0.3 * log2(c.k),
    [`${op}|waste-m`]: log2((Math.ceil(c.m / tm) * tm) / c.m),
    [`${op}|waste-n`]: log2((Math.ceil(c.n / cols) * cols) / c.n),
    [`${op}|${kind}|parallel`]: Math.min(0, log2(invocations) - 11),
    [`${op}|k${c.kh}s${c.stride}|${kind}|parallel`]: Math.min(0, log2(invocations) - 12),
  };
  return f;
}

/** A class's timings as clipped log2 ratios to its fastest (classes with fewer than two positive timings: none). */
export function relativeProfile(ms: Record<string, number>): Record<string, number> | undefined {
  const ok = Object.entries(ms).filter(([, v]) => v > 0);
  if (ok.length < 2) return undefined;
  const best = Math.min(...ok.map(([, v]) => v));
  return Object.fromEntries(ok.map(([t, v]) => [t, Math.min(CAP, log2(v / best))]));
}

/** Timings of several full tunes merged per class and tile by their minimum (noise on a CPU driver only adds). */
export function mergeTimings(all: Timings[]): Timings {
  const out: Timings = {};
  for (const t of all)
    for (const [cls, ms] of Object.entries(t)) {
      const o = (out[cls] ??= {});
      for (const [tile, v] of Object.entries(ms)) if (v > 0) o[tile] = Math.min(o[tile] ?? Infinity, v);
    }
  return out;
}

/** Solves the symmetric positive definite system A x = b (Cholesky; A is n×n row-major). */
export function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw new Error('cost model: the normal equations are not positive definite');
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / l[j * n + j];
    }
  const y = new Float64Array(n), x = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * y[k];
    y[i] = s / l[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * x[k];
    x[i] = s / l[i * n + i];
  }
  return x;
}

/**
 * Fits the model on full tunes' timings: ridge least squares (λ = 3) of the clipped relative log2 times on the
 * features and an intercept per class (dropped after the fit), and the profiles of every class.
 */
export function fitCostModel(timings: Timings): CostModel {
  const rows: { f: Record<string, number>; y: number }[] = [];
  const profiles: CostModel['profiles'] = {};
  for (const [cls, ms] of Object.entries(timings).sort(([a], [b]) => a.localeCompare(b))) {
    const p = relativeProfile(ms);
    if (!p) continue;
    profiles[cls] = p;
    // a class's own intercept absorbs how far its fastest sits from the typical tile (only differences rank)
    for (const [tile, y] of Object.entries(p)) rows.push({ f: { ...features(cls, tile), [`class|${cls}`]: 1 }, y });
  }
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.f)))].sort();
  const index = new Map(names.map((n, i) => [n, i]));
  const n = names.length;
  const ata = new Float64Array(n * n), atb = new Float64Array(n);
  for (const r of rows) {
    const e = Object.entries(r.f).filter(([, v]) => v !== 0).map(([k, v]) => [index.get(k)!, v] as const);
    for (const [i, vi] of e) {
      atb[i] += vi * r.y;
      for (const [j, vj] of e) ata[i * n + j] += vi * vj;
    }
  }
  for (let i = 0; i < n; i++) ata[i * n + i] += RIDGE;
  const w = solveSpd(ata, atb, n);
  const weights: Record<string, number> = {};
  names.forEach((name, i) => { if (w[i] !== 0 && !name.startsWith('class|')) weights[name] = w[i]; });
  return { weights, profiles };
}

/** The regression's prediction: log2 of a tile's time on `cls`, up to a constant per class. */
export function regressionScore(model: CostModel, cls: string, tile: string): number {
  return Object.entries(features(cls, tile)).reduce((s, [k, v]) => s + (model.weights[k] ?? 0) * v, 0);
}

/** The classes nearest to `cls` with profiles (same op and kernel size), at most NEIGHBOURS, nearest first. */
export function neighbours(cls: string, profiles: CostModel['profiles']): { cls: string; distance: number }[] {
  const c = parseClass(cls);
  const out: { cls: string; distance: number }[] = [];
  for (const other of Object.keys(profiles)) {
    const o = parseClass(other);
    if (o.op !== c.op || o.kh !== c.kh || o.kw !== c.kw) continue;
    const distance = Math.abs(log2(o.m / c.m)) + Math.abs(log2(o.n / c.n)) + Math.abs(log2(o.k / c.k)) + (o.stride !== c.stride ? STRIDE_DISTANCE : 0);
    out.push({ cls: other, distance });
  }
  return out.sort((a, b) => a.distance - b.distance || a.cls.localeCompare(b.cls)).slice(0, NEIGHBOURS);
}

/**
 * Each candidate's predicted log2 time relative to the fastest on `cls`: the mean of the regression and the
 * neighbours' weighted profile (the regression alone where no neighbour timed the tile). `extra` adds profiles this
 * adapter measured (they take precedence over shipped ones of the same class).
 */
export function predictTiles(model: CostModel, cls: string, candidates: string[], extra: CostModel['profiles'] = {}): Record<string, number> {
  const profiles = { ...model.profiles, ...extra };
  const near = neighbours(cls, profiles);
  const out: Record<string, number> = {};
  const regs = candidates.map((t) => regressionScore(model, cls, t));
  const regBest = Math.min(...regs);
  for (const [i, t] of candidates.entries()) {
    const reg = regs[i] - regBest;
    let sum = 0, weight = 0;
    for (const nb of near) {
      const v = profiles[nb.cls][t];
      if (v === undefined) continue;
      sum += v / (1 + nb.distance);
      weight += 1 / (1 + nb.distance);
    }
    out[t] = weight ? 0.5 * reg + 0.5 * (sum / weight) : reg;
  }
  return out;
}

/** The candidate the model predicts fastest on `cls` (the first of equals), and the nearest class it drew on. */
export function costModelPick(model: CostModel, cls: string, candidates: string[], extra: CostModel['profiles'] = {}): { tile: string; from?: string } | undefined {
  if (!candidates.length) return undefined;
  const p = predictTiles(model, cls, candidates, extra);
  const tile = candidates.reduce((best, t) => (p[t] < p[best] ? t : best));
  const from = neighbours(cls, { ...model.profiles, ...extra })[0]?.cls;
  return { tile, ...(from ? { from } : {}) };
}

/**
 * A candidate predicted slower than this × the predicted fastest is not timed by a pruning tune (tune.ts). Chosen on
 * held-out models (bench/cost-model-eval.ts, README): on ResNet-20 b32 and ResNet-18 b16, 2× skips 30% of the
 * candidates (40–46% of their recorded time) and dropped a full tune's winner in 1 of 55 classes, with a pick 1.27×
 * slower on that one class; 1.5× dropped 2–3, 3× none but skips only 5–7%.
 */
export const PRUNE_FACTOR = 2;

/**
 * The candidates worth timing on `cls` (in their given order): those predicted within `factor`× of the predicted
 * fastest, always the predicted fastest and `keep` (the default tile, so a measured pick is never worse than running
 * nothing measured), and at least two, so a measurement still compares. The rest are `dropped`.
 */
export function pruneCandidates(model: CostModel, cls: string, candidates: string[], keep: string[] = [], extra: CostModel['profiles'] = {},
  factor = PRUNE_FACTOR): { kept: string[]; dropped: string[] } {
  if (candidates.length < 3) return { kept: [...candidates], dropped: [] };
  const p = predictTiles(model, cls, candidates, extra);
  const ranked = [...candidates].sort((a, b) => p[a] - p[b]);
  const bound = p[ranked[0]] + Math.log2(factor);
  const take = new Set(ranked.filter((t) => p[t] <= bound || keep.includes(t)));
  if (take.size < 2) take.add(ranked[1]);
  const kept = candidates.filter((t) => take.has(t));
  return { kept, dropped: candidates.filter((t) => !kept.includes(t)) };
}
