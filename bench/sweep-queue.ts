/**
 * Distributed-sweep queue overhead (not a test): `node dist/bench/sweep-queue.js [--workers 1,2,4,8] [--configs 16] [--steps 2]`.
 *
 * Starts a private redis-server on a free port, then for each worker count N: N `lpc worker` processes (started and
 * idle first, so their start-up is not counted), one producer (`lpc sweep --queue`) of 1 synthetic task × --configs
 * float<E,M> configurations, `--max-steps` steps of batch 16, `--backend cpu`. From the jobs' timestamps (BullMQ's
 * enqueue time; the worker's started_at/finished_at in each result) and the recorded cells' mtimes it reports per job:
 *   pickup    started_at − max(enqueued, the same worker's previous finished_at): time a job waited while a worker was free
 *   recorded  mtime of DIR/cells/<id>.json − finished_at: result in Redis → written by the producer (it polls every 500 ms)
 *   in-worker finished_at − started_at − the cell's own seconds: validation, model hash, compile (once per config and worker), IPC
 * and cells/min from the first enqueue to the last recorded cell (the producer's wall time adds its start-up).
 * Then (unless --no-big) the producer's costs at PEPPP's 99 × 87 cells: one poll of every pending job, and recording
 * one result when ~8,600 are recorded. Prints a markdown table and a JSON summary.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Queue } from 'bullmq';
import { Flags } from './common.js';
import { DirQueue, cellId } from '../runtime/sweep/queue.js';

const f = new Flags();
const counts = f.ints('--workers', '1,2,4,8'), nConfigs = f.int('--configs', 16), steps = f.int('--steps', 2);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-bench-sweepq-'));
const LPC = path.resolve('bin/lpc.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const formats: string[] = [];
for (const e of [4, 5, 6, 8]) for (const m of [2, 3, 5, 7, 9, 11]) formats.push(`float<${e},${m}>`);
const configs = [{ name: 'fp32', precision: '' }, ...formats.slice(0, nConfigs - 1).map((fm) => ({
  name: fm.replace(/[<>,]/g, '_'), precision: `W=${fm}:stochastic A=${fm}:stochastic G=${fm}:stochastic`,
}))];
fs.writeFileSync(path.join(tmp, 'configs.json'), JSON.stringify(configs));
fs.writeFileSync(path.join(tmp, 'tasks.txt'), 'synthetic\n');

function lpc(argv: string[]): { proc: ChildProcess; err: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [LPC, ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LPC_STDERR_FILTERED: '1' } });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (t: string) => { err += t; });
  return { proc, err: () => err, exited: new Promise((r) => proc.on('exit', (c) => r(c))) };
}
async function until(ok: () => boolean, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!ok()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(50); }
}
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN; };

const port = await new Promise<number>((res) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); }); });
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
await sleep(500);
const rows: Record<string, number>[] = [];
let big: { cells: number; poll_ms: number; record_ms: number } | undefined;
try {
  for (const [i, n] of counts.entries()) {
    const url = `redis://127.0.0.1:${port}/${i + 1}`;
    const workers = Array.from({ length: n }, () => lpc(['worker', '--queue', url]));
    await until(() => workers.every((w) => w.err().includes('waiting for cells')), 60_000, `${n} workers`);
    const out = path.join(tmp, `w${n}`), t0 = performance.now();
    const p = lpc(['sweep', 'test/fixtures/sweep_tiny.ts', '--configs', path.join(tmp, 'configs.json'), '--tasks', path.join(tmp, 'tasks.txt'),
      '--out', out, '--backend', 'cpu', '--epochs', '1', '--max-steps', String(steps), '--batch', '16', '--queue', url, '--name', `bench${n}`]);
    const code = await p.exited, wall = (performance.now() - t0) / 1000;
    if (code !== 0) throw new Error(`producer with ${n} workers exited ${code}:\n${p.err()}`);
    await Promise.all(workers.map((w) => { w.proc.kill('SIGTERM'); return w.exited; }));
    const q = new Queue('lpc-sweep', { connection: { host: '127.0.0.1', port, db: i + 1 } });
    const jobs = (await q.getJobs(['completed'])).map((j) => ({
      enq: j.timestamp, start: j.returnvalue.started_at!, end: j.returnvalue.finished_at!, worker: j.returnvalue.worker!, cell: j.returnvalue.result.seconds,
      recorded: fs.statSync(path.join(out, 'cells', `${j.data.id}.json`)).mtimeMs,
    }));
    await q.close();
    const pickup: number[] = [];
    for (const w of new Set(jobs.map((j) => j.worker))) {
      const mine = jobs.filter((j) => j.worker === w).sort((a, b) => a.start - b.start);
      mine.forEach((j, k) => pickup.push(j.start - Math.max(j.enq, k ? mine[k - 1].end : 0)));
    }
    const recorded = jobs.map((j) => j.recorded - j.end), inWorker = jobs.map((j) => j.end - j.start - j.cell * 1000);
    const span = (Math.max(...jobs.map((j) => j.recorded)) - Math.min(...jobs.map((j) => j.enq))) / 1000;
    rows.push({ workers: n, cells: jobs.length, wall_s: wall, span_s: span, cells_per_min: (jobs.length / span) * 60, cell_s: mean(jobs.map((j) => j.cell)),
      pickup_ms: mean(pickup), pickup_p90_ms: pct(pickup, 0.9), recorded_ms: mean(recorded), recorded_p90_ms: pct(recorded, 0.9), in_worker_ms: mean(inWorker) });
    process.stderr.write(`${n} worker${n > 1 ? 's' : ''}: ${jobs.length} cells in ${wall.toFixed(1)} s\n`);
  }
  // The producer at PEPPP's size (99 configurations × 87 tasks): one poll of every pending job, and recording one result
  // (DirQueue.report rewrites errors.csv, memory.csv and metrics.jsonl from all results) when ~8,600 are recorded.
  if (!f.has('--no-big')) {
    const T = 87, C = 99, ids: string[] = [];
    for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) ids.push(cellId(t, c));
    const q = new Queue('lpc-sweep', { connection: { host: '127.0.0.1', port, db: 15 } });
    const data = { sweep: 'big', task: 'mnist:classes=0,1', config: 'x', precision: 'W=float<4,3>:stochastic', model: 'models/peppp-lenet5.ts', model_sha256: 'a'.repeat(64),
      info: { shape: [1, 28, 28], classes: 2 }, batch: 64, optimizer: '{"kind":"sgd","lr":0.05,"momentum":0.9,"wd":0.0005}', seed: 0, epochs: 1, max_steps: 60, backend: 'webgpu' };
    for (let i = 0; i < ids.length; i += 1000) await q.addBulk(ids.slice(i, i + 1000).map((id) => ({ name: 'cell', data: { ...data, id }, opts: { jobId: `big.${id}` } })));
    const polls: number[] = [];
    for (let k = 0; k < 3; k++) { const t0 = performance.now(); await Promise.all(ids.map((id) => q.getJob(`big.${id}`))); polls.push(performance.now() - t0); }
    await q.close();
    const dir = path.join(tmp, 'big'), result = (id: string) => ({ id, task: 't', config: 'c', status: 'ok' as const, error: 0.1, test_loss: 0.2,
      train_loss: 0.3, steps: 60, memory_mb: 1.5, seconds: 3, train_seconds: 2, reason: null });
    fs.mkdirSync(path.join(dir, 'cells'), { recursive: true });
    for (const id of ids.slice(0, -10)) fs.writeFileSync(path.join(dir, 'cells', `${id}.json`), JSON.stringify(result(id)));
    const dq = new DirQueue(dir, { model_sha256: 'a', configs: Array.from({ length: C }, (_, c) => ({ name: `c${c}`, precision: '' })),
      tasks: Array.from({ length: T }, (_, t) => `t${t}`), epochs: 1, max_steps: 60, seed: 0, batch: 64, optimizer: '{}', backend: 'cpu' }, [], () => { throw new Error('no compiles'); }, 'cpu');
    const t0 = performance.now();
    for (const id of ids.slice(-10)) await dq.report(result(id));
    big = { cells: ids.length, poll_ms: Math.min(...polls), record_ms: (performance.now() - t0) / 10 };
    process.stderr.write(`${ids.length} cells: a poll of every job ${big.poll_ms.toFixed(0)} ms, recording a result ${big.record_ms.toFixed(0)} ms\n`);
  }
} finally {
  redis.kill('SIGKILL');
}
console.log(`| workers | cells | producer wall s | first enqueue → last recorded s | cells/min | cell s (mean) | pickup ms mean / p90 | finish→recorded ms mean / p90 | in-worker ms (compile, hash, IPC) |`);
console.log(`|---|---|---|---|---|---|---|---|---|`);
for (const r of rows)
  console.log(`| ${r.workers} | ${r.cells} | ${r.wall_s.toFixed(1)} | ${r.span_s.toFixed(1)} | ${r.cells_per_min.toFixed(1)} | ${r.cell_s.toFixed(2)} | ${r.pickup_ms.toFixed(0)} / ${r.pickup_p90_ms.toFixed(0)} | ` +
    `${r.recorded_ms.toFixed(0)} / ${r.recorded_p90_ms.toFixed(0)} | ${r.in_worker_ms.toFixed(0)} |`);
if (big) console.log(`\nproducer at ${big.cells} cells: a poll of every pending job ${big.poll_ms.toFixed(0)} ms; recording one result (rewriting the tables) ${big.record_ms.toFixed(0)} ms`);
console.log(JSON.stringify({ machine: `${os.cpus().length} × ${os.cpus()[0]?.model}`, configs: configs.length, steps, rows, big }));
fs.rmSync(tmp, { recursive: true, force: true });
