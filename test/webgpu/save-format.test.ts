/**
 * save=fp16|bf16|float<e,m>|fixed<wl,fl> on WebGPU: the format_compress / format_decompress kernels give the CPU
 * semantics' bits (packed codes and restored f32 patterns) on fresh random data with subnormals, saturation, ±Inf,
 * NaN and signed zeros; a training step of a residual BN net with save=bf16 restores the CPU interpreter's values on
 * the device's own inputs; the executor allocates the planner's packed bytes.
 */
import { Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { getOp } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { parseFormat } from '../../ir/format.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { align16 } from '../../passes/memory.js';
import { initState } from '../../runtime/train/init.js';
import { planModule } from '../../runtime/memory.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { getGpu } from '../../runtime/webgpu/device.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom, stepFeeds } from '../unit/helpers.js';
import { TEST_SEED, useGpu } from './gpu-fixture.js';

const env = useGpu();

const SEED = TEST_SEED;
const rand = seededRandom(SEED);
const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const u32 = (v: HostArray) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

function cpu(g: Graph, id: number, ins: Float32Array[]): Float32Array {
  const n = g.nodes[id];
  const out = new Float32Array(numel(n.type.shape));
  getOp(n.op).cpu(ins, out, { attrs: n.attrs, inTypes: n.inputs.map((i) => g.nodes[i].type), type: n.type, epi: n.epi, rng: { seed: 0, step: 0, tensorId: id } });
  return out;
}

/** f32 bit patterns over the whole range: every exponent (subnormals included), specials, signed zeros. */
function wideBits(n: number): Float32Array {
  const u = Uint32Array.from({ length: n }, () => (Math.floor(rand() * 2 ** 32) >>> 0));
  for (let i = 0; i < n; i += 7) u[i] = ((u[i] & 0x807fffff) | ((100 + Math.floor(rand() * 56)) << 23)) >>> 0; // near 1
  const specials = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x00000001, 0x807fffff, 0x477fe000, 0x47800000, 0x3f808000];
  specials.forEach((s, i) => { u[i] = s; });
  return new Float32Array(u.buffer);
}

describe(`format_compress / format_decompress kernels vs the CPU semantics, bit for bit (seed ${SEED})`, () => {
  test.each(['fp16', 'bf16', 'e4m3', 'e5m2', 'float<3,4>', 'float<8,3>', 'float<7,8>', 'float<1,1>', 'fixed<8,4>', 'fixed<8,3,sym>', 'fixed<16,10>', 'fixed<3,1>', 'fixed<12,100>'])('%s', async (name) => {
    const fmt = parseFormat(name);
    const n = 1 + Math.floor(rand() * 5000), shape = [n];
    const g = emptyGraph('t');
    const b = new Builder(g);
    const x = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
    const c = b.add('format_compress', [x], { fmt });
    const d = b.add('format_decompress', [c], { fmt, shape });
    const xs = wideBits(n);
    const r = await runKernels(env.device, g, { feeds: { [x]: xs }, run: [c, d], read: [c, d], pipelines: env.cache });
    const wc = cpu(g, c, [xs]);
    expect(u32(r.values.get(c)!)).toEqual(u32(wc));
    expect(u32(r.values.get(d)!)).toEqual(u32(cpu(g, d, [wc])));
  });
});

