/**
 * The tile cost model (runtime/webgpu/cost-model.ts) without a device: its regression fitted on measured timings
 * equals an independent NumPy fit; fitted on synthetic timings from a known law it ranks unseen classes' candidates as
 * the law does; a budgeted tuneModule picks with it for the classes it leaves
 * unmeasured (source `cost-model`) and a later run measures them; the shipped models load like the shipped tables.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Module } from '../../ir/graph.js';
import { allTiles, tileName, Tile } from '../../codegen/kernels/tiles.js';
import {
  costModelPick, features, fitCostModel, mergeTimings, parseClass, predictTiles, regressionScore, relativeProfile, solveSpd, Timings,
} from '../../runtime/webgpu/cost-model.js';
import { shippedCostModel } from '../../runtime/webgpu/shipped-tiles.js';
import { SHIPPED_COST_MODELS } from '../../runtime/webgpu/shipped-cost-model-data.js';
import { readTuneCache, tuneModule, TuneProgress } from '../../runtime/webgpu/tune.js';
import { convs as convsOf, fakeGpu } from './tune-fakes.js';

const TILES = ['reg4x4', 'reg8x4', 'reg16x4', 'reg8x8', 'reg16x8'];

/**
 * A synthetic law of a tile's time on a class: the work, a per-tile speed, and the padding of partial tiles on the
 * M side (a 16-row tile on 8 rows does twice the work). Small M wants small tiles, large M the 16-row ones.
 */
function lawMs(cls: string, tile: string): number {
  const c = parseClass(cls);
  const [, tm, tn] = /reg(\d+)x(\d+)/.exec(tile)!.map(Number);
  const speed: Record<string, number> = { reg4x4: 1.6, reg8x4: 1.25, reg16x4: 1.1, reg8x8: 1.0, reg16x8: 0.8 };
  return (c.m * c.n * c.k * 1e-6) * speed[tile] * (Math.ceil(c.m / tm) * tm / c.m) * (Math.ceil(c.n / tn) * tn / c.n);
}
const cls = (m: number, n: number, k: number) => `conv2d nobias k3x3 s1 p1 m${m} n${n} k${k}`;

/** A fixed-seed generator in [0, 1). */
function rng(seed: number) {
  let s = seed;
  return () => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32; };
}

test('the normal equations are solved exactly (a random SPD system with a known solution)', () => {
  const n = 12, r = rng(7);
  const b = Array.from({ length: n * n }, () => r() - 0.5);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    for (let k = 0; k < n; k++) a[i * n + j] += b[k * n + i] * b[k * n + j];
    if (i === j) a[i * n + j] += 0.5;
  }
  const x = Float64Array.from({ length: n }, () => r() * 4 - 2);
  const rhs = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) rhs[i] += a[i * n + j] * x[j];
  const got = solveSpd(a, rhs, n);
  got.forEach((v, i) => expect(v).toBeCloseTo(x[i], 9));
  expect(() => solveSpd(new Float64Array([1, 2, 2, 1]), new Float64Array(2), 2)).toThrow(/not positive definite/);
});

test('profiles are clipped log2 ratios to the best; merged timings keep the minimum per tile', () => {
  expect(relativeProfile({ a: 2, b: 4, c: 400 })).toEqual({ a: 0, b: 1, c: 2 });
  expect(relativeProfile({ a: 2 })).toBeUndefined();
  expect(relativeProfile({ a: 2, b: 0 })).toBeUndefined(); // a failed timing is not a measurement
  expect(mergeTimings([{ x: { a: 3, b: 1 } }, { x: { a: 2, b: 5 }, y: { a: 1 } }])).toEqual({ x: { a: 2, b: 1 }, y: { a: 1 } });
  expect(parseClass('conv2d_bwd_weight k5x5 s2 p1 m32 n256 k8192')).toEqual({ op: 'conv2d_bwd_weight', kh: 5, kw: 5, stride: 2, m: 32, n: 256, k: 8192 });
});

