/**
 * `npm run build && node dist/bench/recipes-fmnist.js [swalp|cpt|cpt-mx|all] [--epochs N] [--steps N] [--test N]
 *  [--seeds 0,1,2] [--backend webgpu|cpu] [--swa-start E] [--periods N] [--no-readme] [--json out.json]`
 *
 * Research recipes on Fashion-MNIST with LeNet-5, one table each, written into the README between markers. Both
 * share the run loop here: one compile per precision, one run per (precision, seed) from `initState(m, seed)`, an
 * "epoch" of `--steps` batches of 64 (a fresh seeded shuffle of the 60,000 training images each epoch), accuracy
 * on the first `--test` images of the fixed 10,000-image test split, mean ± sample std over the seeds — sized so a
 * table fits in about 15 minutes on a CPU Vulkan driver.
 *
 * swalp (`swalp-table`): SWALP as its repository measures it: SWALP's learning-rate schedule (lr 0.05 constant,
 *   linear decay to 1% by 90% of the way to the SWA start, then swa_lr 0.01) and once-per-epoch averaging from
 *   the SWA start. Columns: SGD @ start (the SGD model after epoch `--swa-start`: SWALP's reported SGD number; with
 *   bfp<8> this is SGD-LP), SGD @ end (trained on at swa_lr, no averaging), SWA @ end (fp32 average of the
 *   low-precision iterates, BN re-estimated, fp32 evaluation). Averaging never changes the SGD run
 *   (test/unit/swa.test.ts), so the SGD columns are the runs without SWA. Defaults: 8 epochs of 50 steps, start 5.
 *
 * cpt (`cpt-table`): CPT (research/seeds.md §2) — cyclic 3→8-bit forward precision with 8-bit errors, against the
 *   same minmax quantizers at a constant 8 bits (CPT's static baseline) and fp32. CPT's own recipe is 32 cosine
 *   cycles over 64,000 iterations (2,000 per cycle) with a piecewise lr (×0.1 at 50% and 75% of training); here
 *   `--periods` cycles (default: one per epoch) over epochs × steps iterations and `step(milestones=[E/2, 3E/4])`.
 *   With one cycle per epoch every epoch ends at the top of a cycle, so each evaluation (CPT evaluates at the last
 *   step's width) runs at 8 bits, as CPT's final one does. Evaluation quantizes conv inputs with the running
 *   ranges (QuantMeasure's EMA). Columns: test accuracy after the middle epoch and after the last, and the mean
 *   forward width over training. Defaults: 8 epochs of 50 steps (8 cycles of 50 iterations).
 *
 * cpt-mx (`cpt-mx-table`): the same schedule over MXINT's element width (`mx<int8>` in W, A, E; fp32 master
 *   weights), against static MXINT8.
 */
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { Module } from '../ir/graph.js';
import { parsePolicy } from '../ir/precision/index.js';
import { runPasses } from '../passes/pipeline.js';
import { withSwa } from '../passes/swa.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { EpochMetrics, TrainOptions, train } from '../runtime/train/train.js';
import { Progress } from '../runtime/train/progress.js';
import { LrConfig, lrAt, parseLrSchedule, resolveLr } from '../runtime/train/lr.js';
import { Flags, Runner, meanStd, openRunner, writeSection } from './common.js';
import { CPT_MINMAX8, CPT_MXINT8, DEFAULT_SGD, RECIPES, cptSpec, scheduleFor } from './recipes.js';
import { formatBits } from '../ir/format.js';

const BATCH = 64;
const flags = new Flags();
const which = flags.args[0] && !flags.args[0].startsWith('--') ? flags.args[0] : 'all';
if (!['swalp', 'cpt', 'cpt-mx', 'all'].includes(which)) throw new Error(`expected swalp, cpt, cpt-mx or all, got '${which}'`);
const seeds = flags.ints('--seeds', '0,1,2');
const testN = flags.int('--test', 2000);

/** One precision of a table. */
interface Arm { key: string; label: string; spec?: string }
/** A table: its arms, how a run trains, what a run reports (one number per column). */
interface Study {
  name: string;
  section: string;
  epochs: number;
  steps: number;
  arms: Arm[];
  columns: string[];
  compile(spec: string | undefined): Module;
  options(m: Module): Pick<TrainOptions, 'lr' | 'swa' | 'bits'>;
  report(hist: EpochMetrics[], o: Pick<TrainOptions, 'bits'>, arm: Arm): number[];
  caption(where: string, minutes: number): string;
}
interface Row { arm: Arm; cells: number[][] }

