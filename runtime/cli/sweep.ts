/**
 * `lpc sweep`: train every (task, configuration) cell of a precision sweep and write PEPPP-layout error and memory
 * matrices. Resumable (finished cells are never re-run; results are written atomically), deterministic (a cell
 * depends only on model, configuration, task, seed and steps), with local worker processes (`--workers N`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fork } from 'node:child_process';
import { FlagSpec, Parsed, UsageError, asUsage, flag, intFlag } from './args.js';
import { DEFAULT_OPTIMIZER } from './compile.js';
import { compileSweepArtifact } from '../sweep/compile.js';
import { Progress } from '../train/progress.js';
import { parseOptimizer } from '../../passes/optimizer.js';
import { ConfigError, loadConfigs, precisionProblem } from '../sweep/configs.js';
import { readTasksFile, TaskError } from '../data/tasks.js';
import { parseDataSpec } from '../data/index.js';
import { CellJob, CellResult, loadTask, work } from '../sweep/cell.js';
import { DirQueue, SWEEP_FILE, SweepFile, SweepIdentity, TaskInfo, lockSweepDir } from '../sweep/queue.js';
import type { ToParent, ToWorker } from '../sweep/worker.js';
import { writeAtomic } from '../files.js';
import { NAME, defaultName, probe } from '../sweep/redis.js';
import { runQueued } from '../sweep/producer.js';
import { checkOutDir } from '../sweep/outdir.js';
import { withoutQueue } from '../sweep/redact.js';
import { sweepQueueCommand } from './sweep-queue.js';
import { checkQueueUrl, queueUrlOf } from './worker.js';

export const sweepFlags: FlagSpec[] = [
  { name: 'configs', value: 'C', help: "peppp (PEPPP's 99), FILE.json ([{\"name\", \"precision\"}, …] or {\"grid\": {SLOT: FORMATS}, \"template\": T}), or grid:SLOT=FORMATS,… — FORMATS: float<E,M> terms joined by +, E and M an integer, a..b or a|b|c; first slot outermost; e.g. grid:low=float<3..5,1..3>,high=float<6,7..9> (template: W=low G=low M=high ACC=high loss_scale=1000)" },
  { name: 'tasks', value: 'FILE', help: 'one --data spec per line (# comments): mnist:classes=0,2,4, fashion-mnist:classes=…, cifar100:<dir>:superclass=K, …' },
  { name: 'out', alias: '-o', value: 'DIR', help: 'sweep directory: errors.csv, memory.csv, metrics.jsonl, cells/, artifacts/; an existing one is resumed (same options only)' },
  { name: 'epochs', value: 'N', help: 'epochs per cell (default 5)' },
  { name: 'max-steps', value: 'N', help: 'stop each epoch after N steps, as lpc run' },
  { name: 'workers', value: 'N', help: 'run cells in N worker processes (default: in this process)' },
  { name: 'backend', value: 'B', help: 'webgpu (default) or cpu' },
  { name: 'batch', value: 'N', help: 'batch size compiled into every artifact (default 64)' },
  { name: 'seed', value: 'S', help: 'seed of every cell (default 0)' },
  { name: 'optimizer', value: 'SPEC', help: `optimizer of every artifact (default ${DEFAULT_OPTIMIZER})` },
  { name: 'queue', value: 'URL', help: "distributed: enqueue the cells on redis://[user:password@]host:port[/db] ('env': the URL in $LPC_QUEUE) for `lpc worker`s and collect their results here (instead of --workers); also `lpc sweep status|collect --queue URL --name SWEEP [--out DIR]`" },
  { name: 'name', value: 'SWEEP', help: "with --queue: the sweep's name in the queue (letters, digits, _ -; default from the sweep's options); a restarted producer re-attaches by it" },
];

const clock = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

export async function sweepCommand(p: Parsed): Promise<void> {
  if (p.positional[0] === 'status' || p.positional[0] === 'collect') return sweepQueueCommand(p.positional[0], p);
  if (p.positional.length !== 1) throw new UsageError('lpc sweep needs one model file');
  const model = p.positional[0];
  if (!fs.existsSync(model) || !fs.statSync(model).isFile()) throw new UsageError(`${model}: no such model file`);
  const need = (k: string) => { const v = flag(p, k); if (v === undefined) throw new UsageError(`lpc sweep needs --${k}`); return v; };
  const configsArg = need('configs'), tasksFile = need('tasks'), out = need('out');
  const epochs = intFlag(p, 'epochs', 5), seed = intFlag(p, 'seed', 0, 0), batch = intFlag(p, 'batch', 64);
  const maxSteps = p.flags.has('max-steps') ? intFlag(p, 'max-steps', 1) : undefined;
  const workers = p.flags.has('workers') ? intFlag(p, 'workers', 1) : 0;
  const queueUrl = queueUrlOf(p), name = flag(p, 'name');
  if (queueUrl !== undefined) {
    checkQueueUrl(queueUrl);
    await probe(queueUrl); // unreachable, or a wrong password: one line now, before anything is read or written
    if (workers) throw new UsageError('--queue and --workers: choose one (a queued sweep runs on `lpc worker`s)');
    if (name !== undefined && !NAME.test(name)) throw new UsageError(`--name must be 1 to 64 letters, digits, _ or -, got '${name}'`);
  } else if (name !== undefined) throw new UsageError('--name goes with --queue');
  const backend = flag(p, 'backend') ?? 'webgpu';
  if (backend !== 'webgpu' && backend !== 'cpu') throw new UsageError(`--backend must be webgpu or cpu, got '${backend}'`);
  const optimizer = asUsage(() => parseOptimizer(flag(p, 'optimizer') ?? DEFAULT_OPTIMIZER));

  let configs;
  try { configs = loadConfigs(configsArg); } catch (e) { throw e instanceof ConfigError ? new UsageError(e.message) : e; }
  const where = configsArg.startsWith('grid:') || configsArg === 'peppp' ? `--configs ${configsArg.split(':')[0]}` : configsArg;
  for (const c of configs) {
    const bad = precisionProblem(c.precision);
    if (bad) throw new UsageError(`${where}: configuration '${c.name}': precision ${bad}`);
  }
  let taskLines;
  try { taskLines = readTasksFile(tasksFile); } catch (e) { throw e instanceof TaskError ? new UsageError(e.message) : e; }

  const source = fs.readFileSync(model);
  const id: SweepIdentity = {
    model_sha256: createHash('sha256').update(source).digest('hex'), configs, tasks: taskLines.map((t) => t.spec),
    epochs, max_steps: maxSteps ?? null, seed, batch, optimizer: JSON.stringify(optimizer), backend,
  };
  const inputs = [model, tasksFile, ...(fs.existsSync(configsArg) ? [configsArg] : []),
    ...taskLines.map((t) => parseDataSpec(t.spec).dir).filter((d): d is string => !!d)];
  const mode = checkOutDir(out, id, inputs);

  // Each task's shape and classes (what its artifacts are compiled for); bad data stops here, before anything is written.
  const infos: TaskInfo[] = taskLines.map((t) => {
    try {
      const d = loadTask(t.spec).train;
      return { shape: [...d.shape], classes: d.classes };
    } catch (e) {
      throw new Error(`${tasksFile}:${t.line}: ${(e as Error).message.split('\n')[0]}`);
    }
  });

  fs.mkdirSync(out, { recursive: true });
  lockSweepDir(out);
  if (mode === 'new') writeAtomic(path.join(out, SWEEP_FILE), JSON.stringify({ format: 'lpc-sweep', version: 1, model, ...id } satisfies SweepFile, null, 1) + '\n');
  const queue = new DirQueue(out, id, infos, (precision, info, dir) => compileSweepArtifact(model, precision, info, batch, optimizer, dir), backend);
  queue.writeTables();

  const total = queue.total, before = total - queue.remaining;
  process.stderr.write(`lpc: sweep ${model}: ${id.tasks.length} tasks × ${configs.length} configurations = ${total} cells` +
    `${before ? ` (${before} already done)` : ''}, ${epochs} epoch${epochs > 1 ? 's' : ''}${maxSteps ? ` of ≤ ${maxSteps} steps` : ''}, seed ${seed}, ` +
    `backend ${backend}, ${queueUrl ? 'queued' : workers ? `${workers} worker${workers > 1 ? 's' : ''}` : 'in process'} → ${out}\n`);
  const progress = new Progress();
  const t0 = performance.now();
  let ran = 0;
  let counts: { waiting: number; active: number; failed: number } | undefined; // with --queue: the queue's, as `lpc sweep status` counts
  const failures = () => queue.finished.filter((r) => r.status === 'failed').length;
  queue.onResult = (r: CellResult) => {
    ran++;
    const finished = queue.finished.length;
    const perCell = (performance.now() - t0) / 1000 / ran;
    const eta = perCell * (total - finished);
    const q = counts ? `waiting ${counts.waiting}  active ${counts.active}  ` : '';
    progress.bar('sweep', finished, total, `${q}failed ${failures() + (counts?.failed ?? 0)}  ETA ${clock(eta)}  ${r.id} ${r.status === 'ok' ? `error ${r.error!.toFixed(4)}` : `FAILED: ${r.reason}`}`, true, 'cells ');
  };

  if (queueUrl) await runQueued(queue, { url: queueUrl, name: name ?? defaultName(id), model, infos, onCounts: (c) => { counts = c; } }, (l) => progress.line(l));
  else if (workers === 0) await work(queue);
  else await runWorkers(queue, workers);

  const secs = (performance.now() - t0) / 1000;
  const arts = queue.artifacts.filter((a) => a.fresh);
  const cells = queue.finished.filter((r) => r.status === 'ok');
  const mean = (xs: number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0);
  progress.line(`lpc: sweep finished ${queue.finished.length}/${total} cells (${failures()} failed) in ${clock(secs)}; ` +
    `${arts.length} artifact${arts.length === 1 ? '' : 's'} compiled (mean ${mean(arts.map((a) => a.compile_seconds)).toFixed(2)} s), ` +
    `a cell takes ${mean(cells.map((r) => r.seconds)).toFixed(2)} s (training ${mean(cells.map((r) => r.train_seconds)).toFixed(2)} s) → ${path.join(out, 'errors.csv')}, ${path.join(out, 'memory.csv')}`);
}

/**
 * Runs the queue's cells in `n` forked workers. A worker that exits while running a cell (killed, out of memory, a
 * machine fault) stops the sweep: that cell is not recorded, so rerunning the command retries it.
 */
