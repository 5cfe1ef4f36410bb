/**
 * `npm run build && node dist/bench/densecat.js [--model densenet121] [--batch 2] [--input 3x16x16] [--rounds 3]`:
 * a DenseNet's training step on the WebGPU adapter with every concatenation copying and with lpc's concat views
 * (passes/channel-views.ts: each dense block's maps in one buffer, the error splits read in place, the errors summed
 * in place), alternating the two in one process (one warm-up step each, then `--rounds` rounds of copies, views),
 * with the storage bytes each executor allocated. Median step times and their ratio; the machine's load moves both.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { initState } from '../runtime/train/init.js';
import { WebGpuBackend } from '../runtime/webgpu/executor.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { Flags } from './common.js';

const f = new Flags();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const name = f.str('--model') ?? 'densenet121', batch = f.int('--batch', 2), rounds = f.int('--rounds', 3);
const input = (f.str('--input') ?? '3x16x16').split('x').map(Number);
const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const m = runPasses(frontEnd(path.join(root, 'models', `${name}.ts`), batch, { input }), { batch, optimizer: sgd, log: () => {} });
const gpu = await getGpu({ quiet: true });
const size = batch * input.reduce((a, b) => a * b, 1);
const feeds = { x: Float32Array.from({ length: size }, (_, i) => ((i * 7919) % 1751) / 1000 - 0.875), y: Int32Array.from({ length: batch }, (_, i) => i % 10), lr: new Float32Array([0.05]) };

const backends = { copies: new WebGpuBackend(gpu, m, { concatViews: false }), views: new WebGpuBackend(gpu, m) };
const times: Record<string, number[]> = { copies: [], views: [] };
const step = async (k: keyof typeof backends, s: number) => {
  const t0 = performance.now();
  await backends[k].run('train', feeds, { seed: 1, step: s }, ['loss']);
  return performance.now() - t0;
};
for (const k of ['copies', 'views'] as const) { await backends[k].setState(initState(m, 0)); await step(k, 0); }
for (let r = 0; r < rounds; r++) for (const k of ['copies', 'views'] as const) times[k].push(await step(k, r + 1));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const out = {
  model: name, batch, input: input.join('x'), adapter: gpu.adapterDescription, rounds,
  copies_ms: times.copies.map((t) => +t.toFixed(1)), views_ms: times.views.map((t) => +t.toFixed(1)),
  median_copies_ms: +median(times.copies).toFixed(1), median_views_ms: +median(times.views).toFixed(1),
  views_over_copies: +(median(times.views) / median(times.copies)).toFixed(3),
  storage_bytes_copies: backends.copies.storageBytes, storage_bytes_views: backends.views.storageBytes,
};
for (const b of Object.values(backends)) await b.dispose();
await shutdownGpu();
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
