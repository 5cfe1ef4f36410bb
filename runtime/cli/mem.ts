/** `lpc mem`: the memory plan of a model without running it (compiled in-process, no artifact written). */
import { parseOptimizer } from '../../passes/optimizer.js';
import { MEM_CLASSES, memoryPlanJson } from '../../passes/memory.js';
import { planModule } from '../memory.js';
import { DEFAULT_OPTIMIZER, batchHint, compileModel, modelOptionsFlags, packStateFlag, precisionFlag } from './compile.js';
import { checkFits, lpcCapacity } from '../fit.js';
import { FlagSpec, Parsed, UsageError, asUsage, flag, intFlag } from './args.js';

export const memFlags: FlagSpec[] = [
  { name: 'batch', value: 'N', help: 'batch size compiled into the graphs (default 64)' },
  { name: 'input', value: 'CxHxW', help: "one sample's shape for the model, as for lpc compile (default: the model's own)" },
  { name: 'classes', value: 'N', help: 'number of classes for the model, as for lpc compile (default: the model\'s own)' },
  { name: 'depth', value: 'N', help: "the network's depth for the model, as for lpc compile (default: the model's own)" },
  { name: 'width', value: 'K', help: "the network's width for the model, as for lpc compile (default: the model's own)" },
  { name: 'optimizer', value: 'SPEC', help: `optimizer (default ${DEFAULT_OPTIMIZER}); momentum adds optimizer state` },
  { name: 'precision', value: 'SPEC', help: 'formats per tensor role, as for lpc compile (default: all f32)' },
  { name: 'precision-file', value: 'FILE', help: 'read the precision spec from a file (# starts a comment)' },
  { name: 'pack-state', value: 'on|off', help: 'MX weights (with ACC) and MX optimizer state packed (on, the default) or in f32 buffers (off), as for lpc compile' },
  { name: 'variant', value: 'V', help: 'kernel variant whose scratch buffers are planned: cpu-driver (default, as plan.json) or gpu' },
  { name: 'json', help: 'print JSON: the train graph\'s figures (weights_bytes … peak_bytes) at the top, then every graph' },
];

type PlanJson = ReturnType<typeof memoryPlanJson>;

const LABELS: Record<string, string> = {
  weights: 'weights', gradients: 'gradients', optimizer: 'optimizer state', saved_activations: 'saved activations', workspace: 'workspace',
};
const mib = (b: number) => (b / 2 ** 20).toFixed(3);

/** The plan by class as a table, one column per graph (shared with `lpc inspect`). */
export function memoryTable(j: PlanJson): string {
  const w = 20;
  const row = (label: string, cells: string[]) => `  ${label.padEnd(w)}${cells.map((c) => c.padStart(12)).join('')}`;
  const lines = [row('memory (MiB)', j.graphs.map((g) => g.name))];
  for (const c of MEM_CLASSES) lines.push(row(LABELS[c], j.graphs.map((g) => mib(g[`${c}_bytes` as const]))));
  lines.push(row('live peak', j.graphs.map((g) => mib(g.live_peak_bytes))));
  lines.push(row('peak (allocated)', j.graphs.map((g) => mib(g.peak_bytes))));
  lines.push(
    '  (each class at its own peak; live peak: the most bytes live at once; allocated: the plan\'s buffers, 16-byte aligned)',
    `  all graphs share ${j.pool.length} slots: ${mib(j.allocated_bytes)} MiB allocated with state (${mib(j.unshared_bytes)} MiB with one buffer per value)`,
  );
  return lines.join('\n');
}

export async function memCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc mem needs exactly one model file');
  const file = p.positional[0];
  const batch = intFlag(p, 'batch', 64);
  const optimizer = asUsage(() => parseOptimizer(flag(p, 'optimizer') ?? DEFAULT_OPTIMIZER));
  const precision = precisionFlag(p);
  const variant = flag(p, 'variant') ?? 'cpu-driver';
  if (variant !== 'cpu-driver' && variant !== 'gpu') throw new UsageError(`--variant must be cpu-driver or gpu, got '${variant}'`);
  const m = compileModel(file, { batch, optimizer, precision, modelOptions: modelOptionsFlags(p), packState: packStateFlag(p) });
  const j = memoryPlanJson(planModule(m, variant, checkFits(m, lpcCapacity(), variant, batchHint(batch))), false);
  const train = j.graphs.find((g) => g.name === 'train') ?? j.graphs[0];
  if (p.flags.has('json')) {
    const { name: _n, slots: _s, ...figures } = train;
    process.stdout.write(JSON.stringify({ model: m.name, batch, variant, ...figures, allocated_bytes: j.allocated_bytes, unshared_bytes: j.unshared_bytes, graphs: j.graphs }, null, 1) + '\n');
    return;
  }
  process.stdout.write(`model ${m.name} (${file}), batch ${batch}, kernel variant ${variant}\n${memoryTable(j)}\n`);
}
