/** `lpc worker`: runs the cells of distributed sweeps (`lpc sweep --queue`) from a Redis queue; runtime/sweep/consumer.ts. */
import { FlagSpec, Parsed, UsageError, flag, intFlag } from './args.js';
import { urlProblem } from '../sweep/redis.js';
import { runWorker } from '../sweep/consumer.js';

export const workerFlags: FlagSpec[] = [
  { name: 'queue', value: 'URL', help: 'the sweep queue: redis://[user:password@]host:port[/db] (rediss:// for TLS)' },
  { name: 'concurrency', value: 'N', help: 'cells run at once, each in its own process (default 1)' },
  { name: 'stall-seconds', value: 'S', help: "a job's lock: when this worker is gone (killed, frozen) for S seconds its cell goes to another worker (default 30)" },
];

export async function workerCommand(p: Parsed): Promise<void> {
  if (p.positional.length) throw new UsageError(`lpc worker takes no file arguments (got ${p.positional[0]})`);
  const url = flag(p, 'queue');
  if (url === undefined) throw new UsageError('lpc worker needs --queue redis://host:port');
  const bad = urlProblem(url);
  if (bad) throw new UsageError(`--queue ${bad}`);
  await runWorker({ url, concurrency: intFlag(p, 'concurrency', 1, 1), stallSeconds: intFlag(p, 'stall-seconds', 30, 1) });
}
