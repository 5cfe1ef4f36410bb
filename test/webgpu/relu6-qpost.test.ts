/**
 * ReLU6 and its backward after a fused quantizer (the epilogue's qpost, passes/fuse.ts fold-qpost-relu) in the WGSL
 * kernels, bit for bit: each producer runs once raw (its f32 result R on the GPU) and once with
 * `q=fmt, qpost=relu6(x)` / `qpost=relu6_bwd(x,$0)`; the fused result must equal relu6 of the CPU quantizer applied
 * to R (as test/webgpu/epilogue.test.ts does for relu), wherever the kernel rounds: in its store (fixed, float), in
 * the in-place pass after a tracked store or in a one-pass kernel (bfp), in an MX kernel owning whole blocks. Data are
 * wide enough that values clamp at 6. Last, a MobileNetV2-style net (test/fixtures/dwbn.ts) under bfp<8> trains one
 * step on WebGPU with the pipeline fused and unfused: the same loss and state bits, fewer kernels.
 */
import { Attrs, Builder, emptyGraph } from '../../ir/graph.js';
import { Format, Rounding, formatToString } from '../../ir/format.js';
import { getOp } from '../../ir/ops/index.js';
import { parsePost } from '../../ir/parse.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { initState } from '../../runtime/train/init.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { Gpu, getGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom } from '../unit/helpers.js';
import { bitDiff, opOperands } from './bit-diff.js';
import { TEST_SEED } from './gpu-fixture.js';

let gpu: Gpu;
let cache: PipelineCache;
beforeAll(async () => {
  gpu = await getGpu({ quiet: true });
  cache = new PipelineCache(gpu.device);
});

const SEED = TEST_SEED;
const rand = seededRandom(SEED);
const uniform = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const STEP = { seed: 0x5eed1234, step: 41, bits: { fwd: 5, bwd: 6 } };

const COMBOS: { fmt: Format; rounding: Rounding }[] = [
  { fmt: { kind: 'bfp', wl: 8, axis: 'tensor' }, rounding: 'stochastic' },
  { fmt: { kind: 'bfp', wl: 6, axis: 0 }, rounding: 'nearest' },
  { fmt: { kind: 'fixed', wl: 8, fl: 3 }, rounding: 'stochastic' },
  { fmt: { kind: 'float', exp: 4, man: 3 }, rounding: 'nearest' },
];
const MX_COMBOS: { fmt: Format; rounding: Rounding }[] = [
  { fmt: { kind: 'mx', elem: 'e5m2', block: 4 }, rounding: 'stochastic' },
  { fmt: { kind: 'mx', elem: 'int8', block: 8 }, rounding: 'nearest' },
];

interface Case { op: string; shapes: number[][]; attrs: Attrs; lo?: number[]; hi?: number[]; mx?: boolean }
const CASES: Case[] = [
  { op: 'add', shapes: [[2, 8, 3, 3], [2, 8, 3, 3]], attrs: {}, lo: [-5, -5], hi: [5, 5], mx: true }, // elementwise: rounding store, MX's own kernel
  { op: 'matmul', shapes: [[13, 9], [9, 11]], attrs: { ta: false, tb: false } },
  // batch norm as MobileNetV2's: x, [mean; var], γ, β; γ up to 5 so the normalised values pass 6
  { op: 'bn_apply', shapes: [[3, 5, 4, 7], [2, 5], [5], [5]], attrs: { eps: 1e-5, training: true }, lo: [-2, 0.2, 1, -1], hi: [2, 2, 5, 1], mx: true },
  { op: 'conv2d', shapes: [[2, 6, 7, 6], [6, 1, 3, 3]], attrs: { stride: 1, pad: 1, groups: 6 } }, // depthwise
  { op: 'conv2d_bwd_data', shapes: [[2, 6, 4, 3], [6, 1, 3, 3]], attrs: { stride: 2, pad: 1, groups: 6, in_hw: [7, 6] } },
  { op: 'sum_channel', shapes: [[6, 4, 3, 5]], attrs: {} }, // a split reduction's final kernel
];

async function gpuRun(g: ReturnType<typeof emptyGraph>, id: number, feeds: Map<number, HostArray>): Promise<Float32Array> {
  const { values } = await runKernels(gpu.device, g, { feeds, run: [id], read: [id], step: STEP, pipelines: cache, variant: 'cpu-driver' });
  return values.get(id) as Float32Array;
}

