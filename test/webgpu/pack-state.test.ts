/**
 * Packed MX state on the executor (passes/pack-state.ts): LeNet-5 with MX weights (with ACC) and momentum held as MX
 * words trains on WebGPU like the CPU interpreter runs the same graph (stochastic rounding included: same graph, same
 * random keys), and bit for bit like the WebGPU build holding f32 buffers (nearest rounding: the decodes shift node
 * ids, which key stochastic rounding). The state buffers the executor allocates are the packed sizes.
 */
import { Module } from '../../ir/graph.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { quantize } from '../../ir/quant/quantize.js';
import { frontEnd } from '../../dsl/frontend.js';
import { CompileOptions, runPasses } from '../../passes/pipeline.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState, stateDecls } from '../../runtime/train/init.js';
import { getGpu } from '../../runtime/webgpu/device.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { expectLenetStepsLikeCpu, useGpu } from './gpu-fixture.js';

useGpu();
const compile = (spec: string, o: Partial<CompileOptions> = {}): Module =>
  runPasses(frontEnd('models/lenet5.ts', 4), { batch: 4, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: parsePolicy(spec), log: () => {}, ...o });
const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

test('MXFP8 with packed W and M, and stochastic MXFP4: WebGPU trains like the CPU interpreter', async () => {
  const gpu = await getGpu({ quiet: true });
  for (const spec of ['W=mx<e4m3> A=mx<e4m3> E=mx<e5m2> G=mx<e5m2> M=mx<e5m2> ACC=f32 ; save=mx<e4m3>', 'W=mx<e2m1>:stochastic A=mx<e2m1> M=mx<int8>:stochastic ACC=f32']) {
    const m = compile(spec);
    expect(m.graphs[0].nodes.filter((n) => n.op === 'state' && n.attrs.packed).length).toBe(10); // 5 weights, 5 momenta
    await expectLenetStepsLikeCpu(m, new WebGpuBackend(gpu, m), new CpuBackend(m));
  }
}, 300000);

test('packed vs f32-holding on WebGPU: the same losses and state bits, with the packed state buffers', async () => {
  const gpu = await getGpu({ quiet: true });
  const spec = 'W=mx<e3m2> A=mx<e3m2> E=mx<e3m2> M=mx<e2m1> ACC=f32';
  const mp = compile(spec), mf = compile(spec, { packState: false });
  const init = initState(mp, 3), w = parsePolicy(spec).roles.W!;
  for (const d of stateDecls(mp)) if (d.kind === 'param') init.set(d.name, quantize(init.get(d.name)!, d.shape, w.fmt, 'nearest'));
  const p = new WebGpuBackend(gpu, mp), f = new WebGpuBackend(gpu, mf);
  try {
    const state = (b: WebGpuBackend, name: string) => b.memoryPlan!.state.find((s) => s.name === name)!.bytes;
    expect(state(p, 'linear0.weight')).toBe(120 * 400 * 6 / 8 + 120 * 13); // 6-bit codes, a scale byte per block (13 per row of 400)
    expect(state(f, 'linear0.weight')).toBe(120 * 400 * 4);
    expect(p.storageBytes).toBeLessThan(f.storageBytes);
    await p.setState(init);
    await f.setState(init);
    const feeds = { x: Float32Array.from({ length: 4 * 28 * 28 }, (_, i) => (Math.cos(i * 0.3) + 1) / 2), y: Int32Array.from([0, 7, 2, 9]), lr: new Float32Array([0.05]) };
    for (let step = 0; step < 2; step++) {
      const a = await p.run('train', feeds, { seed: 5, step }, ['loss']), b = await f.run('train', feeds, { seed: 5, step }, ['loss']);
      expect([step, a.loss[0]]).toEqual([step, b.loss[0]]);
    }
    const [sp, sf] = [await p.getState(), await f.getState()];
    for (const [k, v] of sf) expect([k, bits(sp.get(k)!)]).toEqual([k, bits(v)]);
  } finally {
    await p.dispose();
    await f.dispose();
  }
}, 300000);
