/**
 * `npm run build && node dist/bench/division.js [--only lenet|resnet] [--seeds 0,1,2] [--backend webgpu|cpu]
 *  [--lenet-epochs 2] [--lenet-train 60000] [--resnet-epochs 1] [--resnet-train 10000] [--test 10000] [--steps N]
 *  [--bn-reestimate] [--lr-schedule S] [--arms none,division] [--no-readme] [--json out.json] | --merge a.json,b.json,…`
 *
 * DIVISION's accuracy check (issue 6): the same training run with saved activations stored as DIVISION stores them
 * (`save=division(block=8,bits=2)`) and uncompressed, same seeds (same initial weights, same shuffles), on
 * Fashion-MNIST:
 *   LeNet-5                   batch 64, 2 epochs over the 60,000 training images
 *   ResNet-20, 1×28×28 input  batch 32, 1 epoch over the first 10,000 training images (a fixed subset: the split is
 *                             already a seeded permutation; each epoch is a fresh seeded shuffle of the subset)
 * SGD with the default recipe (lr 0.05, momentum 0.9, wd 5e-4), constant unless `--lr-schedule S` (`lpc run`'s
 * schedules, e.g. `cosine(per=step)`: a one-epoch run ends at lr 0 instead of on a noisy iterate, so three seeds can
 * resolve a sub-point difference); test accuracy after the last epoch on the
 * first `--test` images of the fixed 10,000-image test split. Reports mean ± sample std over the seeds and the
 * difference of the means (DIVISION − uncompressed), and writes the rows of the models it ran into the README
 * between the division-table markers (rows of models not run are kept). `--steps N` caps the batches per epoch (for
 * timing); the caption of each row says exactly what was run. `--bn-reestimate` (for runs too short for BN's running
 * statistics to follow the weights) evaluates with BN statistics re-estimated over the last epoch's batches.
 * `--arms` runs one arm only and `--merge` writes the table from the `--json` files of such runs (processes run side
 * by side: one row per model from the seeds present in both arms).
 */
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { parsePolicy } from '../ir/precision/index.js';
import { runPasses } from '../passes/pipeline.js';
import { withSwa } from '../passes/swa.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { train } from '../runtime/train/train.js';
import { describeLr, lrAt, parseLrSchedule, resolveLr } from '../runtime/train/lr.js';
import { Progress } from '../runtime/train/progress.js';
import { DEFAULT_SGD } from './recipes.js';
import { Flags, firstN, mean, meanStd, openRunner, readSection, writeSection } from './common.js';

const f = new Flags();
if (f.has('--help')) {
  console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').match(/\/\*\*([\s\S]*?)\*\//)![1].replace(/^ \* ?/gm, '').trim());
  process.exit(0);
}
const SPEC = 'save=division(block=8,bits=2)';
const seeds = f.ints('--seeds', '0,1,2');
const testN = f.int('--test', 10000);
const stepCap = f.str('--steps') ? f.int('--steps', 1) : undefined;
const only = f.str('--only');
// Short runs of a BN network: the running statistics lag the weights, so evaluate with statistics re-estimated over
// the last epoch's batches (SWALP's bn_update on a one-snapshot average, i.e. the final weights themselves).
const bnRe = f.has('--bn-reestimate');
const lrText = f.str('--lr-schedule') ?? 'const';
parseLrSchedule(lrText); // a bad spec fails before any run
const ARMS = (f.str('--arms') ?? 'none,division').split(',') as ('none' | 'division')[];
if (!ARMS.length || ARMS.some((a) => a !== 'none' && a !== 'division')) throw new Error('--arms takes none, division or none,division');
const merge = f.str('--merge')?.split(',');
const PARTS = [
  { key: 'lenet', label: 'LeNet-5', file: 'models/lenet5.ts', batch: 64, input: undefined, epochs: f.int('--lenet-epochs', 2), train: f.int('--lenet-train', 60000) },
  { key: 'resnet', label: 'ResNet-20 (1×28×28 input)', file: 'models/resnet20.ts', batch: 32, input: [1, 28, 28], epochs: f.int('--resnet-epochs', 1), train: f.int('--resnet-train', 10000) },
].filter((p) => !only || only.split(',').includes(p.key));
if (!PARTS.length) throw new Error('--only takes lenet, resnet or lenet,resnet');

const runner = merge ? undefined : await openRunner(f.str('--backend') ?? 'webgpu');
const data = merge ? undefined! : loadDataset('fashion-mnist');
const SECTION = 'division-table';
interface Result { key: string; label: string; run: string; seeds: number[]; where: string; none: number[]; division: number[]; plain: { none: number[]; division: number[] }; stepSeconds: { none: number; division: number }; minutes: number }
const results: Result[] = [];

