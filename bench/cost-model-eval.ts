/**
 * How well an unseen model's first run picks tiles, priced without timing anything (issue: first-run tuning): the
 * shipped table and the cost model are rebuilt from full-tune caches without the benchmarked models' shape classes
 * (held out, as `ship-tiles --skip` does), a budgeted tuneModule runs on a fake llvmpipe adapter whose "measurements"
 * are the full tune's own, and its picks are priced with the full tune's timings of every candidate, as
 * bench/first-run.ts's "priced budget / full" does, once with nearest-class borrowing (before) and once with the
 * cost model (after).
 *
 *   node dist/bench/cost-model-eval.js --fit a/tune.json,b/tune.json --models resnet20:32=r20.json[+r20-again.json],…
 *     [--measured 0,2,8] [--prune-factors 2] [--shares 0.1,0.25] [--json FILE] [--differ]
 *
 * `--models name:batch=rows.json`: `lpc tune --json` outputs of full tunes of the model (the first prices; with more
 * than one run, "min" also prices by the minimum over the runs per tile, the full pick then being the argmin, which
 * is less noisy; the second run's own picks are priced too, as the noise floor). `--measured K,…`: how many classes the
 * budget measured (taken in tune.ts's order; every candidate timed, no pruning). `--differ` lists the classes whose
 * pick costs over 1.2× the full tune's, and those whose full-tune winner pruning dropped.
 *
 * Pruning (tune.ts `prune`, cost-model.ts pruneCandidates), also without timing anything: a full tune that times only
 * what the held-out model keeps at each `--prune-factors` F reports in how many classes it dropped the full tune's
 * winner, the candidates it timed, the recorded milliseconds of those it dropped (the measuring time saved, by proxy:
 * a candidate's measurement takes longer the slower it runs) and its picks' price. Then budgets of `--shares` of what
 * timing every candidate of every class costs (a class costing the recorded times of the candidates it times), with
 * and without pruning: how many classes each measures and the price of its picks (the rest: the cost model's).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { shapeClass, tileName } from '../codegen/kernels/tiles.js';
import { tuneModule, TuneCache, TuneOptions, TuneRow } from '../runtime/webgpu/tune.js';
import { PRUNE_FACTOR, fitCostModel, mergeTimings, Timings } from '../runtime/webgpu/cost-model.js';
import { driverFamily } from '../runtime/webgpu/shipped-tiles.js';
import type { Gpu } from '../runtime/webgpu/device.js';
import { DEFAULT_SGD } from './recipes.js';
import { Flags } from './common.js';

const flags = new Flags();
const fitFiles = (flags.str('--fit') ?? '').split(',').filter(Boolean);
const specs = (flags.str('--models') ?? '').split(',').filter(Boolean).map((s) => {
  const [model, files] = s.split('=');
  const [name, b] = model.split(':');
  return { name, batch: Number(b ?? 16), runs: (files ?? '').split('+').filter(Boolean) };
});
if (!fitFiles.length || !specs.length || specs.some((s) => !s.runs.length))
  throw new Error('usage: cost-model-eval --fit tune.json,… --models name:batch=rows.json[+rows2.json],… [--measured 0,2,8] [--json FILE]');
const measuredCounts = flags.ints('--measured', '0,2,8');
const numbers = (k: string, d: string) => (flags.str(k) ?? d).split(',').map(Number).filter((x) => x > 0);
const pruneFactors = numbers('--prune-factors', String(PRUNE_FACTOR));
const shares = numbers('--shares', '0.1,0.25');
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

type Rows = { cls: string; tile: string; ms?: Record<string, number> }[];
const readRows = (f: string): Rows => (JSON.parse(fs.readFileSync(f, 'utf8')) as { rows: Rows }).rows;
const runs = specs.map((s) => s.runs.map(readRows));
const heldOut = new Set(runs.flat(2).map((r) => r.cls));

// the table and model as ship-tiles would build them without the held-out classes
const table: Record<string, string> = {};
const timings: Timings[] = [];
for (const f of fitFiles) {
  const c = JSON.parse(fs.readFileSync(f, 'utf8')) as TuneCache;
  for (const [adapter, entries] of Object.entries(c.adapters)) {
    if (driverFamily(adapter) !== 'llvmpipe') continue;
    const kept = Object.entries(entries).filter(([cls]) => !heldOut.has(cls)).sort((a, b) => a[1].at.localeCompare(b[1].at));
    for (const [cls, e] of kept) table[cls] = e.tile;
    timings.push(Object.fromEntries(kept.map(([cls, e]) => [cls, e.ms])));
  }
}
const model = fitCostModel(mergeTimings(timings));
log(`fitted on ${Object.keys(model.profiles).length} classes (${heldOut.size} held out); table of ${Object.keys(table).length}`);

const gpu = { adapterDescription: 'mesa | software | llvmpipe (priced offline)', isCpuDriver: true, limits: { maxStorageBufferBindingSize: 2 ** 31 } } as unknown as Gpu;
type Pricing = { name: string; ms: Map<string, Record<string, number>>; full: (cls: string) => string };
/** Picks priced per node (a class counts as often as it runs) against the full tune's picks. */
function price(rows: { cls: string; tile: string }[], p: Pricing): { picked_ms: number; full_ms: number; ratio: number } {
  let picked = 0, full = 0;
  for (const r of rows) {
    const ms = p.ms.get(r.cls);
    if (!ms || ms[r.tile] === undefined) continue;
    picked += ms[r.tile];
    full += ms[p.full(r.cls)];
  }
  return { picked_ms: +picked.toFixed(1), full_ms: +full.toFixed(1), ratio: +(picked / full).toFixed(3) };
}
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const results: Record<string, unknown>[] = [];
const pruning: Record<string, unknown>[] = [];
const budgets: Record<string, unknown>[] = [];
for (const [i, spec] of specs.entries()) {
  const name = `${spec.name} b${spec.batch}`;
  const m = runPasses(frontEnd(`models/${spec.name}.ts`, spec.batch), { batch: spec.batch, optimizer: DEFAULT_SGD, log: () => {} });
  const byCls = (rows: Rows) => new Map(rows.filter((r) => r.ms).map((r) => [r.cls, r.ms!]));
  const first = byCls(runs[i][0]);
  const pricings: Pricing[] = [
    { name: 'full tune', ms: first, full: (cls) => runs[i][0].find((r) => r.cls === cls)!.tile },
  ];
  if (runs[i].length > 1) {
    const min = new Map([...first.keys()].map((cls) => [cls, mergeTimings(runs[i].map((rs) => ({ [cls]: byCls(rs).get(cls) ?? {} })))[cls]]));
    pricings.push({ name: `min of ${runs[i].length} runs`, ms: min, full: (cls) => { const ms = min.get(cls)!; return Object.keys(ms).reduce((a, b) => (ms[b] < ms[a] ? b : a)); } });
  }
  /** tuneModule on the fake adapter: a measurement returns the full tune's timing of each candidate and moves the
   *  clock on by `charge` of the candidates timed. */
  const fakeTune = async (o: Partial<TuneOptions>, charge: (ms: number[]) => number): Promise<TuneRow[]> => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-cost-eval-'));
    let clock = 0;
    try {
      return (await tuneModule(gpu, m, {
        file: path.join(dir, 'tune.json'), now: () => clock, shipped: table, costModel: model, warn: () => {}, ...o,
        measure: async (g, node, tiles) => {
          const ms = first.get(shapeClass(g, node))!, out = tiles.map((t) => ms[tileName(t)] ?? Infinity);
          clock += charge(out);
          return out;
        },
      })).rows;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  // the noise floor: another full tune's own picks (the second run), priced the same ways
  if (runs[i].length > 1)
    for (const p of pricings) {
      const row = { model: name, measured: 'all', picks: 'another full tune', priced_by: p.name, ...price(runs[i][1], p) };
      log(JSON.stringify(row));
      results.push(row);
    }
  for (const k of measuredCounts)
    for (const withModel of [false, true]) {
      // one fake millisecond per class, all candidates timed: the budget measures k classes
      const rows = await fakeTune({ budgetMs: k ? k + 0.5 : 0, costModel: withModel ? model : null, prune: false }, () => 1);
      const count = (s: TuneRow['source']) => new Set(rows.filter((r) => r.source === s).map((r) => r.cls)).size;
      for (const p of pricings) {
        if (flags.has('--differ')) {
          const seen = new Set<string>();
          for (const r of rows) {
            const ms = p.ms.get(r.cls);
            if (!ms || seen.has(r.cls) || ms[r.tile] === undefined) continue;
            const best = p.full(r.cls);
            if (ms[r.tile] <= 1.2 * ms[best]) continue;
            seen.add(r.cls);
            log(`  k=${k} ${withModel ? 'model' : 'nearest'} (${p.name}): ${r.cls}: ${r.tile} (${r.source}) ${ms[r.tile].toFixed(2)} ms vs ${best} ${ms[best].toFixed(2)} ms`);
          }
        }
        const row = {
          model: name, measured: count('measured'), shipped: count('shipped'), modelled: count('cost-model'), borrowed: count('similar'),
          picks: withModel ? 'cost model' : 'nearest borrowing', priced_by: p.name, ...price(rows, p),
        };
        log(JSON.stringify(row));
        results.push(row);
      }
    }
  // pruning: a full tune that times only what the model keeps (prune: true, no budget), every class measured
  for (const factor of pruneFactors) {
    const rows = await fakeTune({ prune: true, pruneFactor: factor }, () => 0);
    const classes = new Map(rows.filter((r) => r.source === 'measured').map((r) => [r.cls, r]));
    for (const p of pricings) {
      let lost = 0, timed = 0, all = 0, droppedMs = 0, allMs = 0;
      const lostList: string[] = [];
      for (const [cls, r] of classes) {
        const rec = first.get(cls)!, dropped = r.pruned ?? [];
        timed += Object.keys(r.ms!).length;
        all += Object.keys(r.ms!).length + dropped.length;
        droppedMs += sum(dropped.map((t) => rec[t] ?? 0));
        allMs += sum([...Object.keys(r.ms!), ...dropped].map((t) => rec[t] ?? 0));
        if (dropped.includes(p.full(cls))) { lost++; lostList.push(`${cls}: ${p.full(cls)} (picked ${r.tile}, ${(p.ms.get(cls)![r.tile] / p.ms.get(cls)![p.full(cls)]).toFixed(2)}×)`); }
      }
      if (flags.has('--differ')) for (const l of lostList) log(`  pruned ×${factor} (${p.name}) dropped the winner of ${l}`);
      const row = {
        model: name, prune_factor: factor, priced_by: p.name, classes: classes.size, winner_dropped: lost, candidates_timed: timed, candidates: all,
        recorded_ms_dropped: +droppedMs.toFixed(1), recorded_ms: +allMs.toFixed(1), ...price(rows, p),
      };
      log(JSON.stringify(row));
      pruning.push(row);
    }
  }
  // a budget with and without pruning: a class costs the sum of its timed candidates' recorded times, the budget a
  // share of what timing every candidate of every class costs
  const everything = sum([...first.values()].map((ms) => sum(Object.values(ms))));
  for (const share of shares)
    for (const prune of [false, true]) {
      const rows = await fakeTune({ budgetMs: share * everything, prune, pruneFactor: pruneFactors.includes(PRUNE_FACTOR) ? PRUNE_FACTOR : pruneFactors[0] }, (ms) => sum(ms.filter(Number.isFinite)));
      const measured = new Set(rows.filter((r) => r.source === 'measured').map((r) => r.cls)).size;
      for (const p of pricings) {
        const row = { model: name, budget_share: share, prune, measured, classes: new Set(rows.map((r) => r.cls)).size, priced_by: p.name, ...price(rows, p) };
        log(JSON.stringify(row));
        budgets.push(row);
      }
    }
}
console.log('| model | classes measured in the budget | picks for the rest | priced by | budget picks / full (ms) | ratio |');
console.log('|---|---|---|---|---|---|');
for (const r of results) console.log(`| ${r.model} | ${r.measured} | ${r.picks} | ${r.priced_by} | ${r.picked_ms} / ${r.full_ms} | **${r.ratio}** |`);
console.log('\n| model | prune factor | priced by | classes whose full-tune winner was dropped | candidates timed / all | recorded ms dropped / all | pruned tune picks / full (ms) | ratio |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of pruning)
  console.log(`| ${r.model} | ${r.prune_factor} | ${r.priced_by} | ${r.winner_dropped} of ${r.classes} | ${r.candidates_timed} / ${r.candidates} | ${r.recorded_ms_dropped} / ${r.recorded_ms} | ${r.picked_ms} / ${r.full_ms} | **${r.ratio}** |`);
console.log('\n| model | budget (share of timing everything) | pruning | classes measured | priced by | budget picks / full (ms) | ratio |');
console.log('|---|---|---|---|---|---|---|');
for (const r of budgets)
  console.log(`| ${r.model} | ${r.budget_share} | ${r.prune ? 'yes' : 'no'} | ${r.measured} of ${r.classes} | ${r.priced_by} | ${r.picked_ms} / ${r.full_ms} | **${r.ratio}** |`);
const json = flags.str('--json');
if (json) fs.writeFileSync(json, JSON.stringify({ fit: fitFiles, held_out_classes: heldOut.size, results, pruning, budgets }, null, 1) + '\n');
