/**
 * Pruning tile candidates with the cost model (cost-model.ts pruneCandidates, tune.ts tuneModule) without a device: a
 * hand-written model (the regression's per-tile weights only, so every prediction is known), synthetic timings that
 * agree with it and a fake clock charging a second per timed candidate. Pruned candidates are never timed; the
 * predicted fastest and the default tile always are; a budget measures more classes with pruning; a full tune
 * without pruning times every candidate, also of classes a pruning run measured.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Module } from '../../ir/graph.js';
import { defaultTile, nodeTileCandidates, tileName, Tile } from '../../codegen/kernels/tiles.js';
import { CostModel, PRUNE_FACTOR, pruneCandidates } from '../../runtime/webgpu/cost-model.js';
import { cachePicker, readTuneCache, tuneModule, TuneProgress } from '../../runtime/webgpu/tune.js';
import { convs as convsOf, fakeGpu } from './tune-fakes.js';

const gpu = fakeGpu;

/** log2 of each 3×3 convolution candidate's time relative to reg8x8, the fastest (its `conv2d|tile` weight). */
const LOG2: Record<string, number> = {
  reg8x8: 0, reg16x8: 0.5, reg8x16: 0.8, reg8x4: 1.2, reg4x8: 1.5, reg16x4: 1.8, reg4x4: 2.5,
  wino16x4: 2.2, wino8x8: 2.2, wino16x8: 2.2, wino8x16: 2.2, wino4_16x4: 3, wino4_8x8: 3, wino4_16x8: 3, wino4_8x16: 3,
};
const model: CostModel = { weights: Object.fromEntries(Object.entries(LOG2).map(([t, v]) => [`conv2d|${t}`, v])), profiles: {} };

const convs = (sizes: number[]): Module => convsOf(sizes, 8);

/** Timings that follow LOG2 (2^v ms) and a clock that each timed candidate moves on by a second. */
function fakes() {
  let t = 0;
  const timed = new Map<number, string[]>();
  return {
    now: () => t,
    timed,
    measure: async (_g: unknown, node: { id: number }, tiles: Tile[]) => {
      t += 1000 * tiles.length;
      timed.set(node.id, tiles.map(tileName));
      return tiles.map((x) => 2 ** LOG2[tileName(x)]);
    },
  };
}

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-tune-prune-')); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('pruneCandidates keeps those within the factor, the predicted fastest and the default, at least two', () => {
  const all = Object.keys(LOG2);
  const cls = 'conv2d nobias k3x3 s1 p1 m32 n128 k512';
  expect(PRUNE_FACTOR).toBeGreaterThanOrEqual(2);
  // within 2× (log2 ≤ 1) of reg8x8: reg16x8, reg8x16; kept in the candidates' order
  expect(pruneCandidates(model, cls, all).kept).toEqual(['reg8x8', 'reg16x8', 'reg8x16']);
  expect(pruneCandidates(model, cls, all).dropped).toEqual(all.filter((t) => LOG2[t] > 1));
  // the default is kept however slow it is predicted
  expect(pruneCandidates(model, cls, all, ['wino4_8x8']).kept).toEqual(['reg8x8', 'reg16x8', 'reg8x16', 'wino4_8x8']);
  // a wider factor keeps more
  expect(pruneCandidates(model, cls, all, [], {}, 4).kept).toEqual(all.filter((t) => LOG2[t] <= 2));
  // alone within the bound and the default itself: the second fastest is timed too, so the measurement compares
  const lone = ['reg4x4', 'reg8x8', 'wino8x8', 'wino4_8x8'];
  expect(pruneCandidates(model, cls, lone, ['reg8x8'])).toEqual({ kept: ['reg8x8', 'wino8x8'], dropped: ['reg4x4', 'wino4_8x8'] });
  // two candidates: nothing to prune
  expect(pruneCandidates(model, cls, ['reg8x8', 'wino4_8x8'])).toEqual({ kept: ['reg8x8', 'wino4_8x8'], dropped: [] });
});

