/**
 * `node dist/bench/profile.js MODEL.ts [--batch N] [--input CxHxW] [--precision SPEC] [--no-fuse] [--graph train] [--by-node OP,…] [--by-kernel]`:
 * where a step's time goes, by op (`--by-node`: the nodes of those ops one row each, with their kernels;
 * `--by-kernel`: by kernel name, each kernel timed alone). For each op,
 * all of its nodes' kernels run in one pass, once and 1 + R times (R so that a measurement spans ~40 ms); the
 * difference over R is its time per step (uploads, submit and readback cancel; the median of `--reps`). The kernels
 * read whatever the buffers hold after the fixed feeds below (kernels that round in place keep rounding rounded values,
 * which takes the same paths). A tool for choosing what to fuse or tune next.
 */
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { parsePolicy } from '../ir/precision/index.js';
import { numel } from '../ir/types.js';
import { DEFAULT_SGD } from './recipes.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { PipelineCache } from '../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../runtime/webgpu/run-kernels.js';
import { tuneModule } from '../runtime/webgpu/tune.js';
import { kernelsForNode } from '../codegen/kernels/index.js';

const HELP = `usage: node dist/bench/profile.js MODEL.ts [--batch N] [--input CxHxW] [--precision SPEC] [--no-fuse] [--graph NAME] [--reps R] [--by-node OP,…] [--by-kernel]
Time per training step by op on the WebGPU adapter (each op's kernels timed in isolation).`;
const args = process.argv.slice(2);
if (args.includes('--help') || args.length === 0) { console.log(HELP); process.exit(args.length ? 0 : 2); }
const argOf = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const file = args[0];
const batch = Number(argOf('--batch') ?? 32);
const spec = argOf('--precision');
const graphName = argOf('--graph') ?? 'train';
const reps = Number(argOf('--reps') ?? 3);
const byNode = new Set((argOf('--by-node') ?? '').split(',').filter(Boolean));
const byKernel = args.includes('--by-kernel');

const inputArg = argOf('--input');
const input = inputArg?.split('x').map(Number);
if (input && !input.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`--input must be like 3x32x32, got '${inputArg}'`);
const m = runPasses(frontEnd(file, batch, input ? { input } : {}), { batch, optimizer: DEFAULT_SGD, precision: spec ? parsePolicy(spec) : undefined, fuse: !args.includes('--no-fuse') });
const g = m.graphs.find((x) => x.name === graphName);
if (!g) throw new Error(`no graph '${graphName}'`);
const gpu = await getGpu({ quiet: true });
const variant = gpu.isCpuDriver ? 'cpu-driver' as const : 'gpu' as const;
const pipelines = new PipelineCache(gpu.device);
// The tilings `lpc run` would use (the tune cache, measured where missing; LPC_TUNE=off: the defaults).
const tiles = process.env.LPC_TUNE === 'off' ? undefined : (await tuneModule(gpu, m)).picker;
// Rows: the nodes timed together, and (--by-kernel) the one kernel name of theirs that is dispatched.
const byOp = new Map<string, { ids: number[]; kernel?: string }>();
for (const n of g.nodes) {
  const ks = kernelsForNode(g, n.id, { variant, tiles });
  const keys = byKernel ? [...new Set(ks.map((k) => k.name))]
    : ks.length ? [byNode.has(n.op) ? `${n.op} %${n.id} → [${n.type.shape.join(',')}]: ${ks.map((k) => k.name).join(', ')}` : n.op] : [];
  for (const key of keys) {
    const row = byOp.get(key) ?? { ids: [], kernel: byKernel ? key : undefined };
    row.ids.push(n.id);
    byOp.set(key, row);
  }
}
// Every value is fed a fixed pattern of its size, so any op can run alone: f32 values in [0.25, 2] (positive normal
// numbers: variances stay valid, and bfp rounding and block tracking take the paths real data takes; all zeros would
// take the zero-block path and never raise a tracked maximum), i32 labels 0 (in range).
const feeds = new Map<number, HostArray>();
for (const n of g.nodes) {
  if (n.op === 'reshape') continue;
  const len = numel(n.type.shape);
  feeds.set(n.id, n.type.dtype === 'i32' ? new Int32Array(len) : Float32Array.from({ length: len }, (_, i) => 0.25 + ((i * 7919) % 1751) / 1000));
}

async function time(ids: number[], times: number, kernel?: string): Promise<number> {
  const run = Array.from({ length: times }, () => ids).flat();
  const only = kernel === undefined ? undefined : (k: { name: string }) => k.name === kernel;
  const t0 = performance.now();
  await runKernels(gpu.device, g!, { feeds, run, read: [], pipelines, variant, tiles, only });
  return performance.now() - t0;
}

const rows: { op: string; nodes: number; dispatches: number; ms: number }[] = [];
for (const [op, { ids, kernel }] of byOp) {
  const once = await time(ids, 1, kernel); // also pipeline creation and JIT
  // Repeat small ops until a measurement spans ~40 ms, so submit/readback noise (a few ms) averages out.
  const R = Math.min(200, Math.max(2, Math.ceil(40 / Math.max(once, 0.05))));
  const est: number[] = [];
  for (let r = 0; r < reps; r++) est.push(((await time(ids, 1 + R, kernel)) - (await time(ids, 1, kernel))) / R);
  est.sort((a, b) => a - b);
  const dispatches = ids.reduce((s, id) => s + kernelsForNode(g, id, { variant, tiles }).filter((k) => kernel === undefined || k.name === kernel).length, 0);
  rows.push({ op, nodes: ids.length, dispatches, ms: Math.max(0, est[est.length >> 1]) });
}
rows.sort((a, b) => b.ms - a.ms);
const total = rows.reduce((s, r) => s + r.ms, 0);
console.log(`${m.name} ${graphName} batch ${batch}${spec ? ` precision ${spec}` : ''}${args.includes('--no-fuse') ? ' (no fuse)' : ''} on ${gpu.adapterDescription}`);
console.log('| op | nodes | dispatches | ms/step | share |\n|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.op} | ${r.nodes} | ${r.dispatches} | ${r.ms.toFixed(2)} | ${((100 * r.ms) / total).toFixed(1)}% |`);
console.log(`| total | ${rows.reduce((s, r) => s + r.nodes, 0)} | ${rows.reduce((s, r) => s + r.dispatches, 0)} | ${total.toFixed(2)} | |`);
await shutdownGpu();