describe('qpost relu6 / relu6_bwd after every kind of fused quantizer, bit for bit', () => {
  for (const k of CASES)
    test(`${k.op}`, async () => {
      const g = emptyGraph('t'), b = new Builder(g);
      const feeds = new Map<number, HostArray>();
      const { ins, y, yv, outShape } = opOperands(g, b, k.op, k.shapes, k.attrs, feeds, (n, i) => uniform(n, k.lo?.[i] ?? -3, k.hi?.[i] ?? 3), (n) => uniform(n, -2, 8));
      const rawId = b.add(k.op, ins, k.attrs);
      const raw = await gpuRun(g, rawId, feeds);
      const relu6 = getOp('relu6').ew!.cpu, relu6Bwd = getOp('relu6_bwd').ew!.cpu;
      let clamped = 0;
      for (const { fmt, rounding } of [...COMBOS, ...(k.mx ? MX_COMBOS : [])]) {
        const fwd = b.add(k.op, ins, k.attrs, undefined, { args: 0, q: { fmt, rounding }, qpost: parsePost('relu6(x)') });
        const bwd = b.add(k.op, [...ins, y], k.attrs, undefined, { args: 1, q: { fmt, rounding }, qpost: parsePost('relu6_bwd(x,$0)') });
        const what = `${k.op} ${formatToString(fmt)}:${rounding} (data seed ${SEED})`;
        const wantF = Float32Array.from(quantize(raw, outShape, fmt, rounding, { ...STEP, tensorId: fwd }), (v) => relu6([v], {}));
        clamped += wantF.filter((v) => v === 6).length;
        expect([`${what} relu6`, bitDiff(await gpuRun(g, fwd, feeds), wantF, raw)]).toEqual([`${what} relu6`, []]);
        const wantB = Float32Array.from(quantize(raw, outShape, fmt, rounding, { ...STEP, tensorId: bwd }), (v, i) => relu6Bwd([v, yv[i]], {}));
        expect([`${what} relu6_bwd`, bitDiff(await gpuRun(g, bwd, feeds), wantB, raw)]).toEqual([`${what} relu6_bwd`, []]);
      }
      expect(clamped).toBeGreaterThan(0);
    });
});

test('a MobileNetV2-style net under bfp<8>: one WebGPU step fused and unfused gives the same loss and state bits, in fewer kernels', async () => {
  const policy = parsePolicy('W=bfp<8,axis=0> A=bfp<8> E=bfp<8> G=bfp<8,axis=0> M=bfp<8,axis=0>');
  const opts = { batch: 2, optimizer: { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: policy };
  const front = frontEnd('test/fixtures/dwbn.ts', 2);
  const unfused = runPasses(structuredClone(front), { ...opts, fuse: false }), fused = runPasses(front, opts);
  const state = initState(unfused, 7);
  for (const [k, v] of state) if (/\.weight$/.test(k) && v.length > 1 && v.every((x) => x === 1)) state.set(k, v.map(() => 8)); // γ = 8: ReLU6 clamps
  const feeds = {
    x: Float32Array.from({ length: 2 * 3 * 16 * 16 }, (_, i) => Math.sin(i * 0.37) * 2),
    y: Int32Array.from([3, 7]), lr: new Float32Array([0.05]),
  };
  const results = [];
  for (const m of [unfused, fused]) {
    const web = new WebGpuBackend(gpu, m);
    try {
      await web.setState(state);
      const kernels = web.kernels('train').length;
      const loss = (await web.run('train', feeds, { seed: 3, step: 0 }, ['loss'])).loss[0];
      results.push({ kernels, loss, state: await web.getState() });
    } finally {
      await web.dispose();
    }
  }
  const [u, f] = results;
  expect(f.kernels).toBeLessThan(u.kernels);
  expect(f.loss).toBe(u.loss);
  for (const [k, v] of u.state) expect([k, Array.from(new Uint32Array(f.state.get(k)!.buffer))]).toEqual([k, Array.from(new Uint32Array(v.buffer))]);
});

test('with save=division and fixed-point activations, relu6 after the batch norms\' quantizers and its 1-bit masks read from them: the WebGPU step is the CPU interpreter\'s', async () => {
  const policy = parsePolicy('W=fixed<8,6> A=fixed<8,4> E=fixed<8,5>:stochastic ; save=division(block=8,bits=2)');
  const m = runPasses(frontEnd('test/fixtures/dwbn.ts', 2), { batch: 2, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: policy, log: () => {} });
  const g = m.graphs.find((x) => x.name === 'train')!;
  const q6 = (id: number) => { const e = g.nodes[id].epi; return e?.qpost?.kind === 'op' && e.qpost.op === 'relu6' && e.q?.role === 'A'; };
  expect(g.nodes.filter((n) => n.op === 'mask_compress' && n.attrs.upper === 6 && q6(n.inputs[0]))).toHaveLength(4);
  expect(g.nodes.filter((n) => n.op === 'relu6' || n.op === 'relu6_bwd')).toEqual([]);
  const state = initState(m, 7);
  for (const [k, v] of state) if (/\.weight$/.test(k) && v.length > 1 && v.every((x) => x === 1)) state.set(k, v.map(() => 8));
  const feeds = { x: Float32Array.from({ length: 2 * 3 * 16 * 16 }, (_, i) => Math.sin(i * 0.37) * 2), y: Int32Array.from([3, 7]), lr: new Float32Array([0.05]) };
  const web = new WebGpuBackend(gpu, m), cpu = new CpuBackend(m);
  try {
    await web.setState(state);
    await cpu.setState(state);
    const a = (await web.run('train', feeds, { seed: 3, step: 0 }, ['loss'])).loss[0];
    const b = (await cpu.run('train', feeds, { seed: 3, step: 0 }, ['loss'])).loss[0];
    expect(Math.abs(a - b)).toBeLessThan(1e-4 * Math.max(1, Math.abs(b)));
    const [ws, cs] = [await web.getState(), await cpu.getState()];
    // the W-quantized weights (momentum and BN running statistics stay f32: they differ in last bits, fused or not)
    let n = 0, same = 0;
    for (const [k, v] of cs) if (!/momentum|running/.test(k)) ws.get(k)!.forEach((x, i) => { n++; if (x === v[i]) same++; });
    expect(same / n).toBeGreaterThan(0.99); // a conv's f32-vs-f64 ulp at a rounding boundary may flip a value
  } finally {
    await web.dispose();
  }
});