test('features: partial-tile waste and parallelism, by hand', () => {
  // 8 rows under a 16-row tile: half wasted; 1024 columns / 8 = 128 invocations, 2^4 below 2^11 (2^5 below 2^12)
  expect(features('conv2d nobias k3x3 s1 p1 m8 n1024 k64', 'reg16x8')).toEqual({
    'conv2d|reg16x8': 1, 'conv2d|reg16x8|M': 0.3 * 3, 'conv2d|reg16x8|N': 0.3 * 10, 'conv2d|reg16x8|K': 0.3 * 6,
    'conv2d|waste-m': 1, 'conv2d|waste-n': 0, 'conv2d|reg|parallel': -4, 'conv2d|k3s1|reg|parallel': -5,
  });
  // a window tile covers 2 rows of every kx (3): 6 columns, 43 invocations along 256 columns (258 computed)
  const w = features('conv2d_bwd_weight k3x3 s1 p1 m32 n256 k8192', 'win8x2');
  expect(w['conv2d_bwd_weight|waste-n']).toBeCloseTo(Math.log2(258 / 256), 12);
  expect(w['conv2d_bwd_weight|win|parallel']).toBeCloseTo(Math.log2(4 * 43) - 11, 12);
  // Winograd F(4×4): 16 outputs per tile, so 8 tiles cover 128 columns: 8 × 128 = 2^10 invocations
  expect(features('conv2d nobias k3x3 s1 p1 m64 n16384 k1024', 'wino4_8x8')['conv2d|wino4|parallel']).toBe(-1);
});

test('the regression fitted on measured timings matches an independent NumPy fit (fixtures/cost-model)', () => {
  const dir = 'test/fixtures/cost-model';
  const model = fitCostModel(JSON.parse(fs.readFileSync(path.join(dir, 'timings.json'), 'utf8')) as Timings);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, Record<string, number>>;
  expect(Object.keys(expected)).toHaveLength(4);
  for (const [c, tiles] of Object.entries(expected))
    for (const [t, v] of Object.entries(tiles))
      expect(regressionScore(model, c, t) - regressionScore(model, c, 'reg16x8')).toBeCloseTo(v, 9);
});

test('fitted on synthetic timings, the model ranks the candidates of unseen classes as the law does', () => {
  const r = rng(3);
  const train: Timings = {};
  // sizes on a grid, leaving out the classes checked below; ±3% noise per timing
  for (const m of [4, 8, 16, 64, 256]) for (const n of [256, 4096]) for (const k of [64, 1024]) {
    train[cls(m, n, k)] = Object.fromEntries(TILES.map((t) => [t, lawMs(cls(m, n, k), t) * (1 + 0.06 * (r() - 0.5))]));
  }
  const model = fitCostModel(train);
  for (const [m, n, k] of [[4, 1024, 256], [8, 1024, 256], [32, 1024, 256], [128, 16384, 512], [512, 1024, 128]]) {
    const c = cls(m, n, k);
    const p = predictTiles(model, c, TILES);
    const law = Object.fromEntries(TILES.map((t) => [t, lawMs(c, t)]));
    const best = TILES.reduce((a, b) => (law[b] < law[a] ? b : a));
    expect(costModelPick(model, c, TILES)!.tile).toBe(best);
    // every pair the law separates by more than 10% is ordered alike
    for (const a of TILES) for (const b of TILES) if (law[a] > 1.1 * law[b]) expect(p[a]).toBeGreaterThan(p[b]);
  }
  // the pick moves with the shape: 16-row tiles waste half their work on 8 rows
  expect(costModelPick(model, cls(8, 1024, 256), TILES)!.tile).toBe('reg8x8');
  expect(costModelPick(model, cls(512, 1024, 128), TILES)!.tile).toBe('reg16x8');
});

const gpu = fakeGpu;

const convs = (sizes: number[]): Module => convsOf(sizes, 8);

