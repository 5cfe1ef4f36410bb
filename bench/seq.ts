/**
 * Sequence models' training step (issue 29): compile time and the median time of a training step of the zoo's
 * Transformer and LSTM language models on sotu:chars batches, on the WebGPU adapter (and the CPU interpreter with
 * --cpu), as tokens per second. Figures, not assertions.
 *
 *   node dist/bench/seq.js [--models transformer-lm:16:64,lstm-lm:16:32] [--steps N] [--cpu] [--json FILE]
 *
 * A model entry is name:batch:T (T = --input, the sequence length).
 */
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { loadDataset, epochBatches } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { CpuBackend } from '../runtime/cpu/backend.js';
import { WebGpuBackend } from '../runtime/webgpu/executor.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { Backend } from '../runtime/backend.js';
import { Flags } from './common.js';

const flags = new Flags();
const models = (flags.str('--models') ?? 'transformer-lm:16:64,lstm-lm:16:32').split(',').map((s) => {
  const [name, b, t] = s.split(':');
  return { name, batch: Number(b ?? 16), T: Number(t ?? 64) };
});
const steps = flags.int('--steps', 5), cpu = process.argv.includes('--cpu');
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const optimizer = { kind: 'adam' as const, lr: 3e-4, betas: [0.9, 0.999] as [number, number], eps: 1e-8, wd: 0 };

const gpu = await getGpu({ quiet: true });
log(`adapter ${gpu.adapterDescription}`);
const rows: Record<string, unknown>[] = [];
for (const { name, batch, T } of models) {
  const t0 = performance.now();
  const m = runPasses(frontEnd(`models/${name}.ts`, batch, { input: [T] }), { batch, optimizer, log: () => {} });
  const compileS = (performance.now() - t0) / 1000;
  const data = loadDataset('sotu:chars', { sampleShape: [T] });
  const batches = epochBatches(data.train, batch, 0, 1);
  const backends: [string, Backend][] = [['webgpu', new WebGpuBackend(gpu, m)]];
  if (cpu) backends.push(['cpu', new CpuBackend(m)]);
  for (const [kind, b] of backends) {
    await b.setState(initState(m, 0));
    const times: number[] = [];
    for (let s = 0; s <= steps; s++) {  // step 0 compiles the pipelines: not timed
      const { x, y } = batches.get(s);
      const t = performance.now();
      await b.run('train', { x, y, lr: Float32Array.of(optimizer.lr) }, { seed: 0, step: s }, ['loss']);
      if (s > 0) times.push(performance.now() - t);
    }
    await b.dispose();
    const med = times.sort((a, c) => a - c)[Math.floor(times.length / 2)];
    const row = { model: name, batch, T, backend: kind, compile_s: +compileS.toFixed(2), step_ms: +med.toFixed(1), tokens_per_s: Math.round((batch * T) / (med / 1000)) };
    rows.push(row);
    log(JSON.stringify(row));
  }
}
console.log('| model | batch × T | backend | compile s | step ms (median) | tokens/s |\n|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.model} | ${r.batch} × ${r.T} | ${r.backend} | ${r.compile_s} | ${r.step_ms} | ${r.tokens_per_s} |`);
const out = flags.str('--json');
if (out) fs.writeFileSync(out, JSON.stringify({ adapter: gpu.adapterDescription, rows }, null, 2));
await shutdownGpu();
