/**
 * `lpc peppp memory`: each configuration's memory by PEPPP's accounting (runtime/peppp/memory.ts; reproduces the
 * authors' released matrix) and, beside it, lpc's own plan of the training step with every tensor stored at its
 * format's width (`planned_mb`) and as lpc allocates it today, in f32 (`planned_f32_mb`).
 */
import { runPasses } from '../../passes/pipeline.js';
import { parseOptimizer } from '../../passes/optimizer.js';
import { packedBytes, planModuleMemory, valueBytes, align16 } from '../../passes/memory.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { formatBits, formatBitsWithScale, formatToString } from '../../ir/format.js';
import { Module } from '../../ir/graph.js';
import { typeCheck } from '../../dsl/frontend.js';
import { traceSandboxed } from '../sandbox/trace.js';
import { moduleKernels, nodeKernels } from '../memory.js';
import { PepppCounts, pepppMemoryMB, lowHigh } from '../peppp/memory.js';
import { loadConfigs } from '../sweep/configs.js';
import { DEFAULT_OPTIMIZER, modelOptionsFlags } from './compile.js';
import { FlagSpec, Parsed, UsageError, asUsage, flag, intFlag } from './args.js';

export const pepppMemoryFlags: FlagSpec[] = [
  { name: 'batch', value: 'B', help: 'batch size (PEPPP: 32; default 32)' },
  { name: 'input', value: 'CxHxW', help: "one sample's shape (default: the model's own)" },
  { name: 'classes', value: 'K', help: "number of classes (default: the model's own)" },
  { name: 'configs', value: 'peppp|grid:…|FILE.json', help: 'the configurations, as for lpc sweep (default peppp: the 99 of PEPPP)' },
  { name: 'optimizer', value: 'SPEC', help: `optimizer for lpc's own plan (default ${DEFAULT_OPTIMIZER})` },
  { name: 'no-planned', help: "skip lpc's own plan (one compile per distinct set of widths)" },
  { name: 'json', help: 'print {"configs":[{"column","name","low","high","memory_mb","planned_mb","planned_f32_mb"},…]}' },
];

const MiB = 2 ** 20;

export async function pepppMemoryCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc peppp memory needs exactly one model file');
  const file = p.positional[0];
  const batch = intFlag(p, 'batch', 32);
  const options = modelOptionsFlags(p);
  const configs = asUsage(() => loadConfigs(flag(p, 'configs') ?? 'peppp'));
  const optimizer = asUsage(() => parseOptimizer(flag(p, 'optimizer') ?? DEFAULT_OPTIMIZER));
  const policies = configs.map((c) => {
    try { return parsePolicy(c.precision); } catch (e) { throw new Error(`configuration '${c.name}': ${(e as Error).message.split('\n')[0]}`); }
  });
  typeCheck(file);
  const { module: traced, counts } = traceSandboxed(file, batch, options, { counts: true }) as { module: Module; counts: PepppCounts };
  const planned = new Map<string, { packed: number; f32: number }>();
  const plan = (spec: string, key: string): { packed: number; f32: number } => {
    if (!planned.has(key)) {
      const m: Module = runPasses(structuredClone(traced), { batch, optimizer, precision: parsePolicy(spec) });
      const kernels = moduleKernels(m, 'cpu-driver');
      const k = (g: Module['graphs'][number]) => (id: number) => nodeKernels(g, id, kernels.get(g.name)![id]);
      const train = (bytes: typeof valueBytes) => planModuleMemory(m, k, align16, bytes).graphs.find((g) => g.graph === 'train')!.live_peak_bytes;
      planned.set(key, { packed: train(packedBytes), f32: train(valueBytes) });
      if (process.stderr.isTTY) process.stderr.write(`\rlpc peppp memory: planned ${planned.size} distinct sets of widths`);
    }
    return planned.get(key)!;
  };
  const rows = configs.map((c, column) => {
    const { low, high } = lowHigh(policies[column]);
    const row: Record<string, unknown> = {
      column, name: c.name, low: formatToString(low), high: formatToString(high),
      memory_mb: pepppMemoryMB(counts, formatBitsWithScale(low), formatBitsWithScale(high)),
    };
    if (!p.flags.has('no-planned')) {
      // lpc's packed plan depends only on each role's and class's width: equal widths share one compile
      const pol = policies[column];
      // (an MX format's packed size also depends on its blocks: keyed by the whole format)
      const widths = JSON.stringify([pol.classes, pol.roles].map((o) => Object.entries(o ?? {}).map(([k, r]) => [k, r.fmt.kind === 'mx' ? formatToString(r.fmt) : formatBits(r.fmt)])));
      const pl = plan(c.precision, widths);
      row.planned_mb = pl.packed / MiB;
      row.planned_f32_mb = pl.f32 / MiB;
    }
    return row;
  });
  if (planned.size && process.stderr.isTTY) process.stderr.write('\n');
  if (p.flags.has('json')) {
    process.stdout.write(JSON.stringify({ model: traced.name, batch, counts, configs: rows }, null, 1) + '\n');
    return;
  }
  process.stdout.write(`model ${traced.name} (${file}), batch ${batch}: P=${counts.params} A=${counts.activations} Z=${counts.output} I=${counts.input}\n`);
  process.stdout.write(`column  name                 low          high         PEPPP MB${p.flags.has('no-planned') ? '' : '   lpc packed MB   lpc f32 MB'}\n`);
  for (const r of rows)
    process.stdout.write(`${String(r.column).padStart(6)}  ${String(r.name).padEnd(20)} ${String(r.low).padEnd(12)} ${String(r.high).padEnd(12)} ${(r.memory_mb as number).toFixed(4).padStart(10)}` +
      (r.planned_mb !== undefined ? `${(r.planned_mb as number).toFixed(3).padStart(16)}${(r.planned_f32_mb as number).toFixed(3).padStart(13)}` : '') + '\n');
}
