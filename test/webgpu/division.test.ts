/**
 * DIVISION on WebGPU: the compress/decompress kernels give the CPU semantics' bits (packed words and restored
 * values, stochastic codes included) on fresh random data; a whole training step of a residual BN net with
 * save=division, run kernel by kernel on the device, matches the CPU interpreter's compress → decompress → backward
 * on the device's own inputs (compression ops and the mask/argmax backward bit for bit, conv/BN backward within
 * the op tolerance); and the executor's GPU buffers for saved activations are the planner's packed bytes.
 */
import { Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { getOp } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { align16 } from '../../passes/memory.js';
import { initState } from '../../runtime/train/init.js';
import { planModule } from '../../runtime/memory.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { getGpu } from '../../runtime/webgpu/device.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom, relErr, stepFeeds } from '../unit/helpers.js';
import { TEST_SEED, useGpu } from './gpu-fixture.js';

const env = useGpu();

const SEED = TEST_SEED;
const rand = seededRandom(SEED);
const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const bitsOf = (a: ArrayLike<number> & { buffer?: ArrayBufferLike }) =>
  Array.from(a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : new Uint32Array(new Float32Array(Float64Array.from(a as ArrayLike<number>)).buffer));

/** The op table's CPU semantics on the given host inputs (float32 storage, as the interpreter keeps values). */
function cpu(g: Graph, id: number, ins: Float32Array[], step = { seed: 0, step: 0 }): Float32Array {
  const n = g.nodes[id];
  const out = new Float32Array(numel(n.type.shape));
  getOp(n.op).cpu(ins, out, { attrs: n.attrs, inTypes: n.inputs.map((i) => g.nodes[i].type), type: n.type, epi: n.epi, rng: { ...step, tensorId: id } });
  return out;
}
const f32 = (v: HostArray) => (v instanceof Float32Array ? v : new Float32Array(v.buffer, v.byteOffset, v.length));

describe(`compression kernels vs the CPU semantics, bit for bit (seed ${SEED})`, () => {
  test.each([
    [[2, 3, 32, 32], 8, 2], [[2, 2, 28, 28], 8, 2], [[3, 4, 7, 7], 8, 2], [[1, 3, 4, 4], 2, 2], [[2, 3, 16, 12], 4, 4],
    [[2, 2, 9, 20], 8, 1], [[1, 2, 14, 14], 8, 8],
    // 65,601 planes: a workgroup per plane spills into a 2-D grid with one whole extra group
    [[1, 65601, 2, 2], 8, 2],
  ])('division %j block %i bits %i', async (shape, block, bits) => {
    const g = emptyGraph('t');
    const b = new Builder(g);
    const x = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
    const c = b.add('division_compress', [x], { block, bits });
    const d = b.add('division_decompress', [c], { block, bits, shape });
    const scale = 10 ** (rand() * 6 - 3);
    const xs = Float32Array.from({ length: numel(shape) }, () => (rand() * 2 - 1) * scale + (rand() < 0.1 ? scale : 0));
    const step = { seed: Math.floor(rand() * 1e9), step: Math.floor(rand() * 1000) };
    const wc = cpu(g, c, [xs], step), wd = cpu(g, d, [wc]);
    // CPU drivers walk a plane per invocation, GPUs a plane per workgroup: both give the CPU semantics' bits
    for (const variant of ['cpu-driver', 'gpu'] as const) {
      const r = await runKernels(env.device, g, { feeds: { [x]: xs }, run: [c, d], read: [c, d], step, pipelines: env.cache, variant });
      expect({ variant, words: bitsOf(f32(r.values.get(c)!)) }).toEqual({ variant, words: bitsOf(wc) });
      expect({ variant, values: bitsOf(f32(r.values.get(d)!)) }).toEqual({ variant, values: bitsOf(wd) });
    }
  });

  test.each([[[3, 5, 9, 7], 2, 2, 0], [[2, 3, 9, 11], 3, 2, 0], [[1, 4, 6, 7], 3, 1, 0], [[2, 3, 9, 11], 3, 2, 1], [[2, 2, 8, 8], 3, 2, 1], [[1, 2, 6, 7], 5, 1, 2]])('relu mask and max-pool argmax %j k=%i s=%i pad %i', async (shape, k, stride, pad) => {
    const g = emptyGraph('t');
    const b = new Builder(g);
    const x = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
    const p: { pad?: number } = pad ? { pad } : {};
    const oshape = getOp('maxpool').infer([g.nodes[x].type], { k, stride, ...p }).shape;
    const dy = b.add('input', [], { name: 'dy', kind: 'data', shape: oshape, dtype: 'f32' });
    const m = b.add('mask_compress', [x], {});
    const md = b.add('mask_decompress', [m], { shape });
    const a = b.add('argmax_compress', [x], { k, stride, ...p });
    const ab = b.add('maxpool_bwd_argmax', [dy, a], { k, stride, in_shape: shape, ...p });
    // ties and zeros; all negative when padded (a padding that competed as 0 would win)
    const xs = Float32Array.from({ length: numel(shape) }, () => Math.floor(rand() * 5) - 2 - (pad ? 3 : 0));
    const dys = Float32Array.from({ length: numel(oshape) }, () => rand() * 2 - 1);
    const r = await runKernels(env.device, g, { feeds: { [x]: xs, [dy]: dys }, run: [m, md, a, ab], read: [m, md, a, ab], pipelines: env.cache });
    const wm = cpu(g, m, [xs]), wa = cpu(g, a, [xs]);
    expect(bitsOf(f32(r.values.get(m)!))).toEqual(bitsOf(wm));
    expect(bitsOf(f32(r.values.get(md)!))).toEqual(bitsOf(cpu(g, md, [wm])));
    expect(bitsOf(f32(r.values.get(a)!))).toEqual(bitsOf(wa));
    expect(Array.from(f32(r.values.get(ab)!))).toEqual(Array.from(cpu(g, ab, [dys, wa])));
  });
});

