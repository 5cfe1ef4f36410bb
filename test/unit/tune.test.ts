/**
 * The tuning cache (runtime/webgpu/tune.ts) without a device: where it lives, its keys (adapter × shape class),
 * atomic writes that merge with what is on disk, and corrupt or foreign files ignored with a warning, never a crash.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Builder, emptyGraph } from '../../ir/graph.js';
import { Tile, allTiles, defaultTile, nodeTileCandidates, parseTile, shapeClass, tileCandidates, tileName } from '../../codegen/kernels/tiles.js';
import {
  TUNE_VERSION, TuneEntry, cacheDir, tileFitsDevice, cachePath, cachePicker, cachedTile, emptyCache, mergeTuneEntries, readTuneCache,
  tuneKey, writeTuneCache,
} from '../../runtime/webgpu/tune.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-tune-')); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function conv(x: number[], w: number[], attrs = { stride: 1, pad: 1 }, bias = false) {
  const g = emptyGraph('t'), b = new Builder(g);
  const ins = [x, w, ...(bias ? [[w[0]]] : [])].map((shape, i) => b.add('input', [], { name: `x${i}`, kind: 'data', shape, dtype: 'f32' }));
  const id = b.add('conv2d', ins, attrs);
  return { g, node: g.nodes[id] };
}

/** An entry that timed `tile` and every other register and Winograd tile shipped for conv2d (so it is current). */
const entry = (tile: string): TuneEntry => ({
  tile, ms: Object.fromEntries([...allTiles('conv2d').filter((t) => t.kind !== 'smem').map((t) => [tileName(t), 2]), [tile, 1]]),
  at: '2026-01-01T00:00:00.000Z',
});

test('cache folder: $LPC_CACHE_DIR, else $XDG_CACHE_HOME/lpc, else ~/.cache/lpc', () => {
  expect(cacheDir({ LPC_CACHE_DIR: '/x/y' })).toBe('/x/y');
  expect(cacheDir({ XDG_CACHE_HOME: '/c' })).toBe(path.join('/c', 'lpc'));
  expect(cacheDir({})).toBe(path.join(os.homedir(), '.cache', 'lpc'));
  expect(cachePath('/x')).toBe(path.join('/x', 'tune.json'));
});

test('key: adapter and shape class; the class keeps what changes the WGSL and rounds sizes to powers of two', () => {
  const a = conv([2, 3, 9, 9], [5, 3, 3, 3]);
  const b = conv([2, 3, 10, 10], [6, 3, 3, 3]); // same powers of two
  const c = conv([2, 3, 9, 9], [5, 3, 3, 3], { stride: 2, pad: 1 });
  const d = conv([2, 3, 9, 9], [5, 3, 3, 3], { stride: 1, pad: 0 });
  const e = conv([2, 3, 9, 9], [5, 3, 3, 3], { stride: 1, pad: 1 }, true);
  const f = conv([2, 30, 9, 9], [5, 30, 3, 3]);
  expect(shapeClass(a.g, a.node)).toBe(shapeClass(b.g, b.node));
  for (const o of [c, d, e, f]) expect(shapeClass(o.g, o.node)).not.toBe(shapeClass(a.g, a.node));
  expect(tuneKey('mesa | software | llvmpipe', a.g, a.node)).toEqual(['mesa | software | llvmpipe', shapeClass(a.g, a.node)]);
});

test('tiles: names round-trip; CPU drivers get no shared-memory tiles; defaults are shipped tiles', () => {
  for (const op of ['matmul', 'linear', 'conv2d', 'conv2d_bwd_data', 'conv2d_bwd_weight'])
    for (const t of allTiles(op)) expect(parseTile(tileName(t))).toEqual(t);
  expect(() => parseTile('huge9')).toThrow(/unknown tile/);
  expect(tileCandidates('conv2d', 'cpu-driver').every((t) => t.kind === 'reg' || t.kind === 'wino' || t.kind === 'wino4')).toBe(true);
  expect(parseTile('wino4_16x8')).toEqual({ kind: 'wino4', m: 16, n: 8 });
  // F(4×4) is offered for the forward conv and both gradients
  for (const op of ['conv2d', 'conv2d_bwd_data', 'conv2d_bwd_weight']) expect([op, allTiles(op).some((t) => t.kind === 'wino4')]).toEqual([op, true]);
  const wgrad = tileCandidates('conv2d_bwd_weight', 'cpu-driver');
  expect(wgrad.some((t) => t.kind === 'win') && wgrad.every((t) => t.kind !== 'smem')).toBe(true);
  expect(tileCandidates('conv2d', 'gpu').some((t) => t.kind === 'smem')).toBe(true);
  const a = conv([2, 3, 9, 9], [5, 3, 3, 3]);
  for (const v of ['cpu-driver', 'gpu'] as const)
    expect(allTiles('conv2d').map(tileName)).toContain(tileName(defaultTile(a.g, a.node, v)));
});

