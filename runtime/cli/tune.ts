/**
 * `lpc tune <artifact|model.ts> [--batch N] [--force] [--tune-budget S|off|full] [--prune] [--json]`: choose the GEMM tilings
 * of a model on this adapter ahead of training (runtime/webgpu/tune.ts: measured where the cache has no entry, cached
 * on disk), and print the table of choices with where each came from. `lpc run` does the same at first use, within
 * its budget; `--tune-budget off` shows what a run would pick without measuring anything. A full tune times every
 * candidate; `--prune` skips those the cost model predicts clearly slower, as a budgeted run does.
 */
import * as fs from 'node:fs';
import { Module } from '../../ir/graph.js';
import { parseOptimizer } from '../../passes/optimizer.js';
import { readArtifact } from '../artifact.js';
import { DEFAULT_OPTIMIZER, compileModel, modelOptionsFlags } from './compile.js';
import { FlagSpec, Parsed, UsageError, flag, intFlag } from './args.js';
import { budgetMillis, parseTuneBudget } from './backends.js';

export const tuneFlags: FlagSpec[] = [
  { name: 'batch', value: 'N', help: 'batch size for a model file (default 64; an artifact has its own)' },
  { name: 'input', value: 'CxHxW', help: "one sample's shape for a model file, as for lpc compile (default: the model's own)" },
  { name: 'classes', value: 'N', help: "number of classes for a model file, as for lpc compile (default: the model's own)" },
  { name: 'force', help: 'measure again even the shape classes the cache already has' },
  { name: 'tune-budget', value: 'S|off|full', help: "seconds to spend measuring, as lpc run's (default full: every shape class); off shows the picks without measuring" },
  { name: 'prune', help: "time only the candidates the cost model predicts within 2x of its fastest (a budgeted run always does; default for a full tune: every candidate)" },
  { name: 'json', help: 'print the choices as JSON (one object per tiled node)' },
];

export async function tuneCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc tune needs exactly one artifact directory or model file');
  const src = p.positional[0];
  let m: Module;
  if (fs.existsSync(src) && fs.statSync(src).isDirectory()) {
    for (const f of ['batch', 'input', 'classes'])
      if (p.flags.has(f)) throw new UsageError(`--${f} applies to a model file; an artifact was compiled with its own`);
    m = readArtifact(src).module;
  } else {
    if (!src.endsWith('.ts')) throw new UsageError(`'${src}' is neither an artifact directory nor a .ts model file`);
    const batch = intFlag(p, 'batch', 64);
    m = compileModel(src, { batch, optimizer: parseOptimizer(DEFAULT_OPTIMIZER), modelOptions: modelOptionsFlags(p), log: () => {} });
  }
  const { getGpu } = await import('../webgpu/device.js');
  const { tuneModule, tuneTable, cachePath } = await import('../webgpu/tune.js');
  const gpu = await getGpu();
  const budgetMs = budgetMillis(parseTuneBudget(flag(p, 'tune-budget') ?? 'full'));
  const prune = p.flags.has('prune') || undefined; // undefined: pruning only where there is a budget
  const { rows } = await tuneModule(gpu, m, { force: p.flags.has('force'), budgetMs, prune, log: (s) => process.stderr.write(`lpc: ${s}\n`) });
  if (p.flags.has('json')) {
    process.stdout.write(JSON.stringify({ adapter: gpu.adapterDescription, cache: cachePath(), rows }, null, 1) + '\n');
    return;
  }
  process.stdout.write(`adapter: ${gpu.adapterDescription}\ncache: ${cachePath()}\n\n${tuneTable(rows)}\n`);
}
