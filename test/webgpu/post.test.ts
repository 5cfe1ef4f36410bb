/**
 * Post-ops (ir/post.ts) in every kind of generator: the node's kernels compute op → post-ops (→ quantizer) in their
 * final store and must match the CPU interpreter (op table semantics, each step rounded to f32): ≤ 1e-5 relative
 * to the tensor's largest value for f32 math, and bit for bit for elementwise producers. Extra operands are
 * random tensors of the result's shape (or [1] scalars); shapes are not multiples of 4 or of the register tiles.
 * Last, LeNet-5 and ResNet-20 training graphs after the elementwise fusion pass equal the unfused graphs on the
 * CPU interpreter bit for bit, and the fused ResNet-20 step runs on WebGPU like the CPU.
 */
import { Attrs, Builder, Graph, emptyGraph } from '../../ir/graph.js';
import type { Epilogue } from '../../ir/epilogue.js';
import { parsePost } from '../../ir/parse.js';
import { postToString } from '../../ir/post.js';
import { numel } from '../../ir/types.js';
import { Format } from '../../ir/format.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { Gpu, getGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom } from '../unit/helpers.js';
import { Tile, TilePicker, tileFits, tileName } from '../../codegen/kernels/tiles.js';
import { TEST_SEED } from './gpu-fixture.js';

let gpu: Gpu;
let cache: PipelineCache;
beforeAll(async () => { gpu = await getGpu({ quiet: true }); cache = new PipelineCache(gpu.device); });

const SEED = TEST_SEED;
const rand = seededRandom(SEED);
const uniform = (n: number, lo = -2, hi = 2) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());

interface Case { op: string; ins: number[][]; attrs?: Attrs; post: string; extras: number[][]; exact?: boolean; q?: Format; data?: (i: number, n: number) => HostArray; tile?: Tile }
const conv = { stride: 1, pad: 1 };
const WINO: Tile = { kind: 'wino', m: 8, n: 8 }, WINO_W: Tile = { kind: 'wino', m: 8, n: 4 }, WINO4: Tile = { kind: 'wino4', m: 16, n: 4 }, WINO4_W: Tile = { kind: 'wino4', m: 8, n: 4 };
const CASES: Case[] = [
  { op: 'add', ins: [[3, 7], [3, 7]], post: 'relu(x)', extras: [], exact: true },
  { op: 'scale', ins: [[4, 9]], attrs: { c: 0.5 }, post: 'add($0,x)', extras: [[4, 9]], exact: true },
  { op: 'mul_scalar', ins: [[5, 13], [1]], post: 'sub($0,x)', extras: [[5, 13]], exact: true, q: { kind: 'bfp', wl: 8, axis: 0 } },
  { op: 'scale', ins: [[2, 9000]], attrs: { c: -1.5 }, post: 'relu(add(x,$0))', extras: [[2, 9000]], exact: true, q: { kind: 'bfp', wl: 8, axis: 'tensor' } },
  { op: 'matmul', ins: [[7, 12], [12, 9]], attrs: { ta: false, tb: false }, post: 'relu_bwd(x,$0)', extras: [[7, 9]] },
  { op: 'linear', ins: [[5, 13], [7, 13], [7]], post: 'relu(x)', extras: [], q: { kind: 'fixed', wl: 8, fl: 4 } },
  { op: 'conv2d', ins: [[2, 3, 9, 7], [5, 3, 3, 3]], attrs: conv, post: 'relu(add(x,$0))', extras: [[2, 5, 9, 7]] },
  { op: 'conv2d', ins: [[2, 3, 9, 7], [5, 3, 3, 3], [5]], attrs: conv, post: 'relu(add(x,$0))', extras: [[2, 5, 9, 7]], tile: WINO },
  { op: 'conv2d_bwd_data', ins: [[2, 5, 9, 7], [5, 3, 3, 3]], attrs: { ...conv, in_hw: [9, 7] }, post: 'relu_bwd(x,$0)', extras: [[2, 3, 9, 7]], tile: WINO },
  { op: 'conv2d_bwd_weight', ins: [[2, 5, 9, 7], [2, 3, 9, 7]], attrs: { ...conv, k_hw: [3, 3] }, post: 'add(x,$0)', extras: [[5, 3, 3, 3]] },
  { op: 'conv2d_bwd_weight', ins: [[2, 5, 9, 7], [2, 3, 9, 7]], attrs: { ...conv, k_hw: [3, 3] }, post: 'add(x,$0)', extras: [[5, 3, 3, 3]], tile: WINO_W },
  { op: 'maxpool_bwd', ins: [[2, 3, 3, 2], [2, 3, 7, 5]], attrs: { k: 2, stride: 2 }, post: 'relu_bwd(x,$0)', extras: [[2, 3, 7, 5]], exact: true },
  { op: 'bn_apply', ins: [[3, 4, 5, 5], [2, 4], [4], [4]], attrs: { eps: 1e-5, training: true }, post: 'relu(add(x,$0))', extras: [[3, 4, 5, 5]],
    data: (i, n) => (i === 1 ? Float32Array.from([...uniform(4), ...uniform(4, 0.2, 2)]) : uniform(n)) },
  { op: 'sum_channel', ins: [[3, 4, 5, 5]], post: 'add(x,scale{c=0.0005}($0))', extras: [[4]] },
];

