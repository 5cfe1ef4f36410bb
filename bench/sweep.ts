/**
 * `lpc sweep` costs (not a test): `node dist/bench/sweep.js [--backend webgpu|cpu] [--steps 100] [--small-steps 20]`.
 *
 * 1. One LeNet-5 cell of `--steps` steps on an MNIST class subset (one epoch, batch 64): its overhead — compile,
 *    process start-up, data loading, backend start-up, evaluation — as a fraction of its training time.
 * 2. Cells per hour of a small sweep (2 tasks × 2 configurations of `--small-steps` steps) with --workers 1 and 2.
 * Runs the built bin/lpc.js in fresh temporary directories; prints a JSON summary and a short table.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Flags } from './common.js';

const f = new Flags();
const backend = f.str('--backend') ?? 'webgpu';
const steps = f.int('--steps', 100), smallSteps = f.int('--small-steps', 20);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-bench-sweep-'));
const F43 = 'W=float<4,3>:stochastic A=float<4,3>:stochastic E=float<5,2>:stochastic G=float<4,3>:stochastic M=float<6,9>:stochastic ACC=float<6,9>:stochastic';
const F53 = F43.replace(/float<4,3>/g, 'float<5,3>');

function sweep(name: string, tasks: string[], configs: { name: string; precision: string }[], s: number, extra: string[] = [], epochs = 1) {
  const dir = path.join(tmp, name);
  fs.writeFileSync(`${dir}.tasks`, tasks.join('\n') + '\n');
  fs.writeFileSync(`${dir}.json`, JSON.stringify(configs));
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['bin/lpc.js', 'sweep', 'models/lenet5.ts', '--configs', `${dir}.json`, '--tasks', `${dir}.tasks`, '--out', dir,
    '--backend', backend, '--epochs', String(epochs), '--max-steps', String(s), ...extra], { encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`sweep ${name} failed:\n${r.stderr}`);
  const cells = fs.readdirSync(path.join(dir, 'cells')).filter((x) => x.endsWith('.json')).map((x) => JSON.parse(fs.readFileSync(path.join(dir, 'cells', x), 'utf8')));
  const arts = fs.readdirSync(path.join(dir, 'artifacts')).filter((x) => x.endsWith('.json')).map((x) => JSON.parse(fs.readFileSync(path.join(dir, 'artifacts', x), 'utf8')));
  const failed = cells.filter((c) => c.status !== 'ok');
  if (failed.length) throw new Error(`sweep ${name}: ${failed.length} cells failed: ${failed[0].reason}`);
  return { wall, cells, compile: arts.reduce((s, a) => s + a.compile_seconds, 0), stderr: r.stderr };
}

// 1. one 100-step cell
// (the 5-digit task has ~62 batches of 64 per epoch: two epochs of steps/2; the first WebGPU run on a machine also
// measures GEMM tilings once (lpc tune's cache), which lands in the in-cell overhead: run the bench twice)
const one = sweep('one', ['mnist:classes=0,1,2,3,4'], [{ name: 'f43', precision: F43 }], Math.ceil(steps / 2), [], 2);
const c = one.cells[0];
const startup = one.wall - one.compile - c.seconds;   // process start, type-check/imports, task info load, tables
const inCell = c.seconds - c.train_seconds;             // data, backend start-up (tuning cache), evaluation
const overhead = one.compile + startup + inCell;
const cellResult = {
  steps: c.steps, train_s: c.train_seconds, compile_s: one.compile, startup_s: startup, cell_other_s: inCell, wall_s: one.wall,
  overhead_s: overhead, overhead_fraction: overhead / c.train_seconds, ms_per_step: (1000 * c.train_seconds) / c.steps,
};

// 2. cells per hour, 1 and 2 workers (fresh directories: compiles included)
const tasks = ['mnist:classes=0,1', 'mnist:classes=2,3'];
const configs = [{ name: 'f43', precision: F43 }, { name: 'f53', precision: F53 }];
const perHour = (w: number) => {
  const s = sweep(`w${w}`, tasks, configs, smallSteps, ['--workers', String(w)]);
  return { workers: w, cells: s.cells.length, wall_s: s.wall, compile_s: s.compile, cells_per_hour: (3600 * s.cells.length) / s.wall };
};
const w1 = perHour(1), w2 = perHour(2);

const summary = { backend, cell: cellResult, small_sweep: { steps: smallSteps, runs: [w1, w2] } };
process.stdout.write(JSON.stringify(summary, null, 1) + '\n');
process.stdout.write(`\nLeNet-5, ${steps}-step cell on mnist:classes=0,1,2,3,4 (batch 64, ${backend}): training ${cellResult.train_s.toFixed(1)} s ` +
  `(${cellResult.ms_per_step.toFixed(0)} ms/step); overhead ${overhead.toFixed(1)} s = ${(100 * cellResult.overhead_fraction).toFixed(0)}% of training ` +
  `(compile ${one.compile.toFixed(2)} s, process start-up ${startup.toFixed(2)} s, data + backend + evaluation ${inCell.toFixed(2)} s)\n`);
for (const r of [w1, w2])
  process.stdout.write(`small sweep, ${r.cells} cells of ${smallSteps} steps, --workers ${r.workers}: ${r.wall_s.toFixed(1)} s wall (compiles ${r.compile_s.toFixed(1)} s) → ${r.cells_per_hour.toFixed(0)} cells/hour\n`);
fs.rmSync(tmp, { recursive: true, force: true });