test('Winograd tiles are candidates for 3×3 stride-1 convolutions only, and a cache entry never hands one to another', () => {
  const kinds = (o: ReturnType<typeof conv>) => new Set(nodeTileCandidates(o.g, o.node, 'cpu-driver').map((t) => t.kind));
  const s1 = conv([2, 3, 9, 9], [5, 3, 3, 3]), s2 = conv([2, 3, 9, 9], [5, 3, 3, 3], { stride: 2, pad: 1 });
  const k5 = conv([2, 3, 9, 9], [5, 3, 5, 5], { stride: 1, pad: 2 });
  expect(kinds(s1)).toEqual(new Set(['reg', 'wino', 'wino4']));
  for (const o of [s2, k5]) expect(kinds(o)).toEqual(new Set(['reg']));
  // the same class string can only come from the same kernel size and stride, but a hand-edited entry might lie
  const c = emptyCache();
  c.adapters.A = { [shapeClass(s2.g, s2.node)]: entry('wino16x8') };
  expect(cachedTile(c, 'A', s2.g, s2.node)).toBeUndefined();
  c.adapters.A = { [shapeClass(s2.g, s2.node)]: entry('wino4_16x8') };
  expect(cachedTile(c, 'A', s2.g, s2.node)).toBeUndefined();
  // an entry for a 3×3 stride-1 class made before the F(4×4) tiles existed is measured again
  const old = entry('reg16x8');
  for (const t of allTiles('conv2d')) if (t.kind === 'wino4') delete old.ms[tileName(t)];
  c.adapters.A = { [shapeClass(s1.g, s1.node)]: old };
  expect(cachedTile(c, 'A', s1.g, s1.node)).toBeUndefined();
  c.adapters.A = { [shapeClass(s1.g, s1.node)]: entry('wino16x8') };
  expect(cachedTile(c, 'A', s1.g, s1.node)).toEqual({ kind: 'wino', m: 16, n: 8 });
  c.adapters.A = { [shapeClass(s1.g, s1.node)]: entry('wino4_8x16') };
  expect(cachedTile(c, 'A', s1.g, s1.node)).toEqual({ kind: 'wino4', m: 8, n: 16 });
});

test("a tile whose scratch buffers exceed the device's binding size does not fit it (Winograd's are 4× an activation)", () => {
  const big = conv([8, 16, 32, 32], [16, 16, 3, 3]); // transformed input: 16 · 16 channels · 8·16·16 tiles · 4 B = 2 MiB
  const wino: Tile = { kind: 'wino', m: 16, n: 8 }, reg: Tile = { kind: 'reg', m: 16, n: 8 };
  expect(tileFitsDevice(big.g, big.node, wino, 'cpu-driver', 2 ** 21)).toBe(true);
  expect(tileFitsDevice(big.g, big.node, wino, 'cpu-driver', 2 ** 21 - 4)).toBe(false);
  expect(tileFitsDevice(big.g, big.node, reg, 'cpu-driver', 4)).toBe(true);
  // F(4×4): 36 · 16 channels · 8·8·8 tiles · 4 B = 1.125 MiB (2.25× the activation)
  const wino4: Tile = { kind: 'wino4', m: 16, n: 8 };
  expect(tileFitsDevice(big.g, big.node, wino4, 'cpu-driver', 36 * 16 * 512 * 4)).toBe(true);
  expect(tileFitsDevice(big.g, big.node, wino4, 'cpu-driver', 36 * 16 * 512 * 4 - 4)).toBe(false);
});

