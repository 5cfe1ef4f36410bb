/**
 * `lpc sweep --queue`: enqueue the sweep's unfinished cells as BullMQ jobs and record their results in the sweep
 * directory as they finish, exactly as a local sweep would (DirQueue.report writes the cell, the tables and the progress).
 *
 * The producer only adds jobs and polls them: it can be killed and restarted at any time (it re-attaches, by the
 * sweep's name: cells already recorded in DIR are not looked at, cells finished meanwhile are collected, cells still
 * queued are left as they are). A cell whose job is gone (Redis restarted without persistence) is added again.
 */
import { Queue, Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { writeAtomic } from '../files.js';
import { UsageError } from '../cli/args.js';
import { cellId, DirQueue, TaskInfo } from './queue.js';
import * as path from 'node:path';
import { ATTEMPTS, QUEUE_NAME, RemoteCell, RemoteResult, SweepMeta, connect, identityDifference, identityHash, identityKey, jobId, metaKey, probe, redactUrl } from './redis.js';

export interface QueuedSweep {
  url: string; name: string; model: string; infos: TaskInfo[]; pollMs?: number;
  /** Called when the queue's counts of this run's unrecorded cells change (the progress line shows them). */
  onCounts?: (c: { waiting: number; active: number; failed: number }) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Takes the sweep's name in Redis (its hash, and its meta for `lpc sweep status|collect`), or refuses, naming what differs, when it names another sweep. */
async function claimName(conn: Redis, name: string, hash: string, meta: SweepMeta): Promise<void> {
  await conn.set(identityKey(name), hash, 'NX');
  if ((await conn.get(identityKey(name))) !== hash) {
    const old = await conn.get(metaKey(name));
    let what = 'other options';
    try { if (old) what = `other options: ${identityDifference((JSON.parse(old) as SweepMeta).identity, meta.identity)} differ`; } catch { /* an unreadable meta: say no more */ }
    throw new UsageError(`--name ${name}: the queue already holds a sweep of that name made with ${what}; choose another --name`);
  }
  await conn.set(metaKey(name), JSON.stringify(meta), 'NX');
}

/** Runs `q`'s unfinished cells on the queue's workers; resolves when every cell is recorded. */
export async function runQueued(q: DirQueue, s: QueuedSweep, log: (line: string) => void): Promise<void> {
  await probe(s.url);
  const conn = connect(s.url, 'lpc sweep');
  const meta: SweepMeta = { model: s.model, identity: q.id, infos: s.infos };
  const queue = new Queue<RemoteCell, RemoteResult>(QUEUE_NAME, { connection: conn });
  queue.on('error', () => {}); // the connection reports its outages itself
  const hash = identityHash(q.id);
  const cellOf = (t: number, c: number): RemoteCell => ({
    sweep: s.name, id: cellId(t, c), task: q.id.tasks[t], config: q.id.configs[c].name, precision: q.id.configs[c].precision,
    model: s.model, model_sha256: q.id.model_sha256, info: s.infos[t], batch: q.id.batch, optimizer: q.id.optimizer,
    seed: q.id.seed, epochs: q.id.epochs, max_steps: q.id.max_steps, backend: q.id.backend,
  });
  const add = (cells: { t: number; c: number }[]) => queue.addBulk(cells.map(({ t, c }) => ({
    name: 'cell', data: cellOf(t, c),
    opts: { jobId: jobId(s.name, cellId(t, c)), attempts: ATTEMPTS, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: false, removeOnFail: false },
  })));
  let last: { waiting: number; active: number; failed: number } | undefined;
  const lost = new Map<string, string>(); // cells whose jobs failed this run (machine faults on every try): not recorded
  try {
    await claimName(conn, s.name, hash, meta);
    for (let round = 0; ; round++) {
      const pending = q.unfinished.filter(({ t, c }) => !lost.has(cellId(t, c)));
      if (!pending.length) break;
      const jobs = await Promise.all(pending.map(({ t, c }) => queue.getJob(jobId(s.name, cellId(t, c)))));
      const missing: { t: number; c: number }[] = [];
      let retried = 0;
      const counts = { waiting: 0, active: 0, failed: lost.size };
      for (let i = 0; i < pending.length; i++) {
        const job = jobs[i], id = cellId(pending[i].t, pending[i].c);
        if (!job) { missing.push(pending[i]); continue; }
        if (!job.finishedOn) { if (job.processedOn) counts.active++; else counts.waiting++; continue; }
        const state = await job.getState();
        if (state === 'completed') await record(q, job);
        else if (state === 'failed') {
          // a job that failed on its workers is a machine fault: retried when the producer (re)starts, else reported
          if (round === 0 && !/^refused by /.test(job.failedReason)) { await job.retry('failed'); retried++; counts.waiting++; }
          else { lost.set(id, job.failedReason); counts.failed++; }
        }
      }
      counts.waiting += missing.length;
      if (JSON.stringify(counts) !== JSON.stringify(last)) { last = counts; s.onCounts?.(counts); }
      if (missing.length) {
        if (round) await claimName(conn, s.name, hash, meta); // Redis lost its data: take the name again
        await add(missing);
      }
      if (round === 0)
        log(`lpc: sweep queued on ${redactUrl(s.url)} as '${s.name}': ${missing.length} cell${missing.length === 1 ? '' : 's'} enqueued, ` +
          `${pending.length - missing.length} already in the queue${retried ? ` (${retried} failed ones retried)` : ''}; waiting for workers (lpc worker --queue …)`);
      else if (missing.length) log(`lpc: sweep: ${missing.length} cell${missing.length === 1 ? '' : 's'} had no job in the queue (was Redis restarted?); enqueued again`);
      await sleep(s.pollMs ?? 500);
    }
    if (lost.size)
      throw new Error(`${lost.size} cell${lost.size === 1 ? '' : 's'} failed on the workers (refused, or machine faults on all ${ATTEMPTS} tries) and ` +
        `${lost.size === 1 ? 'was' : 'were'} not recorded (${[...lost].slice(0, 3).map(([id, why]) => `${id}: ${why}`).join('; ')}); rerun the same command to retry`);
  } finally {
    await queue.close().catch(() => {});
    conn.disconnect();
  }
}

/** Writes a finished job's metrics and result into the sweep directory. */
export async function record(q: DirQueue, job: Job<RemoteCell, RemoteResult>): Promise<void> {
  const { result, metrics } = job.returnvalue;
  if (result.id !== job.data.id) throw new Error(`job ${job.id}: its result is for cell ${result.id}`);
  if (metrics !== null) writeAtomic(path.join(q.dir, 'cells', `${result.id}.jsonl`), metrics);
  await q.report(result);
}
