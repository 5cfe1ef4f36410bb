/**
 * The first run of a model on a fresh adapter (issue: first-run tuning): how long `lpc run` takes to its first
 * training step with an empty tune cache and the default tuning budget, and how the budget's picks compare with a
 * full tune's in step time.
 *
 *   node dist/bench/first-run.js [--models resnet18:16,resnet20:32] [--budget S] [--steps N] [--rounds R] [--first-only] [--json FILE]
 *
 * Per model, with a fresh cache folder: (1) what lpc run does after loading the artifact — the backend with the
 * budget's tuning, state upload, the first step (pipeline JIT included) — timed from start to the first step's end;
 * (2) a full tune of what the budget left (the same cache, as a later `lpc tune` would); (3) R alternating rounds of N
 * steps on the budget's backend and the full tune's, step times compared by median and lower quartile (`--first-only`
 * stops after (1)).
 * LPC_SHIPPED_TILES=off|<table.json> runs without lpc's shipped tilings or with another table (bench/ship-tiles.ts
 * --skip writes one that has not seen the benchmarked models).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { Module } from '../ir/graph.js';
import { initState } from '../runtime/train/init.js';
import { Progress } from '../runtime/train/progress.js';
import { defaultTuneBudget, tunedWebGpuBackend } from '../runtime/cli/backends.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { tuneModule, TuneRow } from '../runtime/webgpu/tune.js';
import { Backend } from '../runtime/backend.js';
import { DEFAULT_SGD } from './recipes.js';
import { Flags } from './common.js';
import { attrsOf } from '../ir/op-registry.js';

const flags = new Flags();
const models = (flags.str('--models') ?? 'resnet20:32,resnet18:16').split(',').map((s) => { const [name, b] = s.split(':'); return { name, batch: Number(b ?? 16) }; });
const steps = flags.int('--steps', 2), rounds = flags.int('--rounds', 3);
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

const gpu = await getGpu({ quiet: true });
const budget = flags.str('--budget') ? Number(flags.str('--budget')) : defaultTuneBudget(gpu.isCpuDriver);
log(`adapter ${gpu.adapterDescription}; tuning budget ${budget} s; shipped tilings: ${process.env.LPC_SHIPPED_TILES ?? 'lpc\'s own'}`);

/** One training step's feeds: a fixed pseudo-random batch of the model's input shape. */
function feeds(m: Module): Record<string, Float32Array | Int32Array> {
  const g = m.graphs.find((x) => x.name === 'train')!;
  const out: Record<string, Float32Array | Int32Array> = {};
  for (const n of g.nodes.filter((x) => x.op === 'input')) {
    const { shape, name, dtype } = attrsOf(n, 'input');
    const size = shape.reduce((a, b) => a * b, 1);
    out[name] = dtype === 'i32' ? Int32Array.from({ length: size }, (_, i) => i % 10) : Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37));
  }
  return out;
}

/** One step's time; the feeds are made once per model, outside the timing. */
const feedCache = new Map<Module, Record<string, Float32Array | Int32Array>>();
async function step(b: Backend, m: Module, k: number): Promise<number> {
  if (!feedCache.has(m)) feedCache.set(m, feeds(m));
  const batch = feedCache.get(m)!;
  const t0 = performance.now();
  await b.run('train', batch, { seed: 0, step: k }, ['loss']);
  return performance.now() - t0;
}

/**
 * The step's tiled-kernel time with the budget's picks and with the full tune's, both priced by the full tune's
 * measurements of every candidate (robust to a busy machine: one table prices both), and the classes that differ.
 */
function estimate(quick: TuneRow[], full: TuneRow[]): { quick: number; full: number; differ: string[] } {
  let a = 0, b = 0;
  const differ = new Set<string>();
  full.forEach((r, i) => {
    const ms = r.ms;
    if (!ms || ms[quick[i].tile] === undefined) return;
    a += ms[quick[i].tile]; b += ms[r.tile];
    if (quick[i].tile !== r.tile) differ.add(`${r.cls}: ${quick[i].tile} (${quick[i].source}) ${ms[quick[i].tile].toFixed(2)} ms vs ${r.tile} ${ms[r.tile].toFixed(2)} ms`);
  });
  return { quick: a, full: b, differ: [...differ] };
}

