/**
 * How well an unseen model's first run picks tiles, priced without timing anything (issue: first-run tuning): the
 * shipped table and the cost model are rebuilt from full-tune caches without the benchmarked models' shape classes
 * (held out, as `ship-tiles --skip` does), a budgeted tuneModule runs on a fake llvmpipe adapter whose "measurements"
 * are the full tune's own, and its picks are priced with the full tune's timings of every candidate, as
 * bench/first-run.ts's "priced budget / full" does, once with nearest-class borrowing (before) and once with the
 * cost model (after).
 *
 *   node dist/bench/cost-model-eval.js --fit a/tune.json,b/tune.json --models resnet20:32=r20.json[+r20-again.json],…
 *     [--measured 0,2,8] [--json FILE] [--differ]
 *
 * `--models name:batch=rows.json`: `lpc tune --json` outputs of full tunes of the model (the first prices; with more
 * than one run, "min" also prices by the minimum over the runs per tile, the full pick then being the argmin, which
 * is less noisy; the second run's own picks are priced too, as the noise floor). `--measured K,…`: how many classes the budget measured (taken in tune.ts's order). `--differ`
 * lists the classes whose pick costs over 1.2× the full tune's.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { shapeClass, tileName } from '../codegen/kernels/tiles.js';
import { tuneModule, TuneCache, TuneRow } from '../runtime/webgpu/tune.js';
import { fitCostModel, mergeTimings, Timings } from '../runtime/webgpu/cost-model.js';
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
const results: Record<string, unknown>[] = [];
for (const [i, spec] of specs.entries()) {
  const m = runPasses(frontEnd(`models/${spec.name}.ts`, spec.batch), { batch: spec.batch, optimizer: DEFAULT_SGD, log: () => {} });
  const byCls = (rows: Rows) => new Map(rows.filter((r) => r.ms).map((r) => [r.cls, r.ms!]));
  const first = byCls(runs[i][0]);
  const pricings: { name: string; ms: Map<string, Record<string, number>>; full: (cls: string) => string }[] = [
    { name: 'full tune', ms: first, full: (cls) => runs[i][0].find((r) => r.cls === cls)!.tile },
  ];
  if (runs[i].length > 1) {
    const min = new Map([...first.keys()].map((cls) => [cls, mergeTimings(runs[i].map((rs) => ({ [cls]: byCls(rs).get(cls) ?? {} })))[cls]]));
    pricings.push({ name: `min of ${runs[i].length} runs`, ms: min, full: (cls) => { const ms = min.get(cls)!; return Object.keys(ms).reduce((a, b) => (ms[b] < ms[a] ? b : a)); } });
  }
  // the noise floor: another full tune's own picks (the second run), priced the same ways
  if (runs[i].length > 1)
    for (const p of pricings) {
      let picked = 0, full = 0;
      for (const r of runs[i][1]) {
        const ms = p.ms.get(r.cls);
        if (!ms || ms[r.tile] === undefined) continue;
        picked += ms[r.tile];
        full += ms[p.full(r.cls)];
      }
      const row = { model: `${spec.name} b${spec.batch}`, measured: 'all', picks: 'another full tune', priced_by: p.name, picked_ms: +picked.toFixed(1), full_ms: +full.toFixed(1), ratio: +(picked / full).toFixed(3) };
      log(JSON.stringify(row));
      results.push(row);
    }
  for (const k of measuredCounts)
    for (const withModel of [false, true]) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-cost-eval-'));
      let clock = 0;
      const { rows } = await tuneModule(gpu, m, {
        file: path.join(dir, 'tune.json'), budgetMs: k ? k + 0.5 : 0, now: () => clock, shipped: table, costModel: withModel ? model : null, warn: () => {},
        // a measurement is the full tune's timing of each candidate, one fake millisecond each
        measure: async (g, node, tiles) => { clock += 1; const ms = first.get(shapeClass(g, node))!; return tiles.map((t) => ms[tileName(t)] ?? Infinity); },
      });
      fs.rmSync(dir, { recursive: true, force: true });
      const count = (s: TuneRow['source']) => new Set(rows.filter((r) => r.source === s).map((r) => r.cls)).size;
      for (const p of pricings) {
        let picked = 0, full = 0;
        for (const r of rows) {
          const ms = p.ms.get(r.cls);
          if (!ms || ms[r.tile] === undefined) continue;
          picked += ms[r.tile];
          full += ms[p.full(r.cls)];
        }
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
          model: `${spec.name} b${spec.batch}`, measured: count('measured'), shipped: count('shipped'), modelled: count('cost-model'), borrowed: count('similar'),
          picks: withModel ? 'cost model' : 'nearest borrowing', priced_by: p.name, picked_ms: +picked.toFixed(1), full_ms: +full.toFixed(1), ratio: +(picked / full).toFixed(3),
        };
        log(JSON.stringify(row));
        results.push(row);
      }
    }
}
console.log('| model | classes measured in the budget | picks for the rest | priced by | budget picks / full (ms) | ratio |');
console.log('|---|---|---|---|---|---|');
for (const r of results) console.log(`| ${r.model} | ${r.measured} | ${r.picks} | ${r.priced_by} | ${r.picked_ms} / ${r.full_ms} | **${r.ratio}** |`);
const json = flags.str('--json');
if (json) fs.writeFileSync(json, JSON.stringify({ fit: fitFiles, held_out_classes: heldOut.size, results }, null, 1) + '\n');
