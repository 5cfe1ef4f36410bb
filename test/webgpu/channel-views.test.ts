/**
 * Concatenations without copies on WebGPU (passes/channel-views.ts, codegen/views.ts): small DenseNets in both
 * concatenation orders train and evaluate with every concat input written in place and the gradient's splits read
 * in place — the same bits as with the concats copying (fp32, SWALP-style bfp<8> with stochastic rounding, DIVISION's
 * compressed saved activations), in buffers sized by the plan — and follow the CPU interpreter (fp32 losses within
 * 1e-4).
 */
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Module } from '../../ir/graph.js';
import { initState } from '../../runtime/train/init.js';
import { moduleKernels, planModule } from '../../runtime/memory.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { Backend } from '../../runtime/backend.js';
import { getGpu, shutdownGpu } from '../../runtime/webgpu/device.js';
import { rand, relErr } from '../unit/helpers.js';
import { TORCH, caseFeeds, caseState, gradientModule } from '../unit/densecat-cases.js';

afterAll(async () => { await shutdownGpu(); });

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const SPECS: [string, string | undefined][] = [
  ['fp32', undefined],
  ['bfp8', 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic'],
  ['division', 'save=division(block=8,bits=2)'],
];
const NETS: [string, number[]][] = [
  ['test/fixtures/densecat/cifar-tiny.ts', [3, 8, 8]],
  ['test/fixtures/densecat/imagenet-tiny.ts', [3, 16, 16]],
];
const BATCH = 2;

function feeds(input: number[], s: number) {
  const r = rand(100 + s), size = BATCH * input.reduce((a, b) => a * b, 1);
  return { x: Float32Array.from({ length: size }, () => 2 * r() - 1), y: Int32Array.from([3, 7]) };
}

/** Train losses, eval losses and the final state's bits over three steps. */
async function trace(b: Backend & { dispose?(): Promise<void> }, m: Module, input: number[]): Promise<{ out: number[]; state: number[] }> {
  await b.setState(initState(m, 0));
  const out: number[] = [];
  for (let s = 0; s < 3; s++) {
    const f = feeds(input, s);
    out.push((await b.run('train', { ...f, lr: new Float32Array([sgd.lr]) }, { seed: 5, step: s }, ['loss'])).loss[0]);
    out.push((await b.run('eval', f, { seed: 5, step: s }, ['loss'])).loss[0]);
  }
  const state: number[] = [];
  for (const v of (await b.getState()).values()) state.push(...new Uint32Array(v.buffer, v.byteOffset, v.length));
  await b.dispose?.();
  return { out, state };
}

for (const [file, input] of NETS)
  for (const [label, spec] of SPECS)
    test(`${file} ${label}: every concat input in place, the same bits as copying`, async () => {
      const m = runPasses(frontEnd(file, BATCH, { input }), { batch: BATCH, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
      const gpu = await getGpu({ quiet: true });
      const variant = gpu.isCpuDriver ? 'cpu-driver' : 'gpu';
      const train = m.graphs.find((g) => g.name === 'train')!;
      const concatInputs = train.nodes.filter((n) => n.op === 'concat').reduce((s, n) => s + n.inputs.length, 0);
      expect(concatInputs).toBeGreaterThan(0);
      const views0 = [...moduleKernels(m, variant).views!.get('train')!.values()];
      expect(views0.filter((v) => !v.slice && v.accumulates === undefined).length).toBe(concatInputs);
      // the gradient splits read their ranges in place unless an E quantizer rounds them
      const plainSlices = train.nodes.filter((n) => n.op === 'slice' && !n.epi).length;
      expect(views0.filter((v) => v.slice).length).toBe(plainSlices);
      if (!spec) expect(plainSlices).toBe(concatInputs);
      // and the error of each concat's input is summed in place into the block's one gradient buffer
      if (!spec) expect(views0.filter((v) => v.accumulates !== undefined).length).toBe(concatInputs / 2);
      const views = new WebGpuBackend(gpu, m), copies = new WebGpuBackend(gpu, m, { concatViews: false });
      // the buffers follow the plan with the views (what they save is measured on DenseNet-121: test/unit/channel-views.test.ts)
      expect(views.storageBytes).toBe(planModule(m, variant).allocated_bytes);
      expect(copies.storageBytes).toBe(planModule(m, variant, moduleKernels(m, variant, undefined, { concatViews: false })).allocated_bytes);
      const a = await trace(views, m, input), b = await trace(copies, m, input);
      expect(a.out.every(Number.isFinite)).toBe(true);
      expect(a.out).toEqual(b.out);
      expect(a.state).toEqual(b.state);
      if (!spec) {
        const c = await trace(new CpuBackend(m), m, input);
        a.out.forEach((l, i) => expect(Math.abs(l - c.out[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(c.out[i]))));
      }
    });

// maps whose planes are not a multiple of 4 elements (3×3, 1×1): kernels with vec4 bindings cannot address a view
// there, so those values keep their copies; everything else is placed and the bits stay the same
for (const [file, input] of [['test/fixtures/densecat/cifar-tiny.ts', [3, 6, 6]], ['test/fixtures/densecat/imagenet-tiny.ts', [3, 12, 12]]] as const)
  test(`${file} at ${input.join('×')} fp32: odd map sizes, the same bits as copying`, async () => {
    const m = runPasses(frontEnd(file, BATCH, { input: [...input] }), { batch: BATCH, optimizer: sgd, log: () => {} });
    const gpu = await getGpu({ quiet: true });
    expect(moduleKernels(m, gpu.isCpuDriver ? 'cpu-driver' : 'gpu').views!.get('train')!.size).toBeGreaterThan(0);
    const a = await trace(new WebGpuBackend(gpu, m), m, [...input]), b = await trace(new WebGpuBackend(gpu, m, { concatViews: false }), m, [...input]);
    expect(a.out.every(Number.isFinite)).toBe(true);
    expect(a.out).toEqual(b.out);
    expect(a.state).toEqual(b.state);
  });

for (const c of TORCH.cases)
  test(`${c.file}: with the concat views, the loss and every parameter gradient equal PyTorch's`, async () => {
    const m = gradientModule(c), gpu = await getGpu({ quiet: true });
    const views = moduleKernels(m, gpu.isCpuDriver ? 'cpu-driver' : 'gpu').views!.get('train')!;
    expect([...views.values()].filter((v) => v.slice).length).toBeGreaterThan(0);
    expect([...views.values()].filter((v) => !v.slice).length).toBeGreaterThan(0);
    const b = new WebGpuBackend(gpu, m);
    await b.setState(caseState(m, c));
    const names = Object.keys(c.grads);
    const r = await b.run('train', caseFeeds(c), { seed: 0, step: 0 }, ['loss', ...names.map((n) => `grad:${n}`)]);
    await b.dispose();
    expect(Math.abs(r.loss[0] - c.loss)).toBeLessThan(1e-4 * c.loss);
    // max-norm relative to the model's largest gradient (as test/unit/seq-grads.test.ts): the stem BN's γ gradient
    // is a sum of products that nearly cancel, ~1e-4 of its own size in f32 on any backend (CPU f64: 2e-13)
    const scale = Math.max(...Object.values(c.grads).flatMap((v) => v.map(Math.abs)));
    const bad = names.map((n) => [n, relErr(r[`grad:${n}`], c.grads[n], 0) * Math.max(...c.grads[n].map(Math.abs)) / scale] as const).filter(([, e]) => !(e <= 1e-5));
    expect(bad).toEqual([]);
  });