test('ReLU6 mask (mask_compress upper = 6): the kernel gives the CPU semantics\' bits', async () => {
  const shape = [3, 5, 9, 7];
  const g = emptyGraph('t');
  const b = new Builder(g);
  const x = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
  const m = b.add('mask_compress', [x], { upper: 6 });
  const md = b.add('mask_decompress', [m], { shape });
  // relu6 outputs: 0, 6 and values between
  const xs = Float32Array.from({ length: numel(shape) }, () => Math.min(6, Math.max(0, Math.floor(rand() * 10) - 2 + rand() * (rand() < 0.5 ? 0 : 1))));
  const r = await runKernels(env.device, g, { feeds: { [x]: xs }, run: [m, md], read: [m, md], pipelines: env.cache });
  const wm = cpu(g, m, [xs]);
  expect(bitsOf(f32(r.values.get(m)!))).toEqual(bitsOf(wm));
  expect(Array.from(f32(r.values.get(md)!))).toEqual(Array.from(xs, (v) => (v > 0 && v < 6 ? 1 : 0)));
});

function compile(file: string, batch: number, spec?: string) {
  return runPasses(frontEnd(file, batch), { batch, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
}

test.each([['test/fixtures/resbn.ts', 20], ['test/fixtures/dwbn.ts', 10]])('a training step of %s with save=division: compress → decompress → backward as on the CPU', async (file, atLeast) => {
  const batch = 4;
  const m = compile(file, batch, 'save=division(block=8,bits=2)');
  const g = m.graphs.find((x) => x.name === 'train')!;
  const state = initState(m, 0);
  const feeds: Map<number, HostArray> = stepFeeds(g, state, rand);
  const run = g.nodes.filter((n) => n.op !== 'input' && n.op !== 'state').map((n) => n.id);
  const step = { seed: 9, step: 3 };
  // check every compression node and every backward reader of a restored value, on the device's own inputs
  const compressed = g.nodes.filter((n) => /compress$/.test(n.op)).map((n) => n.id);
  const readers = g.nodes.filter((n) => n.inputs.some((i) => /decompress$|^argmax_compress$/.test(g.nodes[i].op))).map((n) => n.id);
  expect(compressed.length).toBeGreaterThan(atLeast);
  if (file.includes('dwbn')) {
    expect(g.nodes.filter((n) => n.op === 'mask_compress' && n.attrs.upper === 6)).toHaveLength(4);
    expect(g.nodes.filter((n) => n.op === 'argmax_compress' && n.attrs.pad === 1)).toHaveLength(1); // the padded max pool
    expect(g.nodes.filter((n) => n.op === 'maxpool_bwd')).toEqual([]);
  }
  const read = [...new Set([...compressed, ...readers, ...[...compressed, ...readers].flatMap((id) => g.nodes[id].inputs)])]
    .filter((id) => g.nodes[id].op !== 'state' && g.nodes[id].op !== 'input');
  const r = await runKernels(env.device, g, { feeds, run, read, step, pipelines: env.cache });
  const value = (id: number) => f32(r.values.get(id) ?? feeds.get(id)!);
  for (const id of compressed)
    expect({ id, op: g.nodes[id].op, bits: bitsOf(value(id)) }).toEqual({ id, op: g.nodes[id].op, bits: bitsOf(cpu(g, id, g.nodes[id].inputs.map(value), step)) });
  for (const id of readers) {
    const want = cpu(g, id, g.nodes[id].inputs.map(value), step), got = value(id);
    if (['relu_bwd', 'relu6_bwd', 'maxpool_bwd_argmax'].includes(g.nodes[id].op)) expect(Array.from(got)).toEqual(Array.from(want));
    else expect({ op: g.nodes[id].op, err: relErr(got, want) < 2e-5 }).toEqual({ op: g.nodes[id].op, err: true });
  }
}, 120000);

test('compression fused into its bn_apply (with_input) stores the bn_apply kernel\'s values and the same words', async () => {
  const batch = 4;
  const fused = compile('test/fixtures/resbn.ts', batch, 'save=division(block=8,bits=2)');
  const g = fused.graphs.find((x) => x.name === 'train')!;
  const withInput = g.nodes.filter((n) => n.op === 'division_compress' && n.attrs.with_input);
  expect(withInput.length).toBeGreaterThan(1);
  expect(withInput.every((n) => g.nodes[n.inputs[0]].op === 'bn_apply')).toBe(true);
  // the same graph with every compression on its own: the bn_apply nodes then have their own kernels
  const plain: Graph = { ...g, nodes: g.nodes.map((n) => (n.attrs.with_input ? { ...n, attrs: { block: n.attrs.block, bits: n.attrs.bits } } : n)) };
  const state = initState(fused, 1);
  const feeds: Map<number, HostArray> = stepFeeds(g, state, rand);
  const run = g.nodes.filter((n) => n.op !== 'input' && n.op !== 'state').map((n) => n.id);
  const read = withInput.flatMap((n) => [n.id, n.inputs[0]]);
  const step = { seed: 5, step: 2 };
  for (const variant of ['cpu-driver', 'gpu'] as const) {
    const a = await runKernels(env.device, g, { feeds, run, read, step, pipelines: env.cache, variant });
    const b = await runKernels(env.device, plain, { feeds, run, read, step, pipelines: env.cache, variant });
    for (const id of read)
      expect({ variant, id, op: g.nodes[id].op, bits: bitsOf(f32(a.values.get(id)!)) }).toEqual({ variant, id, op: g.nodes[id].op, bits: bitsOf(f32(b.values.get(id)!)) });
  }
}, 120000);

describe('the executor allocates the planner\'s packed bytes for saved activations', () => {
  test.each([['models/lenet5.ts', 16], ['test/fixtures/resbn.ts', 4]])('%s batch %i', async (file, batch) => {
    const m = compile(file, batch, 'save=division(block=8,bits=2)');
    const gpu = await getGpu({ quiet: true });
    const plan = planModule(m, env.isCpuDriver ? 'cpu-driver' : 'gpu');
    const pooled = new WebGpuBackend(gpu, m), perNode = new WebGpuBackend(gpu, m, { memory: 'per-node' });
    expect(pooled.storageBytes).toBe(plan.allocated_bytes);
    const ti = m.graphs.findIndex((x) => x.name === 'train');
    const saved = plan.graphs[ti].buffers.filter((b) => b.class === 'saved_activations');
    expect(saved.some((b) => m.graphs[ti].nodes[b.node].type.dtype === 'u32')).toBe(true);
    // one GPUBuffer per value: the buffers of the saved values are exactly the plan's (aligned) packed bytes
    const bufs = (perNode as unknown as { graphs: Map<string, { bufs: GPUBuffer[] }> }).graphs.get('train')!.bufs;
    for (const b of saved) expect(bufs[b.node].size).toBe(align16(b.bytes));
    expect(saved.reduce((s, b) => s + bufs[b.node].size, 0)).toBe(saved.reduce((s, b) => s + b.aligned, 0));
    expect(plan.graphs[ti].classes.saved_activations).toBe(saved.reduce((s, b) => s + b.bytes, 0));
    // and the pooled executor trains with them (the same bits as one buffer per value)
    const steps = async (be: WebGpuBackend) => {
      await be.setState(initState(m, 0));
      const r = seededRandom(4), out: number[] = [];
      const inputs = m.graphs[ti].nodes.filter((n) => n.op === 'input');
      for (let s = 0; s < 2; s++) {
        const f: Record<string, Float32Array | Int32Array> = {};
        for (const n of inputs) {
          const size = numel(n.type.shape);
          f[n.attrs.name as string] = n.type.dtype === 'i32' ? Int32Array.from({ length: size }, () => Math.floor(r() * 10))
            : n.attrs.name === 'lr' ? new Float32Array([0.05]) : Float32Array.from({ length: size }, () => r() * 2 - 1);
        }
        out.push((await be.run('train', f, { seed: 2, step: s }, ['loss'])).loss[0]);
      }
      await be.dispose();
      return out;
    };
    const a = await steps(pooled), b = await steps(perNode);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(a).toEqual(b);
  }, 120000);
});