for (const p of merge ? [] : PARTS) {
  const t0 = performance.now();
  const split = { train: firstN(data.train, p.train), test: data.test };
  const stepsPerEpoch = Math.min(Math.floor(split.train.n / p.batch), stepCap ?? Infinity);
  const lr = resolveLr({ base: DEFAULT_SGD.lr, schedule: parseLrSchedule(lrText), epochs: p.epochs, stepsPerEpoch });
  const r: Result = { key: p.key, label: p.label, run: '', seeds, where: runner!.where, none: [], division: [], plain: { none: [], division: [] }, stepSeconds: { none: 0, division: 0 }, minutes: 0 };
  for (const arm of ARMS) {
    const m0 = runPasses(frontEnd(p.file, p.batch, p.input ? { input: p.input } : {}),
      { batch: p.batch, optimizer: DEFAULT_SGD, precision: arm === 'division' ? parsePolicy(SPEC) : undefined, log: () => {} });
    const m = bnRe ? withSwa(m0) : m0;
    let secs = 0, steps = 0;
    for (const seed of seeds) {
      const b = await runner!.make(m);
      await b.setState(initState(m, seed));
      const hist = await train(b, split, {
        epochs: p.epochs, batch: p.batch, seed, maxSteps: stepCap, testLimit: testN, progress: new Progress(), lr: (e, _s, _n, g) => lrAt(lr, e - 1, g),
        ...(bnRe ? { swa: { start: p.epochs, bn: m.graphs.some((g) => g.name === 'swa_bn') } } : {}),
      });
      await b.dispose();
      const last = hist[hist.length - 1];
      const acc = (bnRe ? last.swa_test_accuracy! : last.test_accuracy) * 100;
      r[arm].push(acc);
      r.plain[arm].push(last.test_accuracy * 100);
      for (const h of hist) { secs += h.seconds; steps += h.steps; }
      console.log(`${p.key} ${arm} seed ${seed}: ${acc.toFixed(2)}%  (${(hist.reduce((s, h) => s + h.seconds, 0) / hist.reduce((s, h) => s + h.steps, 0) * 1000).toFixed(0)} ms/step)`);
    }
    r.stepSeconds[arm] = secs / steps;
  }
  r.minutes = (performance.now() - t0) / 60000;
  const images = stepsPerEpoch * p.batch;
  r.run = tidy(`${lrText === 'const' ? '' : `lr ${describeLr(lr).replace(/^base=\S+ /, '')}, `}batch ${p.batch}, ${p.epochs} epoch${p.epochs > 1 ? 's' : ''} of ${stepsPerEpoch} steps (${images.toLocaleString('en-US')} of ` +
    `${split.train.n === data.train.n ? 'the 60,000' : `the first ${split.train.n.toLocaleString('en-US')} of the 60,000`} training images per epoch); `) +
    `test: ${Math.min(testN, data.test.n).toLocaleString('en-US')} images` +
    (bnRe ? '; BN statistics re-estimated over the last epoch\'s batches before evaluation (`--bn-reestimate`)' : '');
  results.push(r);
}
await runner?.close();
if (merge) results.push(...mergeResults(merge));

/** "960 of the first 960 of the 60,000 training images" → "the first 960 of the 60,000 training images". */
function tidy(run: string): string {
  return run.replace(/\(([\d,]+) of the first \1 of the 60,000/, '(the first $1 of the 60,000');
}

/**
 * The per-run lines this script logs (`lenet none seed 0: 87.07%  (389 ms/step)`) as results, for a run stopped
 * before it wrote its --json file. The caption and backend come from the JSON files merged with it.
 */
function fromLog(file: string): { seeds: number[]; results: Result[] } {
  const out = new Map<string, Result>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\w+) (none|division) seed (\d+): ([\d.]+)%\s+\((\d+) ms\/step\)/.exec(line);
    const p = m && PARTS.find((x) => x.key === m[1]);
    if (!m || !p) continue;
    const r = out.get(p.label) ?? { key: p.key, label: p.label, run: '', seeds: [], where: '', none: [], division: [], plain: { none: [], division: [] }, stepSeconds: { none: 0, division: 0 }, minutes: 0 };
    out.set(p.label, r);
    const arm = m[2] as 'none' | 'division';
    (r as Result & { logSeeds?: Record<string, number[]> }).logSeeds ??= { none: [], division: [] };
    (r as Result & { logSeeds: Record<string, number[]> }).logSeeds[arm].push(Number(m[3]));
    r[arm].push(Number(m[4]));
    r.stepSeconds[arm] = ((r.stepSeconds[arm] * (r[arm].length - 1)) + Number(m[5]) / 1000) / r[arm].length;
  }
  // one result per (model, arm) so each carries its own seeds
  const results: Result[] = [];
  for (const r of out.values()) {
    const ls = (r as Result & { logSeeds: Record<string, number[]> }).logSeeds;
    for (const arm of ['none', 'division'] as const) if (r[arm].length)
      results.push({ ...r, seeds: ls[arm], none: arm === 'none' ? r.none : [], division: arm === 'division' ? r.division : [] });
  }
  return { seeds: [], results };
}

