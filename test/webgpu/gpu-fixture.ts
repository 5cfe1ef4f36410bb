/** What the WebGPU suites share: the seed of their random inputs and the device they run on. */
import { getGpu, shutdownGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import type { Module } from '../../ir/graph.js';
import { initState } from '../../runtime/train/init.js';
import type { Backend } from '../../runtime/backend.js';

/** The seed of a randomised WebGPU test: fixed in `npm test` so a failure can be rerun; `LPC_TEST_SEED=S` varies it
 *  (each suite prints its seed in its title). */
export const TEST_SEED = process.env.LPC_TEST_SEED ? Number(process.env.LPC_TEST_SEED) >>> 0 : 0x5eed1;

/** The shared device for a suite (opened before its tests, shut after), with a pipeline cache of its own. */
export function useGpu(): { readonly device: GPUDevice; readonly cache: PipelineCache; readonly isCpuDriver: boolean } {
  const s = {} as { device: GPUDevice; cache: PipelineCache; isCpuDriver: boolean };
  beforeAll(async () => {
    const gpu = await getGpu({ quiet: true });
    s.device = gpu.device;
    s.isCpuDriver = gpu.isCpuDriver;
    s.cache = new PipelineCache(gpu.device);
  });
  afterAll(async () => { await shutdownGpu(); });
  return s;
}

/**
 * Two LeNet-5 training steps (batch 4, a fixed input) on `web` and `cpu` from one initial state: the losses agree
 * within 1e-4 and the updated (quantized) state is bit-identical but for a rare flip (a conv's f32-vs-f64 ulp at a
 * rounding boundary, which then spreads through the next step). Disposes `web`.
 */
export async function expectLenetStepsLikeCpu(m: Module, web: Backend & { dispose(): Promise<void> }, cpu: Backend): Promise<void> {
  const init = initState(m, 3);
  await web.setState(init);
  await cpu.setState(init);
  const feeds = {
    x: Float32Array.from({ length: 4 * 28 * 28 }, (_, i) => (Math.sin(i * 0.7) + 1) / 2),
    y: Int32Array.from([3, 1, 4, 1]), lr: new Float32Array([0.05]),
  };
  try {
    for (let step = 0; step < 2; step++) {
      const a = await web.run('train', feeds, { seed: 7, step }, ['loss']);
      const b = await cpu.run('train', feeds, { seed: 7, step }, ['loss']);
      expect(Math.abs(a.loss[0] - b.loss[0])).toBeLessThan(1e-4);
    }
    const [ws, cs] = [await web.getState(), await cpu.getState()];
    let n = 0, same = 0;
    for (const [k, v] of cs) ws.get(k)!.forEach((x, i) => { n++; if (x === v[i]) same++; });
    expect(same / n).toBeGreaterThan(0.99);
  } finally {
    await web.dispose();
  }
}
