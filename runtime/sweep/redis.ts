/**
 * Distributed sweeps on BullMQ + Redis: what the producer (`lpc sweep --queue`) and the workers (`lpc worker`) share.
 *
 * One BullMQ queue, `lpc-sweep`, per Redis database serves every sweep. A job is one cell: its id is
 * `<sweep name>.<cell id>` (`sweep-3f2a….t000-c001`), so adding a cell twice adds nothing. The job's data says all a
 * worker needs to compile and train the cell (the model path and its hash, precision, shape, classes, batch,
 * optimizer, seed, epochs, steps, backend); its return value is the cell's result and its epoch metrics.
 * `lpc:sweep:<name>` holds the hash of the sweep's identity, so a name cannot be reused for another sweep.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { CellResult } from './cell.js';
import type { SweepIdentity, TaskInfo } from './queue.js';
import { redact } from './redact.js';

export const QUEUE_NAME = 'lpc-sweep';
/** Tries per job: a machine fault (a worker without the model, a lost backend, a crashed cell process) is retried this often, on any worker. */
export const ATTEMPTS = 5;
/** Times a job may lose its worker (killed, frozen) and be handed to another before it counts as failed. */
export const MAX_STALLED = 2;

/** A cell as a job: everything a worker on another machine needs. */
export interface RemoteCell {
  sweep: string;
  id: string;
  task: string;
  config: string;
  precision: string;
  /** The model file as given to `lpc sweep`; a worker resolves it against its own working directory. */
  model: string;
  model_sha256: string;
  info: TaskInfo;
  batch: number;
  /** The optimizer as JSON (SweepIdentity.optimizer). */
  optimizer: string;
  seed: number;
  epochs: number;
  max_steps: number | null;
  backend: string;
}

/**
 * What a worker returns for a cell: the result (ok, or the cell's own failure), its epoch metrics (JSON lines), the
 * worker (`host:pid`) and when it took and finished the job (ms since the epoch; for `lpc sweep status`).
 */
export interface RemoteResult { result: CellResult; metrics: string | null; worker?: string; started_at?: number; finished_at?: number }

/** What `lpc:sweep:<name>:meta` holds: enough to rebuild the sweep directory (`lpc sweep collect`) and to name differences. */
export interface SweepMeta { model: string; identity: SweepIdentity; infos: TaskInfo[] }
export const metaKey = (sweep: string) => `lpc:sweep:${sweep}:meta`;

export const jobId = (sweep: string, cell: string) => `${sweep}.${cell}`;
export const identityKey = (sweep: string) => `lpc:sweep:${sweep}`;
export const identityHash = (id: SweepIdentity) => createHash('sha256').update(JSON.stringify(id)).digest('hex');
/** `--name` when none is given: the identity's hash, so the same sweep started twice shares its jobs. */
export const defaultName = (id: SweepIdentity) => `sweep-${identityHash(id).slice(0, 12)}`;
export const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The URL with its password replaced by `***`, for messages. */
export const redactUrl = redact;

/** Checks a `--queue` URL: `redis://[user:password@]host:port[/db]` (or rediss:// for TLS); the reason when it is not one. */
export function urlProblem(url: string): string | undefined {
  let u: URL;
  try { u = new URL(url); } catch { return `'${redactUrl(url)}' is not a URL; expected redis://[user:password@]host:port[/db]`; }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return `'${redactUrl(url)}': expected redis://[user:password@]host:port[/db]`;
  if (!u.hostname) return `'${redactUrl(url)}': no host`;
  if (u.pathname && u.pathname !== '/' && !/^\/\d+$/.test(u.pathname)) return `'${redactUrl(url)}': the database must be a number (/0, /1, …)`;
  return undefined;
}

/**
 * Checks that Redis answers at `url` with these credentials, within `ms`: a one-line error otherwise (unreachable, a
 * wrong or missing password). Run before the forever-reconnecting connection, so that a typo fails fast.
 */
export async function probe(url: string, ms = 4000): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: ms, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let lastError: string | undefined; // the socket's own error (ECONNREFUSED …), when the promise says only 'Connection is closed'
  r.on('error', (e: Error) => { lastError = e.message; });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      r.connect().then(() => r.ping()),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${ms / 1000} s`)), ms); }),
    ]);
  } catch (e) {
    const auth = /WRONGPASS|NOAUTH|invalid password|without any password|\bAUTH\b/i;
    const said = String((e as Error).message ?? e);
    const m = redact((auth.test(said) || !lastError ? said : lastError).split('\n')[0]);
    if (auth.test(m))
      throw new Error(`redis ${redact(url)} refused the credentials (${m}); check the password in the URL`);
    throw new Error(`cannot reach redis ${redact(url)} (${m}); is redis-server running and reachable there?`);
  } finally {
    clearTimeout(timer);
    r.disconnect();
  }
}

/** What differs between two sweeps' identities, in words: `seed (1 there, 2 here), configs (2 there, 3 here)`. */
export function identityDifference(there: SweepIdentity, here: SweepIdentity): string {
  const out: string[] = [];
  for (const k of Object.keys(here) as (keyof SweepIdentity)[]) {
    const a = there[k], b = here[k];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (k === 'model_sha256') out.push(`model (sha256 ${String(a).slice(0, 12)}… there, ${String(b).slice(0, 12)}… here)`);
    else if (Array.isArray(a) && Array.isArray(b)) {
      const names = (xs: unknown[]) => xs.map((x) => JSON.stringify(x));
      const only = names(b).filter((x) => !names(a).includes(x));
      out.push(`${k} (${a.length} there, ${b.length} here${only.length ? `; new here: ${only.slice(0, 2).join(', ')}${only.length > 2 ? ', …' : ''}` : ''})`);
    } else out.push(`${k} (${JSON.stringify(a)} there, ${JSON.stringify(b)} here)`);
  }
  return out.join(', ') || 'unknown options';
}

/**
 * A connection that reconnects forever (Redis restarted, the network gone a while) and holds commands until it is
 * back, reporting the outage once on stderr as `who`.
 */
export function connect(url: string, who: string): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(250 * times, 2000) });
  let down = false, last = 'connection closed';
  r.on('error', (e: Error) => { last = redact(e.message.split('\n')[0]); });
  r.on('reconnecting', () => {
    if (down) return;
    down = true;
    process.stderr.write(`${who}: redis ${redactUrl(url)}: ${last}; reconnecting\n`);
  });
  r.on('ready', () => {
    if (down) process.stderr.write(`${who}: redis ${redactUrl(url)}: reconnected\n`);
    down = false;
  });
  return r;
}
