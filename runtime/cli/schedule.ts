/** `lpc schedule SPEC --iters N [--json]`: the bit width of a precision schedule at every training iteration. */
import { parseSchedule, PrecisionSpecError, scheduleTable } from '../../ir/precision/index.js';
import { FlagSpec, Parsed, UsageError, intFlag } from './args.js';

export const scheduleFlags: FlagSpec[] = [
  { name: 'iters', value: 'N', help: 'total training iterations (required): a cyclic schedule has floor(N/periods) per cycle' },
  { name: 'json', help: 'print a JSON array with the bits of every iteration (default: one line per run of equal bits)' },
];

export async function scheduleCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError("lpc schedule needs one schedule, e.g. 'cyclic(3,8,periods=32)' or 'const(8)'");
  if (!p.flags.has('iters')) throw new UsageError('lpc schedule needs --iters N');
  const iters = intFlag(p, 'iters', 1);
  let spec;
  try {
    spec = parseSchedule(p.positional[0]);
  } catch (e) {
    if (e instanceof PrecisionSpecError) throw new UsageError(e.lines('schedule'));
    throw e;
  }
  const bits = scheduleTable(spec, iters);
  if (p.flags.has('json')) { process.stdout.write(JSON.stringify(bits) + '\n'); return; }
  const lines: string[] = [];
  for (let a = 0; a < bits.length;) {
    let b = a;
    while (b + 1 < bits.length && bits[b + 1] === bits[a]) b++;
    lines.push(`${a === b ? `${a}` : `${a}-${b}`}\t${bits[a]}`);
    a = b + 1;
  }
  process.stdout.write(`iterations\tbits\n${lines.join('\n')}\n`);
}