function compile(file: string, batch: number, spec?: string) {
  return runPasses(frontEnd(file, batch), { batch, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
}

test('a training step of the residual BN net with save=bf16: the saved and restored values as on the CPU', async () => {
  const batch = 4;
  const m = compile('test/fixtures/resbn.ts', batch, 'save=bf16');
  const g = m.graphs.find((x) => x.name === 'train')!;
  const state = initState(m, 0);
  const feeds: Map<number, HostArray> = stepFeeds(g, state, rand);
  const run = g.nodes.filter((n) => n.op !== 'input' && n.op !== 'state').map((n) => n.id);
  const ids = g.nodes.filter((n) => /^format_(de)?compress$/.test(n.op)).map((n) => n.id);
  expect(ids.length).toBeGreaterThan(10);
  const read = [...new Set([...ids, ...ids.flatMap((id) => g.nodes[id].inputs)])].filter((id) => !['state', 'input'].includes(g.nodes[id].op));
  const r = await runKernels(env.device, g, { feeds, run, read, step: { seed: 9, step: 3 }, pipelines: env.cache });
  const value = (id: number) => { const v = r.values.get(id) ?? feeds.get(id)!; return v instanceof Float32Array ? v : new Float32Array(v.buffer, v.byteOffset, v.length); };
  for (const id of ids)
    expect({ id, op: g.nodes[id].op, bits: u32(value(id)) }).toEqual({ id, op: g.nodes[id].op, bits: u32(cpu(g, id, g.nodes[id].inputs.map(value))) });
}, 120000);

test.each([['models/lenet5.ts', 16, 'save=bf16'], ['test/fixtures/resbn.ts', 4, 'save=e4m3']])('the executor allocates the planner\'s packed bytes: %s batch %i %s', async (file, batch, spec) => {
  const m = compile(file, batch, spec);
  const gpu = await getGpu({ quiet: true });
  const plan = planModule(m, env.isCpuDriver ? 'cpu-driver' : 'gpu');
  const perNode = new WebGpuBackend(gpu, m, { memory: 'per-node' });
  const ti = m.graphs.findIndex((x) => x.name === 'train');
  const saved = plan.graphs[ti].buffers.filter((b) => b.class === 'saved_activations');
  expect(saved.some((b) => m.graphs[ti].nodes[b.node].op === 'format_compress')).toBe(true);
  const bufs = (perNode as unknown as { graphs: Map<string, { bufs: GPUBuffer[] }> }).graphs.get('train')!.bufs;
  for (const b of saved) expect(bufs[b.node].size).toBe(align16(b.bytes));
  await perNode.setState(initState(m, 0));
  const r = seededRandom(4), f: Record<string, Float32Array | Int32Array> = {};
  for (const n of m.graphs[ti].nodes.filter((x) => x.op === 'input')) {
    const size = numel(n.type.shape);
    f[n.attrs.name as string] = n.type.dtype === 'i32' ? Int32Array.from({ length: size }, () => Math.floor(r() * 10))
      : n.attrs.name === 'lr' ? new Float32Array([0.05]) : Float32Array.from({ length: size }, () => r() * 2 - 1);
  }
  const loss = (await perNode.run('train', f, { seed: 2, step: 0 }, ['loss'])).loss[0];
  expect(Number.isFinite(loss)).toBe(true);
  await perNode.dispose();
}, 120000);

test('save=recompute on the device: two training steps bit-identical to saving everything', async () => {
  const batch = 4, gpu = await getGpu({ quiet: true });
  const run = async (spec?: string) => {
    const m = compile('test/fixtures/resbn.ts', batch, spec), be = new WebGpuBackend(gpu, m);
    await be.setState(initState(m, 0));
    const r = seededRandom(8), losses: number[] = [];
    for (let s = 0; s < 2; s++) {
      const f = { x: Float32Array.from({ length: batch * 3 * 28 * 28 }, () => r() * 2 - 1), y: Int32Array.from({ length: batch }, () => Math.floor(r() * 10)), lr: new Float32Array([0.05]) };
      losses.push((await be.run('train', f, { seed: 3, step: s }, ['loss'])).loss[0]);
    }
    const st = await be.getState();
    await be.dispose();
    return { losses, st };
  };
  const a = await run(), b = await run('save=recompute');
  expect(b.losses).toEqual(a.losses);
  for (const [name, v] of a.st) expect({ name, v: u32(b.st.get(name)!) }).toEqual({ name, v: u32(v) });
}, 120000);
