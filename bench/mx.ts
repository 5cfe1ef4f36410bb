/**
 * MX on the WebGPU adapter (`npm run build && node dist/bench/mx.js [--model lenet5|resnet20] [--batch N] [--rounds R] [--arms a,b]`): the training step with MX quantizers in W/A/E/G (MXFP8: E4M3 forward, E5M2 backward, the MX paper's
 * recipe; MXINT8, and MXINT under a CPT schedule: its width a uniform) and with `save=mx<e4m3>`, next to the SWALP-style bfp<8> step (bench/recipes.ts), each over the fp32
 * step, one step of each arm per round (this machine's speed drifts; a drift must hit every arm), in wall time and in the
 * process's CPU time (the CPU driver's threads included: steadier than wall time on a loaded machine). ResNet-20 runs on 1×28×28
 * (Fashion-MNIST's shape). Prints a JSON object and a table: ratios of the medians, lower quartiles and fastest steps; nothing is asserted
 * (speed targets live here, not in unit tests). The `mxfp8_acc_*` arms are the accuracy table's MXFP8 recipe with fp32
 * master weights (ACC) and MX momentum, with W and M held in f32 buffers (`_f32`) and packed (`_packed`,
 * passes/pack-state.ts): what packing costs in time.
 */
import { frontEnd } from '../dsl/frontend.js';
import { parsePolicy } from '../ir/precision/index.js';
import { Module } from '../ir/graph.js';
import { runPasses } from '../passes/pipeline.js';
import { initState } from '../runtime/train/init.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { tunedWebGpuBackend } from '../runtime/cli/backends.js';
import { Flags } from './common.js';
import { RECIPES, scheduleFor } from './recipes.js';

const flags = new Flags();
const model = flags.str('--model') ?? 'lenet5';
if (model !== 'lenet5' && model !== 'resnet20') throw new Error(`--model must be lenet5 or resnet20, got '${model}'`);
const BATCH = flags.int('--batch', model === 'lenet5' ? 64 : 32);
const rounds = flags.int('--rounds', model === 'lenet5' ? 40 : 6);
const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const MXFP8_ACC = 'W=mx<e4m3> A=mx<e4m3> E=mx<e5m2> G=mx<e5m2> M=mx<e5m2> ACC=f32';
const ARMS: [string, string | undefined, boolean?][] = [
  ['fp32', undefined],
  ['bfp8_swalp', RECIPES.swalp_bfp8.spec],
  ['mxfp8_roles', 'W=mx<e4m3> A=mx<e4m3> E=mx<e5m2>:stochastic G=mx<e5m2>:stochastic'],
  ['mxint8_roles', 'W=mx<int8> A=mx<int8> E=mx<int8>:stochastic G=mx<int8>:stochastic'],
  // CPT over MXINT: the same roles with the element width a step-uniform value (README "CPT over MX")
  ['mxint_cpt', 'W=mx<int8> A=mx<int8> E=mx<int8>:stochastic G=mx<int8>:stochastic ; schedule fwd=cyclic(3,8,periods=4) bwd=const(8)'],
  ['save_mx_e4m3', 'save=mx<e4m3>'],
  ['mxfp8_acc_f32', MXFP8_ACC, false],
  ['mxfp8_acc_packed', MXFP8_ACC, true],
];
const only = flags.str('--arms')?.split(',');
const input = model === 'lenet5' ? undefined : { input: [1, 28, 28] };
const compile = (spec?: string, packState?: boolean): Module =>
  runPasses(frontEnd(`models/${model}.ts`, BATCH, input), { batch: BATCH, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, packState, log: () => {} });

const gpu = await getGpu({ quiet: true });
const feeds = {
  x: Float32Array.from({ length: BATCH * 28 * 28 }, (_, i) => (Math.sin(i * 0.7) + 1) / 2),
  y: Int32Array.from({ length: BATCH }, (_, i) => i % 10), lr: new Float32Array([0.05]),
};
const arms = [];
for (const [name, spec, pack] of ARMS) {
  if (only && name !== 'fp32' && !only.includes(name)) continue; // --arms a,b: those (and fp32, the baseline)
  const m = compile(spec, pack), b = await tunedWebGpuBackend(gpu, m);
  await b.setState(initState(m, 0));
  await b.run('train', feeds, { seed: 1, step: 0 }, ['loss']); // the driver compiles pipelines at first use
  arms.push({ name, b, times: [] as number[], cpu: [] as number[], kernels: b.kernels('train').length, bits: scheduleFor(spec, rounds) });
}
let step = 1;
for (let round = 0; round < rounds; round++)
  for (const a of arms) {
      const bits = a.bits?.(round);
      const t0 = performance.now(), c0 = process.cpuUsage();
      await a.b.run('train', feeds, { seed: 1, step: step++, ...(bits ? { bits } : {}) }, ['loss']);
      a.times.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      a.cpu.push((c.user + c.system) / 1000);
  }
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)];
const fp32 = arms[0];
const result = Object.fromEntries(arms.map((a) => [a.name, {
  step_ms: q(a.times, 0.5), over_fp32: q(a.times, 0.5) / q(fp32.times, 0.5), over_fp32_lower_quartile: q(a.times, 0.25) / q(fp32.times, 0.25), over_fp32_fastest: q(a.times, 0) / q(fp32.times, 0),
  cpu_ms: q(a.cpu, 0.5), cpu_over_fp32: q(a.cpu, 0.5) / q(fp32.cpu, 0.5), kernels: a.kernels,
}]));
console.log(JSON.stringify({ adapter: gpu.adapterDescription, model, batch: BATCH, steps_per_arm: rounds, ...result }, null, 1));
for (const a of arms) {
  const r = result[a.name];
  console.log(`${a.name.padEnd(17)} ${r.step_ms.toFixed(1).padStart(8)} ms/step  ×${r.over_fp32.toFixed(2)} of fp32 (lower quartiles ×${r.over_fp32_lower_quartile.toFixed(2)}, fastest ×${r.over_fp32_fastest.toFixed(2)}); CPU time ${r.cpu_ms.toFixed(1)} ms ×${r.cpu_over_fp32.toFixed(2)}  ${a.kernels} kernels`);
}
for (const a of arms) await a.b.dispose();
await shutdownGpu();