function build(c: Case): { g: Graph; id: number; feeds: Map<number, HostArray>; named: Record<string, HostArray> } {
  const g = emptyGraph('t'), b = new Builder(g);
  const feeds = new Map<number, HostArray>(), named: Record<string, HostArray> = {};
  const input = (shape: number[], i: number) => {
    const data = c.data?.(i, numel(shape)) ?? uniform(numel(shape));
    const id = b.add('input', [], { name: `x${i}`, kind: 'data', shape, dtype: 'f32' });
    feeds.set(id, data); named[`x${i}`] = data;
    return id;
  };
  const ins = c.ins.map((s, i) => input(s, i));
  const extras = c.extras.map((s, j) => input(s, c.ins.length + j));
  const epi: Epilogue = { post: parsePost(c.post), args: extras.length, ...(c.q ? { q: { fmt: c.q, rounding: 'nearest' as const } } : {}) };
  return { g, id: b.add(c.op, [...ins, ...extras], c.attrs ?? {}, undefined, epi), feeds, named };
}

describe(`post-ops in each generator vs the CPU interpreter (data seed ${SEED})`, () => {
  test.each(CASES.map((c) => [`${c.op}${c.tile ? ` (${tileName(c.tile)})` : ''} ${c.post}${c.q ? ' then a quantizer' : ''}`, c]))('%s', async (_name, c) => {
    const { g, id, feeds, named } = build(c as Case);
    const tile = (c as Case).tile;
    const { values, kernels } = await runKernels(gpu.device, g, { feeds, run: [id], read: [id], pipelines: cache, ...(tile ? { tiles: () => tile } : {}) });
    if (tile) expect(kernels.some((k) => k.name.includes(tileName(tile)))).toBe(true);
    expect(kernels.some((k) => k.epilogue)).toBe(true); // post (and quantizer) in the final store
    const got = values.get(id) as Float32Array;
    const want = runGraph(g, named, new Map()).values[id] as Float32Array;
    if ((c as Case).exact) { expect([...got]).toEqual([...want]); return; }
    const scale = Math.max(...want.map(Math.abs), 1e-6);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
    // with a quantizer an ulp of f32 math may move one value by a grid step: allow that one step
    expect(worst).toBeLessThanOrEqual((c as Case).q ? 2 ** -4 / scale + 1e-5 : 1e-5);
  });
});

