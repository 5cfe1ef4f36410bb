/** `lpc inspect`: what one step of each graph does — kernels, dispatches, FLOPs, buffer bytes — and the IR. */
import { readArtifact } from '../artifact.js';
import { printModule } from '../../ir/print.js';
import { FlagSpec, Parsed, UsageError } from './args.js';

export const inspectFlags: FlagSpec[] = [
  { name: 'ir', help: 'also print the IR text' },
  { name: 'json', help: 'print the plan as JSON' },
];

const mb = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

export async function inspectCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc inspect needs one artifact directory');
  const a = readArtifact(p.positional[0]);
  if (p.flags.has('json')) { process.stdout.write(JSON.stringify({ manifest: a.manifest, plan: a.plan }, null, 1) + '\n'); return; }
  const o = a.manifest.options;
  const lines = [`artifact ${a.dir}: model ${o.model} (${o.source}), batch ${o.batch}, optimizer sgd(lr=${o.optimizer.lr},momentum=${o.optimizer.momentum},wd=${o.optimizer.wd}), precision ${o.precision ?? "f32"}`];
  for (const g of a.plan.graphs) {
    const flops = g.dispatches.reduce((s, d) => s + d.flops, 0);
    const kernels = new Set(g.dispatches.map((d) => d.key)).size;
    lines.push(`\ngraph ${g.name}: ${g.dispatches.length} dispatches per step, ${kernels} distinct kernels, ${(flops / 1e9).toFixed(3)} GFLOP, value buffers ${mb(g.buffer_bytes)}`);
    const byOp = new Map<string, { n: number; flops: number }>();
    for (const d of g.dispatches) {
      const e = byOp.get(d.op) ?? { n: 0, flops: 0 };
      e.n++; e.flops += d.flops;
      byOp.set(d.op, e);
    }
    for (const [op, e] of [...byOp].sort((x, y) => y[1].flops - x[1].flops))
      lines.push(`  ${op.padEnd(20)} ${String(e.n).padStart(4)} dispatches  ${(e.flops / 1e6).toFixed(1).padStart(9)} MFLOP`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  if (p.flags.has('ir')) process.stdout.write('\n' + printModule(a.module));
}
