/**
 * `lpc inspect`: what one step of each graph does — kernels, dispatches, FLOPs, bytes moved — the memory plan and the IR;
 * given a metrics file instead, its summary and quantizer statistics (./inspect-metrics.ts).
 */
import { readArtifact } from '../artifact.js';
import { memoryTable } from './mem.js';
import { printModule } from '../../ir/print.js';
import * as fs from 'node:fs';
import { FlagSpec, Parsed, UsageError } from './args.js';
import { metricsSummary } from './inspect-metrics.js';
import { formatOptimizer } from '../../passes/optimizer.js';

export const inspectFlags: FlagSpec[] = [
  { name: 'ir', help: 'also print the IR text (with --json: as the field ir)' },
  { name: 'json', help: 'print the plan as JSON' },
];

const mb = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

export async function inspectCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc inspect needs one artifact directory (or a metrics file)');
  // a metrics file (lpc run --metrics): its summary and the quantizer statistics of --quant-stats
  if (fs.existsSync(p.positional[0]) && fs.statSync(p.positional[0]).isFile()) {
    process.stdout.write(metricsSummary(p.positional[0], p.flags.has('json')) + '\n');
    return;
  }
  const a = readArtifact(p.positional[0]);
  if (p.flags.has('json')) {
    const ir = p.flags.has('ir') ? { ir: printModule(a.module) } : {};
    process.stdout.write(JSON.stringify({ manifest: a.manifest, plan: a.plan, ...ir }, null, 1) + '\n');
    return;
  }
  const o = a.manifest.options;
  const lines = [`artifact ${a.dir}: model ${o.model} (${o.source}), batch ${o.batch}, optimizer ${formatOptimizer(o.optimizer)}, precision ${o.precision ?? "f32"}`];
  for (const g of a.plan.graphs) {
    const flops = g.dispatches.reduce((s, d) => s + d.flops, 0);
    const kernels = new Set(g.dispatches.map((d) => d.key)).size;
    const read = g.dispatches.reduce((s, d) => s + (d.read_bytes ?? 0), 0), written = g.dispatches.reduce((s, d) => s + (d.write_bytes ?? 0), 0);
    lines.push(`\ngraph ${g.name}: ${g.dispatches.length} dispatches per step, ${kernels} distinct kernels, ${(flops / 1e9).toFixed(3)} GFLOP, ` +
      `${mb(read)} read + ${mb(written)} written (bound buffers), one buffer per value ${mb(g.buffer_bytes)}`);
    const byOp = new Map<string, { n: number; flops: number; bytes: number }>();
    for (const d of g.dispatches) {
      const e = byOp.get(d.op) ?? { n: 0, flops: 0, bytes: 0 };
      e.n++; e.flops += d.flops; e.bytes += (d.read_bytes ?? 0) + (d.write_bytes ?? 0);
      byOp.set(d.op, e);
    }
    for (const [op, e] of [...byOp].sort((x, y) => y[1].flops - x[1].flops))
      lines.push(`  ${op.padEnd(20)} ${String(e.n).padStart(4)} dispatches  ${(e.flops / 1e6).toFixed(1).padStart(9)} MFLOP  ${(e.bytes / 2 ** 20).toFixed(2).padStart(8)} MiB moved`);
  }
  if (a.plan.memory) lines.push('', memoryTable(a.plan.memory));
  process.stdout.write(lines.join('\n') + '\n');
  if (p.flags.has('ir')) process.stdout.write('\n' + printModule(a.module));
}
