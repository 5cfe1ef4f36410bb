/**
 * PEPPP's training step on WebGPU (Dawn) against the real QPyTorch + PyTorch (test/fixtures/golden/peppp_step.json):
 * explicit quantizer sites with named classes, loss scaling and OptimLP's four quantizers fused into their kernels;
 * every parameter, accumulator and momentum buffer after both steps bit for bit as the golden (and so as the CPU
 * interpreter, test/unit/peppp-step.test.ts), the loss within f32 summation noise.
 */
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { Gpu, getGpu } from '../../runtime/webgpu/device.js';
import { G, compileNet, expectStateAfter, feeds, initialState } from '../unit/peppp-golden.js';
import { fromHex, relErr } from '../unit/helpers.js';

let gpu: Gpu;
beforeAll(async () => { gpu = await getGpu({ quiet: true }); });

test('peppp_step.json on WebGPU: two fused OptimLP steps bit for bit', async () => {
  const m = compileNet(true);
  const web = new WebGpuBackend(gpu, m);
  await web.setState(initialState(m));
  for (let k = 0; k < 2; k++) {
    const out = await web.run('train', feeds(), { seed: 0, step: k }, ['loss']);
    expect(relErr(out.loss, fromHex(G.steps[k].loss))).toBeLessThan(1e-6);
    expectStateAfter(await web.getState(), k);
  }
  await web.dispose();
}, 120000);
