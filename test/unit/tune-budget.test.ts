/**
 * Tuning within a budget (runtime/webgpu/tune.ts tuneModule) without a device: a fake adapter, a fake clock and
 * synthetic timings. The biggest shape classes are measured first while the budget lasts, the rest run the default
 * tile and are measured by later runs; successive halving keeps the fastest candidate and times the slow ones less;
 * the progress reports count correctly.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Module } from '../../ir/graph.js';
import { allTiles, tileName, Tile } from '../../codegen/kernels/tiles.js';
import { driverFamily, shippedTiles } from '../../runtime/webgpu/shipped-tiles.js';
import { SHIPPED_TILES } from '../../runtime/webgpu/shipped-tiles-data.js';
import { measureOrder, nearestMeasured, readTuneCache, successiveHalving, tuneModule, TuneProgress } from '../../runtime/webgpu/tune.js';
import { convs as convsOf, fakeGpu } from './tune-fakes.js';
import { parseTuneBudget } from '../../runtime/cli/backends.js';

const gpu = fakeGpu;

const convs = (sizes: number[]): Module => convsOf(sizes, 16);

/** A clock that each measurement moves on by 10 s, and timings where the candidate's index is its speed. */
function fakes() {
  let t = 0;
  const measured: number[] = [];
  return {
    now: () => t,
    measured,
    measure: async (_g: unknown, node: { id: number }, tiles: Tile[]) => { t += 10_000; measured.push(node.id); return tiles.map((_, i) => 1 + ((i * 7) % 5)); },
  };
}

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-tune-budget-')); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the budget is respected, biggest shapes first; later runs measure the rest from where the cache stops', async () => {
  const m = convs([4, 8, 16, 32, 64]);
  const g = m.graphs[0];
  const convIds = g.nodes.filter((n) => n.op === 'conv2d').map((n) => n.id);
  const file = path.join(dir, 'tune.json');
  const run = async (budgetMs: number) => {
    const f = fakes();
    const r = await tuneModule(gpu, m, { file, budgetMs, now: f.now, measure: f.measure });
    return { ...r, measured: f.measured };
  };
  // 25 s: the first shape (0 + 0), the second (10 + 10 ≤ 25), not the third (20 + 10 > 25)
  const first = await run(25_000);
  expect(first.measured).toEqual([convIds[4], convIds[3]]);
  const source = (rows: typeof first.rows) => rows.map((r) => r.source);
  // the rest borrow the tile measured for the nearest class of the same structure (here: conv 3×3, stride 1)
  expect(source(first.rows)).toEqual(['similar', 'similar', 'similar', 'measured', 'measured']);
  const nearestOf = [3, 3, 3]; // 4, 8 and 16 channels: the nearest measured is the 32-channel conv (node 3)
  first.rows.slice(0, 3).forEach((r, i) => {
    const from = first.rows[nearestOf[i]];
    expect(r.from).toBe(from.cls);
    expect(r.tile).toBe(from.tile);
    expect(tileName(first.picker(g, g.nodes[r.node])!)).toBe(from.tile);
  });
  expect(Object.keys(readTuneCache(file).adapters[gpu.adapterDescription])).toHaveLength(2);
  const second = await run(25_000);
  expect(second.measured).toEqual([convIds[2], convIds[1]]);
  expect(source(second.rows)).toEqual(['similar', 'measured', 'measured', 'cache', 'cache']);
  const third = await run(25_000);
  expect(third.measured).toEqual([convIds[0]]);
  expect(source(third.rows)).toEqual(['measured', 'cache', 'cache', 'cache', 'cache']);
  // every entry picks the fastest synthetic candidate (index 0: 1 ms)
  for (const r of third.rows) expect(r.ms![r.tile]).toBe(Math.min(...Object.values(r.ms!)));
  // off: nothing measured; full (no budget): everything
  expect((await run(0)).measured).toEqual([]);
  const f = fakes();
  await tuneModule(gpu, convs([2, 12, 48]), { file, now: f.now, measure: f.measure });
  expect(f.measured).toHaveLength(3);
});

