/** `lpc worker`: runs the cells of distributed sweeps (`lpc sweep --queue`) from a Redis queue; runtime/sweep/consumer.ts. */
import { FlagSpec, Parsed, UsageError, flag, intFlag } from './args.js';
import { urlProblem } from '../sweep/redis.js';
import { QUEUE_ENV } from '../sweep/redact.js';
import { runWorker } from '../sweep/consumer.js';

export const workerFlags: FlagSpec[] = [
  { name: 'queue', value: 'URL', help: `the sweep queue: redis://[user:password@]host:port[/db] (rediss:// for TLS), or 'env' (default when set): the URL in $${QUEUE_ENV}, which keeps the password out of ps` },
  { name: 'concurrency', value: 'N', help: 'cells run at once, each in its own process (default 1)' },
  { name: 'stall-seconds', value: 'S', help: "a job's lock: when this worker is gone (killed, frozen) for S seconds its cell goes to another worker (default 30)" },
];

/**
 * The queue URL a `--queue` value names: the URL itself, or with `env` the one in $LPC_QUEUE (so that a password is
 * not in the process's argv, which `ps` shows to every user of the machine). Undefined when no --queue is given.
 */
export function queueUrlOf(p: Parsed): string | undefined {
  const v = flag(p, 'queue');
  if (v !== 'env') return v;
  const url = process.env[QUEUE_ENV];
  if (!url) throw new UsageError(`--queue env: $${QUEUE_ENV} is not set`);
  return url;
}

export function checkQueueUrl(url: string): void {
  const bad = urlProblem(url);
  if (bad) throw new UsageError(`--queue ${bad}`);
}

export async function workerCommand(p: Parsed): Promise<void> {
  if (p.positional.length) throw new UsageError(`lpc worker takes no file arguments (got ${p.positional[0]})`);
  const url = queueUrlOf(p) ?? process.env[QUEUE_ENV];
  if (url === undefined) throw new UsageError('lpc worker needs --queue redis://host:port');
  checkQueueUrl(url);
  await runWorker({ url, concurrency: intFlag(p, 'concurrency', 1, 1), stallSeconds: intFlag(p, 'stall-seconds', 30, 1) });
}
