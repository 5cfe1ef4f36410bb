/**
 * MX on the WebGPU adapter (`npm run build && node dist/bench/mx.js [--steps N]`): the LeNet-5 (batch 64) training
 * step with MX quantizers in W/A/E/G (fused into their producers) and with `save=mx<e4m3>`, each over the fp32 step,
 * in alternating rounds (this machine's speed drifts; a drift must hit every arm). Prints a JSON object and a table;
 * nothing is asserted (speed targets live here, not in unit tests).
 */
import { frontEnd } from '../dsl/frontend.js';
import { parsePolicy } from '../ir/precision/index.js';
import { Module } from '../ir/graph.js';
import { runPasses } from '../passes/pipeline.js';
import { initState } from '../runtime/train/init.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { tunedWebGpuBackend } from '../runtime/cli/backends.js';
import { Flags } from './common.js';

const flags = new Flags();
const steps = flags.int('--steps', 8);
const BATCH = 64;
const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const ARMS: [string, string | undefined][] = [
  ['fp32', undefined],
  ['mx_roles', 'W=mx<e4m3> A=mx<e4m3> E=mx<e5m2>:stochastic G=mx<e5m2>:stochastic'],
  ['mx_int8_roles', 'W=mx<int8> A=mx<int8> E=mx<int8>:stochastic G=mx<int8>:stochastic'],
  ['save_mx_e4m3', 'save=mx<e4m3>'],
];
const compile = (spec?: string): Module =>
  runPasses(frontEnd('models/lenet5.ts', BATCH), { batch: BATCH, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });

const gpu = await getGpu({ quiet: true });
const feeds = {
  x: Float32Array.from({ length: BATCH * 28 * 28 }, (_, i) => (Math.sin(i * 0.7) + 1) / 2),
  y: Int32Array.from({ length: BATCH }, (_, i) => i % 10), lr: new Float32Array([0.05]),
};
const arms = await Promise.all(ARMS.map(async ([name, spec]) => {
  const m = compile(spec), b = await tunedWebGpuBackend(gpu, m);
  await b.setState(initState(m, 0));
  await b.run('train', feeds, { seed: 1, step: 0 }, ['loss']); // the driver compiles pipelines at first use
  return { name, b, times: [] as number[], kernels: b.kernels('train').length };
}));
let step = 1;
for (let round = 0; round < 6; round++)
  for (const a of arms)
    for (let i = 0; i < Math.ceil(steps / 2); i++) {
      const t0 = performance.now();
      await a.b.run('train', feeds, { seed: 1, step: step++ }, ['loss']);
      a.times.push(performance.now() - t0);
    }
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const fp32 = median(arms[0].times);
const result = Object.fromEntries(arms.map((a) => [a.name, { step_ms: median(a.times), over_fp32: median(a.times) / fp32, kernels: a.kernels }]));
console.log(JSON.stringify({ adapter: gpu.adapterDescription, batch: BATCH, ...result }, null, 1));
for (const a of arms) console.log(`${a.name.padEnd(14)} ${median(a.times).toFixed(1).padStart(8)} ms/step  ×${(median(a.times) / fp32).toFixed(2)} of fp32  (${a.kernels} kernels)`);
for (const a of arms) await a.b.dispose();
await shutdownGpu();