test('the progress reports count the shapes, estimate what is left within the budget and say what stayed untuned', async () => {
  const f = fakes();
  const events: TuneProgress[] = [];
  await tuneModule(gpu, convs([4, 8, 16, 32]), { file: path.join(dir, 't.json'), budgetMs: 35_000, now: f.now, measure: f.measure, progress: (p) => events.push(p) });
  expect(events.map((e) => [e.done, e.total, e.elapsedMs, e.finished, e.untuned, e.similar])).toEqual([
    [0, 4, 0, false, 0, 0], [1, 4, 10_000, false, 0, 0], [2, 4, 20_000, false, 0, 0], [3, 4, 30_000, false, 0, 0], [3, 4, 30_000, true, 1, 1]]);
  // after one shape: 3 left at 10 s each = 30 s, capped by the 25 s the budget has left
  expect(events[1].leftMs).toBe(25_000);
  expect(events[3].leftMs).toBe(5_000);
});

test('successive halving keeps the fastest of synthetic candidates and times the clearly slower ones less', async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    // candidate speeds with ±2% noise per timing; candidate 3 is the fastest
    const speed = [5, 3.3, 9, 3, 4, 12, 3.2, 6];
    let s = seed;
    const noise = () => { s = (s * 1103515245 + 12345) >>> 0; return 1 + 0.02 * (s / 2 ** 32 - 0.5); };
    const calls = speed.map(() => 0);
    const best = await successiveHalving(speed.length, async (i) => { calls[i]++; return speed[i] * noise(); }, 4);
    expect(best.indexOf(Math.min(...best))).toBe(3);
    expect(calls[3]).toBeGreaterThanOrEqual(2); // timed until it is the last in the race
    for (const slow of [2, 5, 7]) expect(calls[slow]).toBe(1); // > 1.25× the best after the first round
    expect(calls.reduce((a, b) => a + b, 0)).toBeLessThan(speed.length * 4);
  }
  // one candidate or one round: each timed once
  expect(await successiveHalving(1, async () => 2, 3)).toEqual([2]);
  // timings the caller has already stand for the first round
  const calls = [0, 0, 0];
  const best = await successiveHalving(3, async (i) => { calls[i]++; return [4, 2, 9][i]; }, 3, [4.5, 2.1, undefined]);
  expect(best).toEqual([4.5, 2.1, 9]);
  expect(calls).toEqual([0, 0, 1]); // only 2 needed timing; then 0 and 2 are > 1.25× 2.1 and 1 is left alone

});

test('--tune-budget takes seconds, off or full', () => {
  expect(parseTuneBudget('45')).toBe(45);
  expect(parseTuneBudget('off')).toBe('off');
  expect(parseTuneBudget('full')).toBe('full');
  expect(() => parseTuneBudget('-3')).toThrow("--tune-budget must be seconds, 'off' or 'full', got '-3'");
  expect(() => parseTuneBudget('soon')).toThrow(/--tune-budget/);
});

test('the nearest measured class of the same structure lends its tile, if that tile is a candidate here', () => {
  const measured: [string, string][] = [
    ['conv2d nobias k3x3 s1 p1 m16 n1024 k144', 'wino4_4x4'],
    ['conv2d nobias k3x3 s1 p1 m64 n256 k576', 'wino2x4'],
    ['conv2d nobias k1x1 s2 p0 m32 n256 k16', 'reg4x4'],
  ];
  const cands = ['reg4x4', 'reg8x4', 'wino2x4', 'wino4_4x4'];
  expect(nearestMeasured('conv2d nobias k3x3 s1 p1 m32 n512 k288', measured, cands)).toEqual({ tile: 'wino4_4x4', from: measured[0][0] }); // tie: the first
  expect(nearestMeasured('conv2d nobias k3x3 s1 p1 m64 n128 k576', measured, cands)).toEqual({ tile: 'wino2x4', from: measured[1][0] });
  expect(nearestMeasured('conv2d nobias k3x3 s1 p1 m64 n128 k576', measured, ['reg4x4'])).toBeUndefined(); // not a candidate here
  // the same op and kernel size with another stride: one step further than the sizes alone
  expect(nearestMeasured('conv2d nobias k1x1 s1 p0 m32 n256 k16', measured, cands)).toEqual({ tile: 'reg4x4', from: measured[2][0] });
  expect(nearestMeasured('conv2d nobias k5x5 s1 p1 m32 n256 k16', measured, cands)).toBeUndefined(); // another kernel size
  expect(nearestMeasured('conv2d_bwd_data k3x3 s1 p1 m64 n256 k576', measured, cands)).toBeUndefined(); // another op
});