test('a budgeted run times only the kept candidates and so measures more classes; a full tune times them all', async () => {
  const m = convs([4, 8, 16, 32, 64]);
  const g = m.graphs[0];
  const convNodes = g.nodes.filter((n) => n.op === 'conv2d');
  const file = path.join(dir, 'tune.json');
  // what pruning must keep for each node, from LOG2 and the node's default tile (independent of pruneCandidates)
  const expectedKept = (id: number) => {
    const def = tileName(defaultTile(g, g.nodes[id], 'cpu-driver'));
    return nodeTileCandidates(g, g.nodes[id], 'cpu-driver').map(tileName).filter((t) => LOG2[t] <= Math.log2(PRUNE_FACTOR) || t === def);
  };
  expect(new Set(convNodes.map((n) => tileName(defaultTile(g, n, 'cpu-driver'))))).toEqual(new Set(['reg4x8', 'reg8x8', 'reg16x8']));

  // without pruning, 40 s of 15-candidate classes (15 s each) measure two; with it, all five
  const plain = fakes();
  await tuneModule(gpu, m, { file: path.join(dir, 'plain.json'), budgetMs: 40_000, now: plain.now, measure: plain.measure, costModel: model, prune: false });
  expect(plain.timed.size).toBe(2);
  for (const tiles of plain.timed.values()) expect(tiles).toHaveLength(15);

  const f = fakes();
  const events: TuneProgress[] = [];
  const run = await tuneModule(gpu, m, { file, budgetMs: 40_000, now: f.now, measure: f.measure, costModel: model, progress: (p) => events.push(p) });
  expect(f.timed.size).toBe(5);
  let dropped = 0;
  for (const n of convNodes) {
    const all = nodeTileCandidates(g, n, 'cpu-driver').map(tileName);
    const kept = expectedKept(n.id);
    expect(f.timed.get(n.id)).toEqual(kept); // never a pruned one; always reg8x8 (predicted fastest) and the default
    expect(kept).toContain('reg8x8');
    const row = run.rows.find((r) => r.node === n.id)!;
    expect(row).toMatchObject({ source: 'measured', tile: 'reg8x8', pruned: all.filter((t) => !kept.includes(t)) });
    expect(Object.keys(row.ms!)).toEqual(kept);
    dropped += all.length - kept.length;
  }
  // the 4-channel class keeps its default reg4x8, predicted 2.8× slower
  expect(f.timed.get(convNodes[0].id)).toContain('reg4x8');
  expect(events.at(-1)).toMatchObject({ done: 5, total: 5, finished: true, pruned: dropped, prunedClasses: 5 });
  expect(events[0]).toMatchObject({ done: 0, pruned: 0, prunedClasses: 0 });

  // the cache keeps what was pruned; a later budgeted run takes the entries as they are, as does the cache's picker
  const cache = readTuneCache(file);
  const entries = cache.adapters[gpu.adapterDescription];
  expect(Object.values(entries).every((e) => e.pruned && e.pruned.length > 0)).toBe(true);
  for (const n of convNodes) expect(tileName(cachePicker(cache, gpu.adapterDescription)(g, n)!)).toBe('reg8x8');
  const again = fakes();
  const second = await tuneModule(gpu, m, { file, budgetMs: 40_000, now: again.now, measure: again.measure, costModel: model });
  expect(again.timed.size).toBe(0);
  expect(second.rows.every((r) => r.source === 'cache' && r.pruned!.length > 0)).toBe(true);

  // a full tune (no budget) prunes nothing, and measures the pruned classes again with every candidate
  const full = fakes();
  const third = await tuneModule(gpu, m, { file, now: full.now, measure: full.measure, costModel: model });
  expect(full.timed.size).toBe(5);
  for (const n of convNodes) expect(full.timed.get(n.id)).toEqual(nodeTileCandidates(g, n, 'cpu-driver').map(tileName));
  expect(third.rows.every((r) => r.source === 'measured' && r.pruned === undefined)).toBe(true);
  expect(Object.values(readTuneCache(file).adapters[gpu.adapterDescription]).every((e) => e.pruned === undefined)).toBe(true);
  // and then nothing is left for a full tune to do
  const fourth = fakes();
  await tuneModule(gpu, m, { file, now: fourth.now, measure: fourth.measure, costModel: model });
  expect(fourth.timed.size).toBe(0);
});

test('lpc tune --prune prunes without a budget; without a cost model nothing is pruned', async () => {
  const m = convs([8, 32]);
  const g = m.graphs[0];
  const asked = fakes();
  const r = await tuneModule(gpu, m, { file: path.join(dir, 'a.json'), now: asked.now, measure: asked.measure, costModel: model, prune: true });
  for (const n of g.nodes.filter((x) => x.op === 'conv2d')) expect(asked.timed.get(n.id)!.length).toBeLessThan(nodeTileCandidates(g, n, 'cpu-driver').length);
  expect(r.rows.every((x) => x.pruned!.length > 0)).toBe(true);
  const none = fakes();
  await tuneModule(gpu, m, { file: path.join(dir, 'b.json'), budgetMs: 100_000, now: none.now, measure: none.measure, costModel: null });
  for (const tiles of none.timed.values()) expect(tiles).toHaveLength(15);
});

test('a cache entry whose pruned list is not a list of tile names is ignored', () => {
  const file = path.join(dir, 'tune.json');
  const entry = { tile: 'reg8x8', ms: { reg8x8: 1, reg16x8: 2 }, at: '2026-01-01T00:00:00Z' };
  fs.writeFileSync(file, JSON.stringify({ version: 1, adapters: { a: { good: { ...entry, pruned: ['wino8x8'] }, bad: { ...entry, pruned: 'wino8x8' }, old: entry } } }));
  expect(Object.keys(readTuneCache(file, () => {}).adapters.a).sort()).toEqual(['good', 'old']);
});
