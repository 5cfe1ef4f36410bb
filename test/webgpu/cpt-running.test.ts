/**
 * CPT's running activation range on WebGPU: the kernels of minmax_qparams, minmax_running_update and
 * minmax_quantize bit for bit against the CPU interpreter (the op table's semantics) on fresh random data — sizes
 * off multiples of 4, values outside the given range, range 0, widths from params and from the step uniform,
 * width 0, both roundings — and a CPT training step on the executor updating the buffers as the CPU does.
 */
import { Attrs, Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { Format } from '../../ir/format.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState } from '../../runtime/train/init.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { Gpu, getGpu, shutdownGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom } from '../unit/helpers.js';
import { TEST_SEED } from './gpu-fixture.js';

let gpu: Gpu;
let cache: PipelineCache;
beforeAll(async () => { gpu = await getGpu({ quiet: true }); cache = new PipelineCache(gpu.device); });
afterAll(async () => { await shutdownGpu(); });

const SEED = TEST_SEED;
const rand = seededRandom(SEED);
const uniform = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const bitsOf = (a: ArrayLike<number>) => [...new Uint32Array(Float32Array.from(a).buffer)];

type Step = { seed: number; step: number; bits?: { fwd: number; bwd: number } };

/** One op node fed by inputs; its value on the GPU and on the CPU interpreter. */
async function both(op: string, ins: Float32Array[], shapes: number[][], attrs: Attrs, step: Step): Promise<{ gpu: number[]; cpu: number[]; g: Graph; id: number }> {
  const g = emptyGraph('t');
  const b = new Builder(g);
  const feeds = new Map<number, HostArray>();
  const named: Record<string, HostArray> = {};
  const ids = ins.map((data, i) => {
    const id = b.add('input', [], { name: `x${i}`, kind: 'data', shape: shapes[i], dtype: 'f32' });
    feeds.set(id, data);
    named[`x${i}`] = data;
    return id;
  });
  const id = b.add(op, ids, attrs);
  const { values } = await runKernels(gpu.device, g, { feeds, run: [id], read: [id], step, pipelines: cache });
  const cpu = runGraph(g, named, new Map(), step).values[id];
  return { gpu: bitsOf(values.get(id) as Float32Array), cpu: bitsOf(cpu), g, id };
}

const mm = (bits: number, sched?: 'fwd' | 'bwd'): Format => ({ kind: 'minmax', bits, per: 'tensor', ...(sched ? { sched } : {}) });

test(`minmax_qparams: [min, max − min] of the whole tensor (data seed ${SEED})`, async () => {
  const cases: Float32Array[] = [uniform(1, -1, 1), uniform(7, -3, 5), uniform(1000, 0.5, 2), uniform(100003, -40, -2), Float32Array.of(-0, 0, -0)];
  const big = uniform(70001, -1, 1);
  big[69999] = 1e6; big[3] = -1e-6 - 1e6;
  cases.push(big);
  for (const x of cases) {
    const r = await both('minmax_qparams', [x], [[x.length]], {}, { seed: 1, step: 2 });
    expect([x.length, r.gpu]).toEqual([x.length, r.cpu]);
  }
});

test(`minmax_running_update: static and scheduled widths, width 0 keeps the buffer (data seed ${SEED})`, async () => {
  for (const [fmt, step] of [
    [mm(8), { seed: 0, step: 0 }],
    [mm(8, 'fwd'), { seed: 0, step: 0, bits: { fwd: 5, bwd: 8 } }],
    [mm(8, 'fwd'), { seed: 0, step: 0, bits: { fwd: 0, bwd: 8 } }],
    [mm(0), { seed: 0, step: 0 }],
  ] as [Format, Step][]) {
    const run = uniform(2, -2, 2), batch = uniform(2, -5, 5);
    const r = await both('minmax_running_update', [run, batch], [[2], [2]], { momentum: 0.1, fmt }, step);
    expect(r.gpu).toEqual(r.cpu);
    if ((fmt as { bits: number }).bits === 0 || step.bits?.fwd === 0) expect(r.cpu).toEqual(bitsOf(run));
    else expect(r.cpu).not.toEqual(bitsOf(run));
  }
});

test(`minmax_quantize with given qparams: widths, roundings, clamping, range 0 (data seed ${SEED})`, async () => {
  const x = uniform(1031, -3, 3);
  const qps = [Float32Array.of(-1.25, 2.5), Float32Array.of(-3.5, 7), Float32Array.of(0.5, 0), uniform(2, 0, 1)];
  for (const qp of qps)
    for (const [fmt, step] of [
      [mm(3), { seed: 9, step: 4 }],
      [mm(8), { seed: 9, step: 4 }],
      [mm(8, 'fwd'), { seed: 9, step: 4, bits: { fwd: 4, bwd: 8 } }],
      [mm(8, 'bwd'), { seed: 9, step: 4, bits: { fwd: 4, bwd: 6 } }],
      [mm(8, 'fwd'), { seed: 9, step: 4, bits: { fwd: 0, bwd: 8 } }],
    ] as [Format, Step][])
      for (const rounding of ['nearest', 'stochastic']) {
        const r = await both('minmax_quantize', [x, qp], [[x.length], [2]], { fmt, rounding }, step);
        const what = `${JSON.stringify(fmt)} ${rounding} qp=${[...qp]} bits=${JSON.stringify(step.bits)}`;
        const diff = r.gpu.map((u, i) => (u === r.cpu[i] ? -1 : i)).filter((i) => i >= 0).slice(0, 3);
        expect([what, diff]).toEqual([what, []]);
      }
});

test('one pipeline per rounding serves every width (scheduled widths are uniforms, static ones params)', () => {
  const g = emptyGraph('t');
  const b = new Builder(g);
  const x = b.add('input', [], { name: 'x', kind: 'data', shape: [10], dtype: 'f32' });
  const qp = b.add('input', [], { name: 'qp', kind: 'data', shape: [2], dtype: 'f32' });
  const k = (fmt: Format, rounding = 'nearest') => kernelsForNode(g, b.add('minmax_quantize', [x, qp], { fmt, rounding }))[0];
  expect(k(mm(3)).key).toBe(k(mm(8)).key);
  expect(k(mm(8, 'fwd')).key).not.toBe(k(mm(8)).key);
  expect(k(mm(8), 'stochastic').key).not.toBe(k(mm(8)).key);
});

test('a CPT training step on WebGPU updates the running ranges as the CPU interpreter does; eval reads them', async () => {
  const spec = 'W=minmax<8,channel> A=minmax<8,tensor> E=minmax<8,tensor>:stochastic ; schedule fwd=cyclic(3,8,periods=4) bwd=const(8)';
  const m = runPasses(frontEnd('models/lenet5.ts', 4), { batch: 4, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: parsePolicy(spec) });
  const r = seededRandom(31);
  const x = Float32Array.from({ length: 4 * 784 }, () => r() * 2 - 0.4);
  const feeds = { x, y: Int32Array.of(3, 1, 4, 1), lr: Float32Array.of(0.05) };
  const web = new WebGpuBackend(gpu, m), cpu = new CpuBackend(m);
  const init = initState(m, 4);
  await web.setState(init);
  await cpu.setState(init);
  try {
    for (const [step, bits] of [[0, { fwd: 3, bwd: 8 }], [1, { fwd: 7, bwd: 8 }]] as const) {
      await web.run('train', feeds, { seed: 3, step, bits }, ['loss']);
      await cpu.run('train', feeds, { seed: 3, step, bits }, ['loss']);
    }
    const [ws, cs] = [await web.getState(), await cpu.getState()];
    // conv0 measures the image: exact; conv1 measures a pooled conv output whose weights took a step (f32 sums in
    // another order, a 3-bit error level flip now and then: close, as test/webgpu/cpt.test.ts finds the weights)
    expect(bitsOf(ws.get('conv0.act_range')!)).toEqual(bitsOf(cs.get('conv0.act_range')!));
    const [a, c] = [ws.get('conv1.act_range')!, cs.get('conv1.act_range')!];
    expect(c[1]).toBeGreaterThan(0);
    for (let i = 0; i < 2; i++) expect(Math.abs(a[i] - c[i])).toBeLessThanOrEqual(1e-3 * Math.abs(c[1]));
    // evaluation depends on the buffers: zeroing them (range 0: every value collapses to the zero point) changes the loss
    const ev = async (b: WebGpuBackend) => (await b.run('eval', { x, y: feeds.y }, { seed: 0, step: 0, bits: { fwd: 7, bwd: 8 } }, ['loss'])).loss[0];
    const before = await ev(web);
    const cpuLoss = (await cpu.run('eval', { x, y: feeds.y }, { seed: 0, step: 0, bits: { fwd: 7, bwd: 8 } }, ['loss'])).loss[0];
    expect(Math.abs(before - cpuLoss)).toBeLessThanOrEqual(1e-3 * Math.abs(cpuLoss));
    const zeroed = new Map(ws);
    zeroed.set('conv0.act_range', new Float32Array(2));
    zeroed.set('conv1.act_range', new Float32Array(2));
    await web.setState(zeroed);
    expect(await ev(web)).not.toBe(before);
  } finally {
    await web.dispose();
  }
});
