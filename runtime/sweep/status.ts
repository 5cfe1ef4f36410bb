/**
 * `lpc sweep status` and `lpc sweep collect`: a sweep seen from Redis alone, without its producer. Both read the
 * sweep's meta (`lpc:sweep:<name>:meta`, written by the producer when it takes the name) and its jobs by id.
 *
 * status: cells waiting (queued, delayed for a retry, or not enqueued yet), active, done (a result: ok or the cell's
 * own failure), failed (refused, or machine faults on every try); per worker (host:pid, from the results) the cells
 * done and cells/min over its busy span; an ETA from the summed rates of the workers seen in the last 10 minutes.
 * collect: writes every result stored in Redis into DIR (cells/, errors.csv, memory.csv, metrics.jsonl).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { writeAtomic } from '../files.js';
import { DirQueue, SWEEP_FILE, SweepFile, cellId, lockSweepDir } from './queue.js';
import { QUEUE_NAME, RemoteCell, RemoteResult, SweepMeta, identityKey, jobId, metaKey, probe, redactUrl } from './redis.js';
import { checkOutDir } from './outdir.js';

export interface WorkerRate { worker: string; cells: number; per_min: number | null; last: number }
export interface SweepStatus {
  name: string; total: number; waiting: number; active: number; done: number; failed: number; failed_cells: number;
  workers: WorkerRate[]; eta_seconds: number | null; reasons: string[];
}

type CellJob = Job<RemoteCell, RemoteResult>;

/** Opens the queue and reads the sweep's meta and jobs; `use` gets them, then everything is closed. */
async function withSweep<T>(url: string, name: string, use: (meta: SweepMeta, jobs: (CellJob | undefined)[]) => Promise<T>): Promise<T> {
  await probe(url);
  const conn = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  conn.on('error', () => {});
  const queue = new Queue<RemoteCell, RemoteResult>(QUEUE_NAME, { connection: conn });
  queue.on('error', () => {});
  try {
    const text = await conn.get(metaKey(name));
    if (!text) {
      const held = await conn.exists(identityKey(name));
      throw new Error(`${redactUrl(url)} holds no sweep named '${name}'${held ? ' (only its name: it was made by an older lpc without status support)' : ''}`);
    }
    const meta = JSON.parse(text) as SweepMeta;
    const ids: string[] = [];
    for (let t = 0; t < meta.identity.tasks.length; t++) for (let c = 0; c < meta.identity.configs.length; c++) ids.push(jobId(name, cellId(t, c)));
    const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
    return await use(meta, jobs);
  } finally {
    await queue.close().catch(() => {});
    conn.disconnect();
  }
}

export async function sweepStatus(url: string, name: string, now = Date.now()): Promise<SweepStatus> {
  return withSweep(url, name, async (meta, jobs) => {
    const s: SweepStatus = { name, total: jobs.length, waiting: 0, active: 0, done: 0, failed: 0, failed_cells: 0, workers: [], eta_seconds: null, reasons: [] };
    const byWorker = new Map<string, { cells: number; first: number; last: number }>();
    for (const job of jobs) {
      if (!job) { s.waiting++; continue; }
      const state = job.finishedOn ? (job.returnvalue ? 'completed' : 'failed') : job.processedOn ? await job.getState() : 'waiting';
      if (state === 'completed') {
        s.done++;
        const r = job.returnvalue;
        if (r.result.status === 'failed') s.failed_cells++;
        const w = r.worker ?? 'unknown', start = r.started_at ?? job.processedOn ?? job.finishedOn!, end = r.finished_at ?? job.finishedOn!;
        const e = byWorker.get(w);
        if (e) { e.cells++; e.first = Math.min(e.first, start); e.last = Math.max(e.last, end); } else byWorker.set(w, { cells: 1, first: start, last: end });
      } else if (state === 'failed') { s.failed++; if (s.reasons.length < 3) s.reasons.push(`${job.data.id}: ${job.failedReason}`); }
      else if (state === 'active') s.active++;
      else s.waiting++;
    }
    let rate = 0;
    for (const [worker, e] of byWorker) {
      const per_min = e.last > e.first ? (e.cells * 60_000) / (e.last - e.first) : null;
      s.workers.push({ worker, cells: e.cells, per_min, last: e.last });
      if (per_min !== null && now - e.last < 10 * 60_000) rate += per_min;
    }
    s.workers.sort((a, b) => a.worker.localeCompare(b.worker));
    const left = s.waiting + s.active;
    s.eta_seconds = left === 0 ? 0 : rate > 0 ? (left / rate) * 60 : null;
    void meta;
    return s;
  });
}

const clock = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

export function formatStatus(s: SweepStatus, url: string): string {
  const lines = [`sweep '${s.name}' on ${redactUrl(url)}: ${s.total} cells: waiting ${s.waiting}, active ${s.active}, done ${s.done}` +
    `${s.failed_cells ? ` (${s.failed_cells} of them failed cells)` : ''}, failed ${s.failed}; ` +
    `ETA ${s.eta_seconds === null ? 'unknown (no worker has finished a cell lately)' : clock(s.eta_seconds)}`];
  for (const w of s.workers) lines.push(`  worker ${w.worker}: ${w.cells} cell${w.cells === 1 ? '' : 's'}, ${w.per_min === null ? '-' : w.per_min.toFixed(2)} cells/min`);
  for (const r of s.reasons) lines.push(`  failed ${r}`);
  return lines.join('\n') + '\n';
}

/** Writes the results stored in Redis into `out` (new, empty, or this very sweep); the counts. */
export async function collectSweep(url: string, name: string, out: string): Promise<{ written: number; had: number; total: number }> {
  return withSweep(url, name, async (meta, jobs) => {
    const mode = checkOutDir(out, meta.identity, []);
    fs.mkdirSync(path.join(out, 'cells'), { recursive: true });
    lockSweepDir(out);
    if (mode === 'new') writeAtomic(path.join(out, SWEEP_FILE), JSON.stringify({ format: 'lpc-sweep', version: 1, model: meta.model, ...meta.identity } satisfies SweepFile, null, 1) + '\n');
    let written = 0, had = 0;
    for (const job of jobs) {
      if (!job?.finishedOn || !job.returnvalue) continue;
      const { result, metrics } = job.returnvalue;
      if (result.id !== job.data.id) throw new Error(`job ${job.id}: its result is for cell ${result.id}`);
      const file = path.join(out, 'cells', `${result.id}.json`);
      if (fs.existsSync(file)) { had++; continue; }
      if (metrics !== null) writeAtomic(path.join(out, 'cells', `${result.id}.jsonl`), metrics);
      writeAtomic(file, JSON.stringify(result, null, 1) + '\n');
      written++;
    }
    const q = new DirQueue(out, meta.identity, meta.infos, () => { throw new Error('lpc sweep collect compiles nothing'); }, meta.identity.backend);
    q.writeTables();
    return { written, had, total: jobs.length };
  });
}