const classes = (rows: TuneRow[], source: string) => new Set(rows.filter((r) => r.source === source).map((r) => r.cls)).size;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)];
const results: Record<string, unknown>[] = [];
for (const { name, batch } of models) {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-first-run-'));
  process.env.LPC_CACHE_DIR = cache;
  const m = runPasses(frontEnd(`models/${name}.ts`, batch), { batch, optimizer: DEFAULT_SGD, log: () => {} });
  const state = initState(m, 0);
  const t0 = performance.now();
  const quick = await tunedWebGpuBackend(gpu, m, { budget, progress: new Progress() });
  const tuned = performance.now();
  await quick.setState(state);
  await step(quick, m, 0);
  const first = performance.now();
  log(`${name} b${batch}: first step after ${((first - t0) / 1000).toFixed(1)} s (tuning ${((tuned - t0) / 1000).toFixed(1)} s, first step ${((first - tuned) / 1000).toFixed(1)} s)`);
  const picks = async () => (await tuneModule(gpu, m, { budgetMs: 0 })).rows; // what the cache (and borrowing) picks now
  const quickRows = await picks();
  if (flags.has('--first-only')) {
    const row = { model: name, batch, budget_s: budget, first_step_s: +((first - t0) / 1000).toFixed(1), tuning_s: +((tuned - t0) / 1000).toFixed(1),
      measured_in_budget: classes(quickRows, 'cache'), shipped: classes(quickRows, 'shipped'), cost_model: classes(quickRows, 'cost-model'), borrowed: classes(quickRows, 'similar') };
    log(JSON.stringify(row));
    results.push(row);
    await quick.dispose();
    fs.rmSync(cache, { recursive: true, force: true });
    continue;
  }
  const f0 = performance.now();
  const full = await tunedWebGpuBackend(gpu, m, { budget: 'full', progress: new Progress() });
  const fullTune = performance.now() - f0;
  const fullRows = await picks();
  const est = estimate(quickRows, fullRows);
  await full.setState(state);
  await step(full, m, 0); // JIT
  const q: number[] = [], f: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < steps; k++) q.push(await step(quick, m, 1 + k));
    for (let k = 0; k < steps; k++) f.push(await step(full, m, 1 + k));
  }
  const row = {
    model: name, batch, budget_s: budget,
    first_step_s: +((first - t0) / 1000).toFixed(1), tuning_s: +((tuned - t0) / 1000).toFixed(1), full_tune_rest_s: +(fullTune / 1000).toFixed(1),
    budget_step_ms: +quantile(q, 0.5).toFixed(0), full_step_ms: +quantile(f, 0.5).toFixed(0),
    ratio_median: +(quantile(q, 0.5) / quantile(f, 0.5)).toFixed(3), ratio_q1: +(quantile(q, 0.25) / quantile(f, 0.25)).toFixed(3),
    kernel_ms_budget: +est.quick.toFixed(1), kernel_ms_full: +est.full.toFixed(1), kernel_ratio: +(est.quick / est.full).toFixed(3),
    measured_in_budget: classes(quickRows, 'cache'), shipped: classes(quickRows, 'shipped'), cost_model: classes(quickRows, 'cost-model'), borrowed: classes(quickRows, 'similar'),
  };
  for (const d of est.differ) log(`  ${d}`);
  log(JSON.stringify(row));
  results.push(row);
  await quick.dispose(); await full.dispose();
  fs.rmSync(cache, { recursive: true, force: true });
}
console.log('| model | first step (s) | of which tuning (s) | shapes measured / shipped / cost model / borrowed | full tune of the rest (s) | step, budget picks (ms) | step, full tune (ms) | ratio (median / lower quartile) | tiled kernels priced by the full tune: budget / full (ms) |');
console.log('|---|---|---|---|---|---|---|---|---|');
const cell = (v: unknown) => (v === undefined ? '—' : String(v));
for (const r of results) {
  const full = r.full_step_ms === undefined ? '— | — | — | — | — |' : `${r.full_tune_rest_s} | ${r.budget_step_ms} | ${r.full_step_ms} | ${r.ratio_median} / ${r.ratio_q1} | ${r.kernel_ms_budget} / ${r.kernel_ms_full} = ${r.kernel_ratio} |`;
  console.log(`| ${r.model} b${r.batch} | ${cell(r.first_step_s)} | ${cell(r.tuning_s)} | ${r.measured_in_budget} / ${r.shipped} / ${r.cost_model} / ${r.borrowed} | ${full}`);
}
const json = flags.str('--json');
if (json) fs.writeFileSync(json, JSON.stringify({ adapter: gpu.adapterDescription, results }, null, 1) + '\n');
await shutdownGpu();