test('the measuring order takes turns between op kinds, each by FLOPs', () => {
  const todo = new Map(Object.entries({
    'conv2d a': { flops: 90 }, 'conv2d b': { flops: 80 }, 'conv2d c': { flops: 10 },
    'conv2d_bwd_data a': { flops: 85 }, 'conv2d_bwd_data b': { flops: 5 }, 'linear a': { flops: 1 },
  }));
  expect(measureOrder(todo).map(([k]) => k)).toEqual(['conv2d a', 'conv2d_bwd_data a', 'linear a', 'conv2d b', 'conv2d_bwd_data b', 'conv2d c']);
});

test('a budgeted run leaves classes with a shipped tile to lpc tune and borrows the nearest shipped tile for the rest', async () => {
  const m = convs([4, 8, 16, 32]);
  const g = m.graphs[0];
  const convs4 = g.nodes.filter((n) => n.op === 'conv2d');
  const file = path.join(dir, 'tune.json');
  // what a full tune picks, then a table shipping two of those classes with another candidate than the fake timings' best
  const full = await tuneModule(gpu, m, { file: path.join(dir, 'full.json'), ...fakes(), shipped: {} });
  const cls = (i: number) => full.rows.find((r) => r.node === convs4[i].id)!.cls;
  const other = (i: number) => Object.keys(full.rows[i].ms!).find((t) => t !== full.rows[i].tile)!;
  const shipped = { [cls(3)]: other(3), [cls(1)]: other(1) };
  const events: TuneProgress[] = [];
  const f = fakes();
  const run = await tuneModule(gpu, m, { file, budgetMs: 15_000, now: f.now, measure: f.measure, shipped, progress: (p) => events.push(p) });
  // the budget went to the biggest class without a shipped tile (16 channels); 32 and 8 take the shipped tiles
  expect(f.measured).toEqual([convs4[2].id]);
  expect(run.rows.map((r) => r.source)).toEqual(['similar', 'shipped', 'measured', 'shipped']);
  expect(run.rows[3].tile).toBe(other(3));
  expect(tileName(run.picker(g, convs4[3])!)).toBe(other(3));
  expect(tileName(run.picker(g, convs4[1])!)).toBe(other(1));
  // 4 channels: the nearest class is the shipped 8-channel one (1 octave away, 16 is 2)
  expect(run.rows[0].from).toBe(cls(1));
  expect(run.rows[0].tile).toBe(other(1));
  expect(events.at(-1)).toMatchObject({ done: 1, total: 2, finished: true, untuned: 1, similar: 1, shipped: 2 });
  // shipped picks are not cached: a full tune (lpc tune) measures them
  expect(Object.keys(readTuneCache(file).adapters[gpu.adapterDescription])).toEqual([cls(2)]);
  const g2 = fakes();
  await tuneModule(gpu, m, { file, now: g2.now, measure: g2.measure, shipped });
  expect(g2.measured.sort()).toEqual([convs4[0].id, convs4[1].id, convs4[3].id].sort());
});

test('shipped tilings by driver family; LPC_SHIPPED_TILES turns them off or reads another table', () => {
  expect(driverFamily('mesa | software | llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)')).toBe('llvmpipe');
  expect(driverFamily('Google | SwiftShader Device (Subzero)')).toBe('swiftshader');
  expect(driverFamily('nvidia | hopper | NVIDIA H100')).toBeUndefined();
  expect(shippedTiles('nvidia | hopper | NVIDIA H100', {})).toEqual({});
  expect(shippedTiles('mesa | llvmpipe', { LPC_SHIPPED_TILES: 'off' })).toEqual({});
  const table = path.join(dir, 'shipped.json');
  fs.writeFileSync(table, JSON.stringify({ llvmpipe: { 'conv2d nobias k3x3 s1 p1 m4 n512 k36': 'reg4x4' } }));
  expect(shippedTiles('mesa | llvmpipe', { LPC_SHIPPED_TILES: table })).toEqual({ 'conv2d nobias k3x3 s1 p1 m4 n512 k36': 'reg4x4' });
  // every shipped tile names a tile lpc still ships for that op
  for (const [, t] of Object.entries(SHIPPED_TILES)) for (const [c, tile] of Object.entries(t)) {
    const op = c.split(' ')[0];
    expect(allTiles(op).map(tileName)).toContain(tile);
  }
});