const compileLenet = (spec: string | undefined) =>
  runPasses(frontEnd('models/lenet5.ts', BATCH), { batch: BATCH, optimizer: DEFAULT_SGD, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
const perEpoch = (c: LrConfig) => (epoch: number, _s: number, _n: number, g: number) => lrAt(c, epoch - 1, g);
const common = (s: Study) =>
  `LeNet-5, Fashion-MNIST: ${s.epochs} epochs of ${s.steps} batches of ${BATCH} (${s.epochs * s.steps * BATCH} images; a fresh seeded shuffle ` +
  `of the 60,000 training images per epoch), test accuracy on the first ${testN} of the 10,000 test images; SGD momentum ${DEFAULT_SGD.momentum}, ` +
  `wd ${DEFAULT_SGD.wd}`;

function swalpStudy(): Study {
  const epochs = flags.int('--epochs', 8), steps = flags.int('--steps', 50), swaStart = flags.int('--swa-start', 5), swaLr = 0.01;
  if (swaStart > epochs) throw new Error('--swa-start must be ≤ --epochs');
  const lr = resolveLr({ base: DEFAULT_SGD.lr, schedule: parseLrSchedule(`swalp(start=${swaStart},swa_lr=${swaLr})`), epochs, swa: { start: swaStart, lr: swaLr } });
  const s: Study = {
    name: 'swalp', section: 'swalp-table', epochs, steps,
    arms: [{ key: 'fp32', label: 'fp32' }, { key: 'swalp_bfp8', label: 'bfp<8> stochastic, all roles (SWALP)' }]
      .map((a) => ({ ...a, spec: RECIPES[a.key].spec })),
    columns: [`SGD @ epoch ${swaStart} %`, `SGD @ epoch ${epochs} %`, `SWA @ epoch ${epochs} %`],
    compile: (spec) => withSwa(compileLenet(spec)),
    options: (m) => ({ lr: perEpoch(lr), swa: { start: swaStart, bn: m.graphs.some((g) => g.name === 'swa_bn') } }),
    report: (h) => [h[swaStart - 1].test_accuracy * 100, h[h.length - 1].test_accuracy * 100, h[h.length - 1].swa_test_accuracy! * 100],
    caption: (where, minutes) => `${common(s)}, \`--lr-schedule swalp(start=${swaStart},swa_lr=${swaLr})\` from lr ${DEFAULT_SGD.lr}, ` +
      `\`--swa start=${swaStart},lr=${swaLr}\`; ${where}; seeds ${seeds.join(', ')} (mean ± sample std); ${minutes.toFixed(0)} minutes. ` +
      'Produced by `node dist/bench/recipes-fmnist.js swalp`.',
  };
  return s;
}

/** CPT over MXINT (README "CPT over MX"): the element width of mx<int8> follows the same schedule, fp32 master
 *  weights; against static MXINT8 (the cpt table's fp32 row is this table's fp32: the same runs). */
function cptMxStudy(): Study {
  const s = cptStudy();
  const periods = flags.int('--periods', s.epochs);
  return {
    ...s, name: 'cpt-mx', section: 'cpt-mx-table',
    arms: [
      { key: 'mxint8', label: 'MXINT8 static, fp32 master weights', spec: CPT_MXINT8 },
      { key: 'cpt_mx', label: `CPT over MXINT: forward 3→8 bits cyclic (${periods} cycles), backward 8`, spec: `${CPT_MXINT8} ; schedule fwd=cyclic(3,8,periods=${periods}) bwd=const(8)` },
    ],
    caption: (where, minutes) => s.caption(where, minutes).replace('evaluation quantizes conv inputs with the running ranges; ', '')
      .replace('`node dist/bench/recipes-fmnist.js cpt`', '`node dist/bench/recipes-fmnist.js cpt-mx`'),
  };
}

function cptStudy(): Study {
  const epochs = flags.int('--epochs', 8), steps = flags.int('--steps', 50), periods = flags.int('--periods', epochs);
  const mid = Math.max(1, Math.round(epochs / 2));
  const milestones = [...new Set([Math.round(epochs / 2), Math.round((3 * epochs) / 4)])].filter((e) => e >= 1 && e < epochs);
  const lrText = milestones.length ? `step(milestones=[${milestones.join(',')}],gamma=0.1)` : 'const';
  const lr = resolveLr({ base: DEFAULT_SGD.lr, schedule: parseLrSchedule(lrText), epochs });
  const total = epochs * steps;
  const s: Study = {
    name: 'cpt', section: 'cpt-table', epochs, steps,
    arms: [
      { key: 'fp32', label: 'fp32' },
      { key: 'minmax8', label: 'minmax 8 bits, static (CPT\'s 8-bit baseline)', spec: CPT_MINMAX8 },
      { key: 'cpt', label: `CPT: forward 3→8 bits cyclic (${periods} cycles), backward 8`, spec: cptSpec(periods) },
    ],
    columns: [`epoch ${mid} %`, `epoch ${epochs} %`, 'mean forward bits'],
    compile: compileLenet,
    options: () => ({ lr: perEpoch(lr) }),
    report: (h, o, arm) => {
      const a = arm.spec ? parsePolicy(arm.spec).roles.A?.fmt : undefined;
      const staticBits = a ? formatBits(a) : 32;
      let sum = 0;
      for (let t = 0; t < total; t++) sum += o.bits ? o.bits(t).fwd : staticBits;
      return [h[mid - 1].test_accuracy * 100, h[h.length - 1].test_accuracy * 100, sum / total];
    },
    caption: (where, minutes) => `${common(s)}, \`--lr-schedule ${lrText}\` from lr ${DEFAULT_SGD.lr}; CPT's schedule over ` +
      `${total} iterations: ${periods} cycles of P = ${Math.floor(total / periods)} iterations (CPT: 32 cycles of 2,000), so every epoch ends ` +
      `at 8 bits and is evaluated there; evaluation quantizes conv inputs with the running ranges; ${where}; seeds ${seeds.join(', ')} ` +
      `(mean ± sample std); ${minutes.toFixed(0)} minutes. Produced by \`node dist/bench/recipes-fmnist.js cpt\`.`,
  };
  return s;
}

async function runStudy(s: Study, runner: Runner, data: ReturnType<typeof loadDataset>): Promise<{ rows: Row[]; minutes: number }> {
  const t0 = performance.now();
  const rows: Row[] = [];
  for (const arm of s.arms) {
    const m = s.compile(arm.spec);
    const row: Row = { arm, cells: s.columns.map(() => []) };
    for (const seed of seeds) {
      const b = await runner.make(m);
      await b.setState(initState(m, seed));
      // a scheduled arm's widths per step, as `lpc run` gives them (fp32 and static arms have none)
      const o = { ...s.options(m), bits: scheduleFor(arm.spec, s.epochs * s.steps) };
      const hist = await train(b, data, { epochs: s.epochs, batch: BATCH, seed, maxSteps: s.steps, testLimit: testN, progress: new Progress(), ...o });
      await b.dispose();
      const r = s.report(hist, o, arm);
      r.forEach((v, i) => row.cells[i].push(v));
      console.log(`${s.name} ${arm.key} seed ${seed}: ${s.columns.map((c, i) => `${c} ${r[i].toFixed(2)}`).join('  ')}`);
    }
    rows.push(row);
  }
  return { rows, minutes: (performance.now() - t0) / 60000 };
}

function table(s: Study, rows: Row[], where: string, minutes: number): string {
  return [
    s.caption(where, minutes),
    '',
    `| precision | \`--precision\` | ${s.columns.join(' | ')} |`,
    `|---|---|${s.columns.map(() => '---|').join('')}`,
    ...rows.map((r) => `| ${r.arm.label} | \`${r.arm.spec ?? '(none)'}\` | ${r.cells.map((c) => meanStd(c)).join(' | ')} |`),
  ].join('\n');
}

const studies = [...(which === 'swalp' || which === 'all' ? [swalpStudy()] : []), ...(which === 'cpt' || which === 'all' ? [cptStudy()] : []),
  ...(which === 'cpt-mx' || which === 'all' ? [cptMxStudy()] : [])];
const runner = await openRunner(flags.str('--backend') ?? 'webgpu');
const data = loadDataset('fashion-mnist');
const json: Record<string, unknown> = {};
for (const s of studies) {
  const { rows, minutes } = await runStudy(s, runner, data);
  const t = table(s, rows, runner.where, minutes);
  console.log(t);
  json[s.name] = { epochs: s.epochs, steps: s.steps, testN, seeds, columns: s.columns, rows: rows.map((r) => ({ ...r.arm, cells: r.cells })) };
  if (!flags.has('--no-readme')) writeSection('README.md', s.section, t);
}
const jsonOut = flags.str('--json');
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(json, null, 2) + '\n');
await runner.close();
