import * as path from 'node:path';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses, checkPassNames } from '../../passes/pipeline.js';
import { parseOptimizer } from '../../passes/optimizer.js';
import { writeArtifact } from '../artifact.js';
import { FlagSpec, Parsed, UsageError, flag, intFlag } from './args.js';

export const DEFAULT_OPTIMIZER = 'sgd(lr=0.05,momentum=0.9,wd=5e-4)';

export const compileFlags: FlagSpec[] = [
  { name: 'out', alias: '-o', value: 'DIR', help: 'artifact directory (default: <model>.lpc)' },
  { name: 'batch', value: 'N', help: 'batch size compiled into the graphs (default 64)' },
  { name: 'optimizer', value: 'SPEC', help: `optimizer (default ${DEFAULT_OPTIMIZER})` },
  { name: 'print-after', value: 'PASS', help: "print the IR after a pass (repeatable; 'all' for every pass)", repeat: true },
  { name: 'time-passes', help: 'print the time spent in each pass' },
];

export async function compileCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc compile needs exactly one model file');
  const file = p.positional[0];
  const batch = intFlag(p, 'batch', 64);
  const optimizer = parseOptimizer(flag(p, 'optimizer') ?? DEFAULT_OPTIMIZER);
  const printAfter = p.flags.get('print-after') ?? [];
  checkPassNames(printAfter);
  const out = flag(p, 'out') ?? `${path.basename(file).replace(/\.ts$/, '')}.lpc`;
  const t0 = performance.now();
  const traced = frontEnd(file, batch);
  const m = runPasses(traced, { batch, optimizer, printAfter, timePasses: p.flags.has('time-passes') }, performance.now() - t0);
  writeArtifact(out, m, { model: m.name, source: file, batch, optimizer });
  const secs = (performance.now() - t0) / 1000;
  process.stderr.write(`lpc: compiled ${file} → ${out} (${m.graphs.map((g) => `${g.name}: ${g.nodes.length} nodes`).join(', ')}) in ${secs.toFixed(2)} s\n`);
}