const SGD = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
describe('the elementwise fusion pass', () => {
  test.each([['models/lenet5.ts', [1, 28, 28]], ['models/resnet20.ts', [3, 32, 32]]] as const)('%s: fused graphs equal the unfused ones on the CPU interpreter, fewer nodes', (file, shape) => {
    const batch = 2;
    const fused = runPasses(frontEnd(file, batch), { batch, optimizer: SGD, verifyEach: true });
    const plain = runPasses(frontEnd(file, batch), { batch, optimizer: SGD, fuse: false });
    const state = initState(fused, 4);
    const x = uniform(batch * numel([...shape])), y = Int32Array.from({ length: batch }, (_, i) => (3 * i + 1) % 10);
    for (const name of ['train', 'eval']) {
      const gf = fused.graphs.find((g) => g.name === name)!, gp = plain.graphs.find((g) => g.name === name)!;
      expect(gf.nodes.length).toBeLessThan(gp.nodes.length);
      const rf = runGraph(gf, { x, y, lr: [0.05] }, state), rp = runGraph(gp, { x, y, lr: [0.05] }, state);
      expect(rf.outputs.loss[0]).toBe(rp.outputs.loss[0]);
      for (const [k, v] of rp.updates) expect([k, [...rf.updates.get(k)!].every((a, i) => Object.is(a, v[i]))]).toEqual([k, true]);
    }
  }, 120000);

  // the default tiles, and Winograd F(2×2) or F(4×4) wherever it applies (every 3×3 stride-1 conv and both its
  // gradients)
  const wino: TilePicker = (g, n) => (!tileFits(g, n, WINO) ? undefined : n.op === 'conv2d_bwd_weight' ? WINO_W : WINO);
  const wino4: TilePicker = (g, n) => (!tileFits(g, n, WINO) ? undefined : n.op === 'conv2d_bwd_weight' ? WINO4_W : WINO4);
  test.each([['default tiles', undefined], ['Winograd tiles', wino], ['Winograd F(4×4) tiles', wino4]] as const)('ResNet-20, fused, %s: one WebGPU step follows the CPU interpreter', async (_name, tiles) => {
    const batch = 2;
    const m = runPasses(frontEnd('models/resnet20.ts', batch), { batch, optimizer: SGD });
    expect(m.graphs[0].nodes.some((n) => n.op === 'bn_apply' && n.epi?.post && postToString(n.epi.post) === 'relu(x)')).toBe(true);
    const web = new WebGpuBackend(gpu, m, tiles ? { tiles } : {}), cpu = new CpuBackend(m);
    const init = initState(m, 5);
    await web.setState(init);
    await cpu.setState(init);
    // fixed data: at batch 2 the deep BN outputs are nearly ±c per sample, so a residual block's relu(bn(a) + bn(b))
    // often cancels to within rounding of 0, and the backends' last bits then route its gradient differently (about
    // 1 seed in 10: relu(2.4e-7) vs relu(−1e-7) at group2_layer0's output moved every earlier update by ~2%)
    const r = seededRandom(20261202);
    const x = Float32Array.from({ length: batch * 3 * 32 * 32 }, () => 4 * r() - 2), y = Int32Array.of(2, 7), lr = Float32Array.of(0.05);
    const a = await web.run('train', { x, y, lr }, { seed: 0, step: 0 }, ['loss']);
    const b = await cpu.run('train', { x, y, lr }, { seed: 0, step: 0 }, ['loss']);
    expect(Math.abs(a.loss[0] - b.loss[0])).toBeLessThanOrEqual(1e-4 * Math.abs(b.loss[0]));
    const [ws, cs] = [await web.getState(), await cpu.getState()];
    for (const [name, v] of cs) {
      const w = ws.get(name)!, scale = Math.max(...v.map(Math.abs), 1e-6);
      expect([name, Math.max(...v.map((c, i) => Math.abs(c - w[i]))) / scale <= 1e-4]).toEqual([name, true]);
    }
    await web.dispose();
  }, 120000);
});
