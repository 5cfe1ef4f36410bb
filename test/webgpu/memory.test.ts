/**
 * The executor's buffers follow the memory plan: the storage bytes it creates equal the planner's figure, and
 * LeNet-5 trains (and evaluates, interleaved, so the graphs' shared slots are exercised) bit for bit as with one
 * buffer per value, in fp32 and with every bfp quantizer fused (in-place epilogues, zeroed scratch).
 */
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Module } from '../../ir/graph.js';
import { initState } from '../../runtime/train/init.js';
import { planModule } from '../../runtime/memory.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { getGpu, shutdownGpu } from '../../runtime/webgpu/device.js';
import { rand } from '../unit/helpers.js';

afterAll(async () => { await shutdownGpu(); });

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const BFP = 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic';

/** Losses (train and eval), correct counts and the final state's bits over a few steps. */
async function trace(b: WebGpuBackend, m: Module, batch: number): Promise<{ out: number[]; state: number[] }> {
  await b.setState(initState(m, 0));
  const r = rand(3);
  const out: number[] = [];
  for (let s = 0; s < 4; s++) {
    const x = new Float32Array(batch * 784).map(() => r() * 2 - 1);
    const y = new Int32Array(batch).map(() => Math.floor(r() * 10));
    const t = await b.run('train', { x, y, lr: new Float32Array([sgd.lr]) }, { seed: 5, step: s }, ['loss', 'correct']);
    const e = await b.run('eval', { x, y }, { seed: 5, step: s }, ['loss', 'correct']);
    out.push(t.loss[0], t.correct[0], e.loss[0], e.correct[0]);
  }
  const state: number[] = [];
  for (const v of (await b.getState()).values()) state.push(...new Uint32Array(v.buffer, v.byteOffset, v.length));
  await b.dispose();
  return { out, state };
}

for (const [label, spec] of [['fp32', undefined], ['bfp8', BFP]] as const) {
  test(`LeNet-5 ${label}: plan-sized buffers, the same bits as one buffer per value`, async () => {
    const batch = 16;
    const m = runPasses(frontEnd('models/lenet5.ts', batch), { batch, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
    const gpu = await getGpu({ quiet: true });
    const pooled = new WebGpuBackend(gpu, m), perNode = new WebGpuBackend(gpu, m, { memory: 'per-node' });
    const plan = planModule(m, gpu.isCpuDriver ? 'cpu-driver' : 'gpu');
    expect(pooled.storageBytes).toBe(plan.allocated_bytes);
    expect(pooled.memoryPlan!.allocated_bytes).toBe(plan.allocated_bytes);
    expect(pooled.storageBytes).toBeLessThan(perNode.storageBytes * 0.6);
    const a = await trace(pooled, m, batch), b = await trace(perNode, m, batch);
    expect(a.out.every(Number.isFinite)).toBe(true);
    expect(a.out).toEqual(b.out);
    expect(a.state).toEqual(b.state);
  });
}
