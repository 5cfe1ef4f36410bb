/**
 * `npm run bench [-- --json FILE] [-- --steps N]`: side by side in one process — compile time of LeNet-5, and the
 * training-step time (→ seconds per MNIST epoch of 125 steps at batch 64) on WebGPU and on the CPU interpreter.
 */
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { Module } from '../ir/graph.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { train } from '../runtime/train/train.js';
import { Progress } from '../runtime/train/progress.js';
import { CpuBackend } from '../runtime/cpu/backend.js';
import { WebGpuBackend } from '../runtime/webgpu/executor.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { Backend } from '../runtime/backend.js';

const args = process.argv.slice(2);
const argOf = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const steps = Number(argOf('--steps') ?? 30);
const BATCH = 64, STEPS_PER_EPOCH = 8000 / BATCH;
const optimizer = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const quiet = new Progress({ write: () => true, isTTY: false } as unknown as NodeJS.WriteStream, false);

function compile(): { m: Module; seconds: number } {
  const t0 = performance.now();
  const m = runPasses(frontEnd('models/lenet5.ts', BATCH), { batch: BATCH, optimizer });
  return { m, seconds: (performance.now() - t0) / 1000 };
}

/** Median step time over `n` steps after 3 warm-up steps (first-use JIT excluded). */
async function stepMs(b: Backend, m: Module, n: number): Promise<number> {
  const data = loadDataset('mnist', { sampleShape: [1, 28, 28], seed: 0 });
  await b.setState(initState(m, 0));
  const times: number[] = [];
  let last = performance.now();
  await train(b, { train: data.train, test: { ...data.test, n: 0, images: new Float32Array(0), labels: new Int32Array(0) } }, {
    epochs: 1, batch: BATCH, seed: 0, maxSteps: n + 3, lr: () => optimizer.lr, progress: quiet,
    onStep: (s) => { const t = performance.now(); if (s >= 3) times.push(t - last); last = t; },
  });
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const compiles = [compile(), compile(), compile()];
const { m } = compiles[0];
const compileSeconds = Math.min(...compiles.map((c) => c.seconds));
const gpu = await getGpu({ quiet: true });
const gpuMs = await stepMs(new WebGpuBackend(gpu, m), m, steps);
const cpuMs = await stepMs(new CpuBackend(m), m, Math.max(5, Math.floor(steps / 3)));
const result = {
  adapter: gpu.adapterDescription,
  compile_seconds_lenet5: +compileSeconds.toFixed(3),
  step_ms_lenet5_b64_webgpu: +gpuMs.toFixed(2),
  step_ms_lenet5_b64_cpu: +cpuMs.toFixed(2),
  epoch_seconds_mnist_webgpu: +((gpuMs * STEPS_PER_EPOCH) / 1000).toFixed(2),
  epoch_seconds_mnist_cpu: +((cpuMs * STEPS_PER_EPOCH) / 1000).toFixed(2),
  webgpu_over_cpu_speedup: +(cpuMs / gpuMs).toFixed(2),
};
console.log(`adapter: ${result.adapter}`);
console.log(`webgpu / cpu-interpreter speedup (LeNet-5 step, batch 64): ${result.webgpu_over_cpu_speedup}×`);
console.log(`compile lenet5:            ${result.compile_seconds_lenet5} s`);
console.log(`step (webgpu):             ${result.step_ms_lenet5_b64_webgpu} ms  → ${result.epoch_seconds_mnist_webgpu} s per MNIST epoch (125 steps)`);
console.log(`step (cpu interpreter):    ${result.step_ms_lenet5_b64_cpu} ms  → ${result.epoch_seconds_mnist_cpu} s per MNIST epoch`);
const jsonPath = argOf('--json');
if (jsonPath) fs.writeFileSync(jsonPath, JSON.stringify(result, null, 1) + '\n');
await shutdownGpu();