test('write is atomic (temp file renamed; no temp files left) and a missing file reads as empty', () => {
  const file = path.join(dir, 'sub', 'tune.json');
  expect(readTuneCache(file, () => { throw new Error('no warning for a missing file'); })).toEqual(emptyCache());
  const c = emptyCache();
  c.adapters.A = { 'conv2d x': entry('reg8x4') };
  // the rename replaces the file in one step: a reader holding the old inode still sees the old, whole contents
  writeTuneCache(emptyCache(), file);
  const fd = fs.openSync(file, 'r');
  writeTuneCache(c, file);
  expect(JSON.parse(fs.readFileSync(fd, 'utf8'))).toEqual(emptyCache());
  fs.closeSync(fd);
  expect(readTuneCache(file)).toEqual(c);
  expect(fs.readdirSync(path.dirname(file))).toEqual(['tune.json']);
});

test('a failed write leaves the old file and no temp file behind', () => {
  const file = path.join(dir, 'tune.json');
  writeTuneCache(emptyCache(), file);
  const bad = emptyCache() as unknown as { adapters: unknown };
  bad.adapters = { get A() { throw new Error('boom'); } };
  expect(() => writeTuneCache(bad as never, file)).toThrow(/boom/);
  expect(readTuneCache(file)).toEqual(emptyCache());
  expect(fs.readdirSync(dir)).toEqual(['tune.json']);
});

test('merge keeps other adapters and other entries on disk', () => {
  const file = path.join(dir, 'tune.json');
  mergeTuneEntries('A', { x: entry('reg8x4') }, file);
  mergeTuneEntries('B', { x: entry('smem64') }, file);
  mergeTuneEntries('A', { y: entry('reg4x8') }, file);
  const c = readTuneCache(file);
  expect(Object.keys(c.adapters).sort()).toEqual(['A', 'B']);
  expect(Object.keys(c.adapters.A).sort()).toEqual(['x', 'y']);
  expect(c.adapters.B.x.tile).toBe('smem64');
});

test('corrupt, foreign or old files are ignored with a warning, never a crash, and replaced on the next write', () => {
  const file = path.join(dir, 'tune.json');
  const cases: [string, RegExp][] = [
    ['{"version": 1, "adapters": {', /corrupt/],
    ['', /corrupt/],
    ['[1, 2]', /corrupt/],
    ['{"version": 1, "adapters": null}', /corrupt/],
    [`{"version": ${TUNE_VERSION + 99}, "adapters": {}}`, /version/],
  ];
  for (const [text, re] of cases) {
    fs.writeFileSync(file, text);
    const warnings: string[] = [];
    expect(readTuneCache(file, (m) => warnings.push(m))).toEqual(emptyCache());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(re);
    expect(warnings[0]).toContain(file);
    mergeTuneEntries('A', { x: entry('reg8x4') }, file, () => {});
    expect(readTuneCache(file).adapters.A.x.tile).toBe('reg8x4');
  }
  // malformed entries are dropped one by one; the rest of the file is kept
  fs.writeFileSync(file, JSON.stringify({ version: TUNE_VERSION, adapters: { A: { good: entry('reg4x4'), bad: { tile: 3 } } } }));
  expect(Object.keys(readTuneCache(file).adapters.A)).toEqual(['good']);
});

test('the picker answers from the cache for its adapter only, and ignores tiles that are not shipped', () => {
  const a = conv([2, 3, 9, 9], [5, 3, 3, 3]);
  const cls = shapeClass(a.g, a.node);
  const c = emptyCache();
  c.adapters.A = { [cls]: entry('reg16x4') };
  c.adapters.B = { [cls]: entry('reg99x1') };
  expect(cachedTile(c, 'A', a.g, a.node)).toEqual({ kind: 'reg', m: 16, n: 4 });
  expect(cachePicker(c, 'A')(a.g, a.node)).toEqual({ kind: 'reg', m: 16, n: 4 });
  expect(cachedTile(c, 'B', a.g, a.node)).toBeUndefined();
  expect(cachedTile(c, 'C', a.g, a.node)).toBeUndefined();
  // stale entries are measured again: one timed before a tile was shipped, one with a time that is not positive
  const { reg16x8: _, ...older } = entry('reg16x4').ms;
  c.adapters.A = { [cls]: { ...entry('reg16x4'), ms: older } };
  expect(cachedTile(c, 'A', a.g, a.node)).toBeUndefined();
  c.adapters.A = { [cls]: { ...entry('reg16x4'), ms: { ...entry('reg16x4').ms, reg4x4: 0 } } };
  expect(cachedTile(c, 'A', a.g, a.node)).toBeUndefined();
});
