/** `lpc sweep status|collect --queue URL --name SWEEP [--out DIR]`: a distributed sweep seen from Redis; runtime/sweep/status.ts. */
import * as path from 'node:path';
import { Parsed, UsageError, flag } from './args.js';
import { NAME } from '../sweep/redis.js';
import { collectSweep, formatStatus, sweepStatus } from '../sweep/status.js';
import { checkQueueUrl, queueUrlOf } from './worker.js';

export async function sweepQueueCommand(sub: 'status' | 'collect', p: Parsed): Promise<void> {
  if (p.positional.length > 1) throw new UsageError(`lpc sweep ${sub} takes no file arguments (got ${p.positional[1]})`);
  const allowed = sub === 'status' ? ['queue', 'name'] : ['queue', 'name', 'out'];
  const other = [...p.flags.keys()].find((k) => !allowed.includes(k));
  if (other) throw new UsageError(`--${other} does not go with lpc sweep ${sub}`);
  const url = queueUrlOf(p), name = flag(p, 'name');
  if (url === undefined) throw new UsageError(`lpc sweep ${sub} needs --queue URL`);
  checkQueueUrl(url);
  if (name === undefined) throw new UsageError(`lpc sweep ${sub} needs --name SWEEP`);
  if (!NAME.test(name)) throw new UsageError(`--name must be 1 to 64 letters, digits, _ or -, got '${name}'`);
  if (sub === 'status') { process.stdout.write(formatStatus(await sweepStatus(url, name), url)); return; }
  const out = flag(p, 'out');
  if (out === undefined) throw new UsageError('lpc sweep collect needs --out DIR');
  const { written, had, total } = await collectSweep(url, name, out);
  const missing = total - written - had;
  process.stderr.write(`lpc: sweep collect '${name}': ${written} result${written === 1 ? '' : 's'} written${had ? `, ${had} already there` : ''}` +
    `${missing ? `, ${missing} cell${missing === 1 ? '' : 's'} without a result yet` : ''} → ${path.join(out, 'errors.csv')}, ${path.join(out, 'memory.csv')}\n`);
}