/**
 * Results of several runs (`--json` files, e.g. one arm or seed per process run side by side) as one row per model:
 * the seeds run in both arms, in order; ms/step averaged over the files; minutes: the longest file's.
 */
function mergeResults(files: string[]): Result[] {
  const by = new Map<string, { r: Result; acc: Record<'none' | 'division', Map<number, number>>; plain: Record<'none' | 'division', Map<number, number>>; ms: Record<'none' | 'division', number[]> }>();
  for (const file of files) {
    const j = file.endsWith('.json') ? JSON.parse(fs.readFileSync(file, 'utf8')) as { seeds: number[]; results: Result[] } : fromLog(file);
    for (const r of j.results) {
      const e = by.get(r.label) ?? { r: { ...r, minutes: 0 }, acc: { none: new Map(), division: new Map() }, plain: { none: new Map(), division: new Map() }, ms: { none: [] as number[], division: [] as number[] } };
      by.set(r.label, e);
      e.r.minutes = Math.max(e.r.minutes, r.minutes);
      e.r.run ||= tidy(r.run);
      e.r.where ||= r.where ?? '';
      for (const arm of ['none', 'division'] as const) {
        if (!r[arm].length) continue;
        (r.seeds ?? j.seeds).forEach((sd, i) => { e.acc[arm].set(sd, r[arm][i]); e.plain[arm].set(sd, r.plain?.[arm]?.[i] ?? NaN); });
        e.ms[arm].push(r.stepSeconds[arm]);
      }
    }
  }
  return [...by.values()].map(({ r, acc, plain, ms }) => {
    const both = [...acc.none.keys()].filter((sd) => acc.division.has(sd)).sort((a, b) => a - b);
    return {
      ...r, seeds: both, none: both.map((sd) => acc.none.get(sd)!), division: both.map((sd) => acc.division.get(sd)!),
      plain: { none: both.map((sd) => plain.none.get(sd)!), division: both.map((sd) => plain.division.get(sd)!) },
      stepSeconds: { none: mean(ms.none), division: mean(ms.division) },
    };
  });
}

const delta = (r: Result) => mean(r.division) - mean(r.none);
const perSeed = (r: Result) => r.division.map((d, i) => (d - r.none[i] >= 0 ? '+' : '') + (d - r.none[i]).toFixed(2)).join(', ');
const row = (r: Result) =>
  `| ${r.label} | ${tidy(r.run)} | ${meanStd(r.none)} | ${meanStd(r.division)} | ${delta(r) >= 0 ? '+' : ''}${delta(r).toFixed(2)} | ${perSeed(r)} | ` +
  `${(r.stepSeconds.none * 1000).toFixed(0)} / ${(r.stepSeconds.division * 1000).toFixed(0)} | ${r.seeds.join(', ')}; ${r.where.replace(/\|/g, '\\|')}; ${r.minutes.toFixed(0)} min |`;
const HEAD = [
  `Fashion-MNIST, SGD lr ${DEFAULT_SGD.lr} (constant unless the run names a schedule), momentum ${DEFAULT_SGD.momentum}, wd ${DEFAULT_SGD.wd}; test accuracy % after the last ` +
  `epoch, mean ± sample std over the seeds, uncompressed vs \`--precision '${SPEC}'\` with the same seeds (same initial ` +
  'weights and shuffles). Produced by `npm run build && node dist/bench/division.js` (`--only lenet|resnet` reruns one row).',
  '',
  '| model | run | uncompressed % | DIVISION % | Δ mean (points) | Δ per seed | ms/step (f32 / DIVISION) | seeds; backend; time |',
  '|---|---|---|---|---|---|---|---|',
];
const old = readSection('README.md', SECTION) ?? '';
const keep = new Map<string, string>();
for (const line of old.split('\n')) {
  const m = /^\| ([^|]+?) \|/.exec(line);
  if (m && !['model', '---'].includes(m[1]) && results.every((r) => r.label !== m[1])) keep.set(m[1], line);
}
const rows = [...results.map((r) => r.label), ...keep.keys()];
const order = ['LeNet-5', 'ResNet-20 (1×28×28 input)'];
rows.sort((a, b) => order.indexOf(a) - order.indexOf(b));
const table = [...HEAD, ...rows.map((l) => keep.get(l) ?? row(results.find((r) => r.label === l)!))].join('\n');
console.log(table);
const jsonOut = f.str('--json');
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ spec: SPEC, seeds, arms: ARMS, testN, results }, null, 2) + '\n');
if (!f.has('--no-readme')) writeSection('README.md', SECTION, table);
