/**
 * Every tile shipped for every GEMM-like op (codegen/kernels/tiles.ts: register tiles and the shared-memory
 * tilings) against the op table's CPU semantics (float64) on fresh random shapes that are mostly not multiples of
 * the tile (plus one shape spanning several 64-blocks), ≤ 1e-5 of the largest reference magnitude; and with a
 * quantize epilogue, bit for bit against ir/quant/quantize.ts applied to the same tile's raw GPU result (the
 * method of epilogue.test.ts). Needs a WebGPU adapter (setup.sh installs a CPU driver).
 *
 * Compiling is the cost here, not running: lavapipe JITs a big register tile in 10–30 s. So `npm test` compiles each
 * tile once — one bias choice per tile, alternating — and checks the quantize epilogue on every third tile (the
 * format rotating), the row-vectorised Winograd case on every other Winograd tile. `LPC_TILES_FULL=1` (which
 * `npm run fuzz` sets) checks every tile with and without bias, every Winograd tile's rows case and every epilogue.
 */
import { Attrs, Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { Format, Rounding, formatToString } from '../../ir/format.js';
import { getOp } from '../../ir/ops/index.js';
import type { Epilogue } from '../../ir/epilogue.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { Tile, allTiles, isWinograd, tileName } from '../../codegen/kernels/tiles.js';
import { getGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom } from '../unit/helpers.js';
import { TEST_SEED } from './gpu-fixture.js';

let device: GPUDevice;
let cache: PipelineCache;
beforeAll(async () => {
  device = (await getGpu({ quiet: true })).device;
  cache = new PipelineCache(device);
});

const SEED = TEST_SEED; // fixed in npm test (LPC_TEST_SEED varies it), so a failing shape can be rerun
const rand = seededRandom(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const uniform = (n: number) => Float32Array.from({ length: n }, () => 2 * rand() - 1);
const STEP = { seed: 0x1234abcd, step: 7 };
const FULL = process.env.LPC_TILES_FULL === '1';

interface Case { op: string; shapes: number[][]; attrs: Attrs; tag: string }

/**
 * A random convolution case; `wino`: one Winograd tiles compute (3×3, stride 1, any padding up to 2); `rows`: a
 * Winograd case whose rows are 16 wide with padding 1, so every pass's rows hold whole vec4s and a multiple of 4
 * tiles (the row-vectorised input and output transforms).
 */
function convCase(op: string, big = false, wino = false, rows = false, bias?: boolean): Case {
  for (;;) {
    const n = big ? 2 : int(1, 3), c = big ? 5 : int(1, 7), h = big ? 12 : int(4, 13), w = big ? 11 : rows ? 16 : int(4, 13);
    const o = big ? 67 : int(1, 19), kh = big || wino ? 3 : [1, 2, 3, 5][int(0, 3)], kw = big || wino ? 3 : (rand() < 0.7 ? kh : int(1, 4));
    const stride = big || wino ? 1 : int(1, 3), pad = big || rows ? 1 : wino ? int(0, 2) : int(0, Math.min(2, kh - 1, kw - 1) + (rand() < 0.2 ? 1 : 0));
    const oh = Math.floor((h + 2 * pad - kh) / stride) + 1, ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
    if (oh < 1 || ow < 1) continue;
    const x = [n, c, h, w], wt = [o, c, kh, kw], dy = [n, o, oh, ow];
    const tag = `${n}x${c}x${h}x${w} → ${o}, ${kh}x${kw} s${stride} p${pad}`;
    if (op === 'conv2d') return { op, shapes: (bias ?? (rand() < 0.5 || big)) ? [x, wt, [o]] : [x, wt], attrs: { stride, pad }, tag };
    if (op === 'conv2d_bwd_data') return { op, shapes: [dy, wt], attrs: { stride, pad, in_hw: [h, w] }, tag };
    return { op, shapes: [dy, x], attrs: { stride, pad, k_hw: [kh, kw] }, tag };
  }
}

function mmCase(op: string, big = false, bias?: boolean): Case {
  const m = big ? 70 : int(1, 23), n = big ? 131 : int(1, 23), k = big ? 36 : (rand() < 0.5 ? 4 * int(1, 6) : int(1, 23));
  if (op === 'linear') return { op, shapes: [[m, k], [n, k], ...((bias ?? (rand() < 0.5 || big)) ? [[n]] : [])], attrs: {}, tag: `${m}x${k} · ${n}` };
  const ta = rand() < 0.5, tb = rand() < 0.5;
  return { op, shapes: [ta ? [k, m] : [m, k], tb ? [n, k] : [k, n]], attrs: { ta, tb }, tag: `${m}x${k}x${n}${ta ? ' ta' : ''}${tb ? ' tb' : ''}` };
}

function build(c: Case): { g: Graph; id: number; feeds: Map<number, HostArray> } {
  const g = emptyGraph('t');
  const b = new Builder(g);
  const feeds = new Map<number, HostArray>();
  const ids = c.shapes.map((shape, i) => {
    const id = b.add('input', [], { name: `x${i}`, kind: 'data', shape, dtype: 'f32' });
    feeds.set(id, uniform(numel(shape)));
    return id;
  });
  return { g, id: b.add(c.op, ids, c.attrs), feeds };
}

function cpuRef(g: Graph, id: number, feeds: Map<number, HostArray>): Float64Array {
  const n = g.nodes[id];
  const out = new Float64Array(numel(n.type.shape));
  getOp(n.op).cpu(n.inputs.map((i) => Float64Array.from(feeds.get(i)!)), out, {
    attrs: n.attrs, inTypes: n.inputs.map((i) => g.nodes[i].type), type: n.type, epi: n.epi, rng: { seed: 0, step: 0, tensorId: id },
  });
  return out;
}

async function gpuRun(g: Graph, id: number, feeds: Map<number, HostArray>, tile: Tile): Promise<Float32Array> {
  const { values, kernels } = await runKernels(device, g, { feeds, run: [id], read: [id], step: STEP, pipelines: cache, tiles: () => tile });
  const named = tile.kind === 'reg' && (g.nodes[id].op === 'matmul' || g.nodes[id].op === 'linear') ? '' : tileName(tile);
  expect(kernels.map((k) => k.name).find((n) => n.includes(named))).toBeDefined();
  return values.get(id) as Float32Array;
}

/** ≤ rel of the largest reference magnitude, element by element (as ops.test.ts). */
function expectClose(what: string, gpu: ArrayLike<number>, ref: Float64Array, rel = 1e-5): void {
  expect(gpu.length).toBe(ref.length);
  let scale = 0;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  const tol = rel * Math.max(scale, 1e-30);
  for (let i = 0; i < ref.length; i++)
    if (!(Math.abs(gpu[i] - ref[i]) <= tol)) throw new Error(`${what}: element ${i} gpu=${gpu[i]} cpu=${ref[i]} (tol ${tol}); data seed ${SEED}`);
}

function withEpilogue(g: Graph, id: number, fmt: Format, rounding: Rounding): Graph {
  const nodes = g.nodes.map((n) => {
    if (n.id !== id) return n;
    const epi: Epilogue = { args: 0, q: { fmt, rounding } };
    return { ...n, epi, type: getOp(n.op).infer(n.inputs.map((i) => g.nodes[i].type), n.attrs, epi) };
  });
  return { ...g, nodes };
}

const EPILOGUES: { fmt: Format; rounding: Rounding }[] = [
  { fmt: { kind: 'fixed', wl: 8, fl: 5 }, rounding: 'stochastic' },
  { fmt: { kind: 'float', exp: 5, man: 2 }, rounding: 'nearest' },
  { fmt: { kind: 'bfp', wl: 8, axis: 0 }, rounding: 'stochastic' },
];

const OPS = ['matmul', 'linear', 'conv2d', 'conv2d_bwd_data', 'conv2d_bwd_weight'];

describe.each(OPS)('%s', (op) => {
  allTiles(op).forEach((tile, ti) => {
    const bias = FULL ? undefined : ti % 2 === 0;
    const mk = op.startsWith('conv') ? (o: string, big = false) => convCase(o, big, isWinograd(tile), false, bias) : (o: string, big = false) => mmCase(o, big, bias);
    const rowsCase = isWinograd(tile) && (FULL || ti % 2 === 1);
    const epilogue = FULL || ti % 3 === 0;
    test(`${tileName(tile)} vs the CPU interpreter${epilogue ? '; with a quantize epilogue bit for bit' : ''}`, async () => {
      const cases = [mk(op), mk(op), mk(op, true), ...(rowsCase ? [convCase(op, false, true, true, bias)] : [])];
      for (const [ci, c] of cases.entries()) {
        const { g, id, feeds } = build(c);
        if (ci === 3) {
          const names = kernelsForNode(g, id, { tiles: () => tile }).map((k) => k.name);
          expect([names.some((k) => k.endsWith('_input_rows')), op === 'conv2d_bwd_weight' || names.some((k) => k.endsWith('_output_rows'))]).toEqual([true, true]);
        }
        const what = `${op} ${tileName(tile)} ${c.tag}`;
        const raw = await gpuRun(g, id, feeds, tile);
        expectClose(what, raw, cpuRef(g, id, feeds));
      }
      if (!epilogue) return;
      // the epilogue: one format per tile, rotating; every other Winograd tile on the row-vectorised case
      const c = cases[rowsCase && ti % 2 === 1 ? 3 : 0];
      const { g, id, feeds } = build(c);
      const { fmt, rounding } = EPILOGUES[((FULL ? ti : ti / 3) + OPS.indexOf(op)) % EPILOGUES.length];
      const raw = await gpuRun(g, id, feeds, tile);
      const gq = withEpilogue(g, id, fmt, rounding);
      const got = await gpuRun(gq, id, feeds, tile);
      const want = quantize(raw, g.nodes[id].type.shape, fmt, rounding, { ...STEP, tensorId: id });
      const what = `${op} ${tileName(tile)} ${c.tag} ${formatToString(fmt)}:${rounding} (seed ${SEED})`;
      const a = new Uint32Array(got.buffer), b = new Uint32Array(Float32Array.from(want).buffer);
      const bad = [...a.keys()].filter((i) => a[i] !== b[i]).slice(0, 4).map((i) => `[${i}] raw=${raw[i]} got=${got[i]} want=${want[i]}`);
      expect([what, bad]).toEqual([what, []]);
    });
  });
});

test('the tile is structure: different tiles, different keys; same tile, other shape, same key', () => {
  const a = build({ op: 'conv2d', shapes: [[2, 3, 9, 9], [5, 3, 3, 3]], attrs: { stride: 1, pad: 1 }, tag: '' });
  const b = build({ op: 'conv2d', shapes: [[4, 3, 11, 7], [9, 3, 3, 3]], attrs: { stride: 1, pad: 2 }, tag: '' });
  const key = (x: typeof a, t: Tile) => kernelsForNode(x.g, x.id, { tiles: () => t }).map((k) => k.key).join(' ');
  const tiles = allTiles('conv2d');
  const keys = tiles.map((t) => key(a, t));
  expect(new Set(keys).size).toBe(tiles.length);
  tiles.forEach((t, i) => expect(key(b, t)).toBe(keys[i]));
});

test('tuneModule measures each shape class once, caches it on disk per adapter, and answers from the cache next time', async () => {
  const fs = await import('node:fs'), os = await import('node:os'), path = await import('node:path');
  const { frontEnd } = await import('../../dsl/frontend.js');
  const { runPasses } = await import('../../passes/pipeline.js');
  const { tuneModule, readTuneCache } = await import('../../runtime/webgpu/tune.js');
  const { nodeTileCandidates, shapeClass } = await import('../../codegen/kernels/tiles.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-tune-'));
  try {
    const file = path.join(dir, 'tune.json');
    const m = runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0, wd: 0 }, log: () => {} });
    const gpu = await getGpu({ quiet: true });
    const variant = gpu.isCpuDriver ? 'cpu-driver' : 'gpu';
    const first = await tuneModule(gpu, m, { file, rounds: 1 });
    const cache = readTuneCache(file);
    for (const r of first.rows) {
      const g = m.graphs.find((x) => x.name === r.graph)!;
      const names = nodeTileCandidates(g, g.nodes[r.node], variant).map(tileName);
      expect(names).toContain(r.tile);
      if (names.length > 1) {
        expect(r.source).toBe('measured');
        expect(Object.keys(r.ms!)).toEqual(names);
        expect(cache.adapters[gpu.adapterDescription][r.cls].tile).toBe(r.tile);
      }
    }
    const second = await tuneModule(gpu, m, { file });
    expect(second.rows.map((r) => r.tile)).toEqual(first.rows.map((r) => r.tile));
    expect(second.rows.every((r) => r.source !== 'measured')).toBe(true);
    for (const g of m.graphs)
      for (const n of g.nodes) {
        const row = second.rows.find((r) => r.graph === g.name && r.node === n.id);
        if (row && row.source === 'cache') expect(tileName(second.picker(g, n)!)).toBe(row.tile);
        if (row) expect(row.cls).toBe(shapeClass(g, n));
      }

    // A cache that cannot be written (its folder is a file) costs one warning, not the run: the measurements are used.
    fs.writeFileSync(path.join(dir, 'afile'), '');
    const warnings: string[] = [];
    const third = await tuneModule(gpu, m, { file: path.join(dir, 'afile', 'tune.json'), rounds: 1, force: true, warn: (w) => warnings.push(w) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^cannot write the tuning cache .*afile\/tune\.json .*this run's measurements are not kept$/);
    const measured = third.rows.find((r) => r.source === 'measured')!;
    const g = m.graphs.find((x) => x.name === measured.graph)!;
    expect(tileName(third.picker(g, g.nodes[measured.node])!)).toBe(measured.tile);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