function runWorkers(queue: DirQueue, n: number): Promise<void> {
  const entry = new URL('../sweep/worker.js', import.meta.url);
  const children = new Set<ReturnType<typeof fork>>();
  let failure: Error | undefined;
  return new Promise((resolve, reject) => {
    const start = () => {
      const child = fork(entry, [], { execArgv: [], env: withoutQueue(process.env), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.add(child);
      let current: CellJob | undefined;
      const send = (m: ToWorker) => { if (child.connected) child.send(m); };
      child.on('message', (m: ToParent) => {
        void (async () => {
          if (m.type === 'claim') {
            current = failure ? undefined : await queue.claim();
            send(current ? { type: 'cell', job: current } : { type: 'done' });
          } else {
            await queue.report(m.result);
            current = undefined;
          }
        })();
      });
      child.on('exit', (code, signal) => {
        children.delete(child);
        if (current && !failure) {
          failure = new Error(`a sweep worker exited (${signal ?? `code ${code}`}) while running cell ${current.id} (${current.task} × ${current.config}); ` +
            'the cell was not recorded: rerun the same command to resume');
          for (const c of children) c.kill();
        }
        if (children.size === 0) (failure ? reject(failure) : resolve());
      });
    };
    for (let i = 0; i < n; i++) start();
  });
}