test('a budgeted run picks with the cost model where it measures nothing; a later run measures those classes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-cost-model-'));
  try {
    const m = convs([4, 8, 64, 128]);
    const g = m.graphs[0];
    const ids = g.nodes.filter((n) => n.op === 'conv2d').map((n) => n.id);
    // the law's timings for whatever candidates a node has (register tiles: the law knows those; others are slower)
    const timing = (c: string, t: Tile) => (t.kind === 'reg' && TILES.includes(tileName(t)) ? lawMs(c, tileName(t)) : 10 * lawMs(c, 'reg4x4'));
    const train: Timings = {};
    for (const mm of [4, 16, 256]) for (const n of [256, 2048]) for (const k of [128, 2048]) // none of the module's classes
      train[cls(mm, n, k)] = Object.fromEntries(allTiles('conv2d').filter((t) => t.kind !== 'smem').map((t) => [tileName(t), timing(cls(mm, n, k), t)]));
    const model = fitCostModel(train);
    let now = 0;
    const measured: number[] = [];
    const measure = async (_g: unknown, node: { id: number }, tiles: Tile[]) => {
      now += 10_000;
      measured.push(node.id);
      const row = g.nodes[node.id];
      const c = cls(row.type.shape[1], row.type.shape[0] * 64, g.nodes[row.inputs[0]].type.shape[1] * 9);
      return tiles.map((t) => timing(c, t));
    };
    const events: TuneProgress[] = [];
    const file = path.join(dir, 'tune.json');
    const first = await tuneModule(gpu, m, { file, budgetMs: 15_000, now: () => now, measure, costModel: model, progress: (p) => events.push(p) });
    expect(measured).toEqual([ids[3]]); // the biggest class only
    expect(first.rows.map((r) => r.source)).toEqual(['cost-model', 'cost-model', 'cost-model', 'measured']);
    for (const r of first.rows.slice(0, 3)) {
      const c = parseClass(r.cls);
      const law = (t: string) => lawMs(cls(c.m, c.n, c.k), t);
      // the law's fastest register tile, and the picker runs it
      expect(r.tile).toBe(TILES.reduce((a, b) => (law(b) < law(a) ? b : a)));
      expect(tileName(first.picker(g, g.nodes[r.node])!)).toBe(r.tile);
      expect(r.from).toBeDefined();
    }
    expect(events.at(-1)).toMatchObject({ done: 1, total: 4, finished: true, untuned: 3, costModel: 3, similar: 0 });
    // cost-model picks are not cached: a later run without a budget measures them
    expect(Object.keys(readTuneCache(file).adapters[gpu.adapterDescription])).toHaveLength(1);
    measured.length = 0;
    const second = await tuneModule(gpu, m, { file, now: () => now, measure, costModel: model });
    // and the biggest class again: the budgeted run pruned its slow candidates, a full tune times every one
    expect(first.rows[3].pruned?.length).toBeGreaterThan(0);
    expect(measured.sort()).toEqual([...ids].sort());
    expect(second.rows.map((r) => r.source)).toEqual(['measured', 'measured', 'measured', 'measured']);
    expect(second.rows[3].pruned).toBeUndefined();
    // without a model (null) the budget's leftovers borrow the nearest measured class's tile instead
    const third = await tuneModule(gpu, convs([4, 8]), { file: path.join(dir, 'other.json'), budgetMs: 0, now: () => now, measure, costModel: null, shipped: { [first.rows[3].cls]: 'reg8x8' } });
    expect(third.rows.map((r) => [r.source, r.tile, r.from])).toEqual([['similar', 'reg8x8', first.rows[3].cls], ['similar', 'reg8x8', first.rows[3].cls]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the shipped cost models: per driver family, off and from a table file; their tiles exist', () => {
  const llvmpipe = 'mesa | software | llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)';
  expect(shippedCostModel(llvmpipe, {})).toBe(SHIPPED_COST_MODELS.llvmpipe);
  expect(shippedCostModel(llvmpipe, { LPC_SHIPPED_TILES: 'off' })).toBeUndefined();
  expect(shippedCostModel('nvidia | hopper | NVIDIA H100', {})).toBeUndefined();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-cost-model-'));
  try {
    const file = path.join(dir, 'table.json');
    const model = { weights: { 'conv2d|reg4x4': 1 }, profiles: {} };
    fs.writeFileSync(file, JSON.stringify({ llvmpipe: {}, 'cost-models': { llvmpipe: model } }));
    expect(shippedCostModel(llvmpipe, { LPC_SHIPPED_TILES: file })).toEqual(model);
    fs.writeFileSync(file, JSON.stringify({ llvmpipe: {} }));
    expect(shippedCostModel(llvmpipe, { LPC_SHIPPED_TILES: file })).toBeUndefined();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const m of Object.values(SHIPPED_COST_MODELS))
    for (const [c, p] of Object.entries(m.profiles)) {
      const names = allTiles(parseClass(c).op).map(tileName);
      for (const t of Object.keys(p)) expect(names).toContain(t);
    }
});
