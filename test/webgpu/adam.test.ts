/**
 * Adam and AdamW on WebGPU (Dawn) against the CPU interpreter with low-precision optimizer state
 * (M=bf16 V=float<8,10>): every state tensor — parameters, exp_avg, exp_avg_sq, acc — equal bit for bit after each
 * of six steps, with the fused optimizer kernels (sqrt and division included) and a changing lr. G=bf16 puts the
 * gradients on a grid: f32 gradients differ between the backends by an ulp (the contract for fp32 math is 1e-5),
 * which would reach the moments; from the quantized gradient on, the optimizer's arithmetic is bit for bit.
 */
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { Gpu, getGpu } from '../../runtime/webgpu/device.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState } from '../../runtime/train/init.js';
import { AdamOptions } from '../../passes/optimizer.js';
import { compileTiny, tinyBatch } from '../unit/adam-tiny.js';

let gpu: Gpu;
beforeAll(async () => { gpu = await getGpu({ quiet: true }); });

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const cases: [AdamOptions, string][] = [
  [{ kind: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, wd: 0.05 }, 'G=bf16 M=bf16 V=float<8,10>'],
  [{ kind: 'adamw', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, wd: 0.1 }, 'G=bf16 M=bf16 V=float<8,10>:stochastic W=bf16 ACC=float<8,20>'],
];

for (const [o, spec] of cases) {
  test(`${o.kind} with ${spec}: WebGPU state equals the CPU interpreter's bit for bit`, async () => {
    const m = compileTiny(o, spec);
    const web = new WebGpuBackend(gpu, m), cpu = new CpuBackend(m);
    const st = initState(m, 5);
    await web.setState(st);
    await cpu.setState(st);
    for (let k = 0; k < 6; k++) {
      const { x, y } = tinyBatch(k);
      const feeds = { x, y, lr: Float32Array.of(o.lr * (1 - k / 10)) };
      await web.run('train', feeds, { seed: 1, step: k }, ['loss']);
      await cpu.run('train', feeds, { seed: 1, step: k }, ['loss']);
      const [w, c] = [await web.getState(), await cpu.getState()];
      for (const [name, v] of c) expect([k, name, bits(w.get(name)!)]).toEqual([k, name, bits(v)]);
    }
    await web.dispose();
  }, 120000);
}
