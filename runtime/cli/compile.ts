import * as fs from 'node:fs';
import * as path from 'node:path';
import { frontEndSandboxed as frontEnd } from '../sandbox/trace.js';
import { runPasses, checkPassNames } from '../../passes/pipeline.js';
import { parseOptimizer } from '../../passes/optimizer.js';
import { checkArtifactTarget, writeArtifact } from '../artifact.js';
import { parsePolicy, PrecisionPolicy, PrecisionSpecError, printPolicy } from '../../ir/precision/index.js';
import { FlagSpec, Parsed, UsageError, asUsage, flag, intFlag } from './args.js';
import type { ModelOptions } from '../../dsl/index.js';
import { checkFits, lpcCapacity } from '../fit.js';

export const DEFAULT_OPTIMIZER = 'sgd(lr=0.05,momentum=0.9,wd=5e-4)';

export const compileFlags: FlagSpec[] = [
  { name: 'out', alias: '-o', value: 'DIR', help: 'artifact directory (default: <model>.lpc)' },
  { name: 'batch', value: 'N', help: 'batch size compiled into the graphs (default 64)' },
  { name: 'input', value: 'CxHxW', help: "one sample's shape, passed to the model as options.input, e.g. 1x28x28 (default: the model's own)" },
  { name: 'classes', value: 'N', help: "number of classes, passed to the model as options.classes, e.g. 100 (default: the model's own)" },
  { name: 'depth', value: 'N', help: "the network's depth, passed to the model as options.depth, e.g. 16 for WRN-16-4 (models/wrn.ts; default: the model's own)" },
  { name: 'width', value: 'K', help: "the network's width, passed to the model as options.width, e.g. 4 for WRN-16-4 (WRN's widen factor; default: the model's own)" },
  { name: 'seq-len', value: 'T', help: "a sequence model's length in tokens: the same as --input T (its tokens(o.input?.[0] ?? …) reads it)" },
  { name: 'optimizer', value: 'SPEC', help: `optimizer (default ${DEFAULT_OPTIMIZER}; or adam(lr=1e-3,betas=(0.9,0.999),eps=1e-8,wd=0), adamw(…, wd=1e-2))` },
  { name: 'precision', value: 'SPEC', help: "formats per tensor role, e.g. 'W=bfp<8,axis=0>:stochastic A=bfp<8> E=bfp<8>:stochastic G=bfp<8>:stochastic M=bfp<8>' (default: all f32)" },
  { name: 'precision-file', value: 'FILE', help: 'read the precision spec from a file (# starts a comment)' },
  { name: 'pack-state', value: 'on|off', help: 'store MX weights (with ACC) and MX optimizer state packed (on, the default) or in f32 buffers holding MX values (off, for comparisons)' },
  { name: 'print-after', value: 'PASS', help: "print the IR after a pass (repeatable; 'all' for every pass)", repeat: true },
  { name: 'time-passes', help: 'print the time spent in each pass' },
];

export async function compileCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc compile needs exactly one model file');
  const file = p.positional[0];
  const batch = intFlag(p, 'batch', 64);
  const optimizer = asUsage(() => parseOptimizer(flag(p, 'optimizer') ?? DEFAULT_OPTIMIZER));
  const precision = precisionFlag(p);
  const printAfter = p.flags.get('print-after') ?? [];
  asUsage(() => checkPassNames(printAfter));
  const out = flag(p, 'out') ?? `${path.basename(file).replace(/\.ts$/, '')}.lpc`;
  checkArtifactTarget(out);
  const { module: m, seconds } = compileArtifact(file, out, { batch, optimizer, precision, modelOptions: modelOptionsFlags(p), printAfter, timePasses: p.flags.has('time-passes'), packState: packStateFlag(p) });
  process.stderr.write(`lpc: compiled ${file} → ${out} (${m.graphs.map((g) => `${g.name}: ${g.nodes.length} nodes`).join(', ')}) in ${seconds.toFixed(2)} s\n`);
}

export interface CompileOptions {
  batch: number;
  optimizer: ReturnType<typeof parseOptimizer>;
  precision?: PrecisionPolicy;
  modelOptions: ModelOptions;
  printAfter?: string[];
  timePasses?: boolean;
  /** false: MX weights and optimizer state in f32 buffers (passes/pack-state.ts; default packed). */
  packState?: boolean;
}

/** `--pack-state on|off` (default on). */
export function packStateFlag(p: Parsed): boolean {
  const v = flag(p, 'pack-state') ?? 'on';
  if (v !== 'on' && v !== 'off') throw new UsageError(`--pack-state must be on or off, got '${v}'`);
  return v === 'on';
}

/**
 * The one compile step: the model's front end (type-check, then trace in the sandbox) and the pass pipeline, the
 * result checked against lpc's own size limits. `lpc compile`, `mem`, `tune` and `sweep` all compile through here.
 */
export function compileModel(file: string, o: CompileOptions & { log?: (s: string) => void }): ReturnType<typeof runPasses> {
  const t0 = performance.now();
  const traced = frontEnd(file, o.batch, o.modelOptions);
  const m = runPasses(traced, {
    batch: o.batch, optimizer: o.optimizer, precision: o.precision, printAfter: o.printAfter ?? [], timePasses: o.timePasses ?? false,
    ...(o.packState === false ? { packState: false } : {}),
    ...(o.log ? { log: o.log } : {}),
  }, performance.now() - t0);
  checkFits(m, lpcCapacity(), 'cpu-driver', batchHint(o.batch));
  return m;
}

/** Front end, passes and artifact: what `lpc compile` does (and `lpc sweep` for each configuration it needs). */
export function compileArtifact(file: string, out: string, o: CompileOptions): { module: ReturnType<typeof runPasses>; seconds: number } {
  const t0 = performance.now();
  const m = compileModel(file, o);
  writeArtifact(out, m, { model: m.name, source: file, batch: o.batch, optimizer: o.optimizer, ...(o.precision ? { precision: printPolicy(o.precision) } : {}) });
  return { module: m, seconds: (performance.now() - t0) / 1000 };
}

/** What to change when a plan is too large for the compile options: the batch, or the input shape. */
export const batchHint = (batch: number): string => `lower --batch (now ${batch})${batch === 1 ? ' or the model\'s --input' : ''}`;

/** The policy from --precision or --precision-file; errors name the place (`--precision:1:17:` or `file:2:5:`). */
export function precisionFlag(p: Parsed): PrecisionPolicy | undefined {
  const text = flag(p, 'precision'), file = flag(p, 'precision-file');
  if (text !== undefined && file !== undefined) throw new UsageError('give either --precision or --precision-file, not both');
  if (text === undefined && file === undefined) return undefined;
  let src = text ?? '';
  if (file !== undefined) {
    try { src = fs.readFileSync(file, 'utf8'); } catch (e) { throw new UsageError(`--precision-file: cannot read '${file}': ${(e as Error).message}`); }
  }
  try {
    return parsePolicy(src);
  } catch (e) {
    if (!(e instanceof PrecisionSpecError)) throw e;
    const where = file ?? '--precision';
    throw new UsageError(e.lines(where));
  }
}

/** `--input CxHxW`, `--classes N`, `--depth N` and `--width K` as the options a model's build function receives. */
export function modelOptionsFlags(p: Parsed): ModelOptions {
  const o: { -readonly [k in keyof ModelOptions]: ModelOptions[k] } = {};
  const shape = flag(p, 'input');
  if (shape !== undefined) {
    const dims = shape.split(/[x,]/).map((d) => (/^\d+$/.test(d.trim()) ? Number(d) : NaN));
    if (!dims.every((d) => Number.isInteger(d) && d > 0)) throw new UsageError(`--input must be positive integers like 1x28x28 or 3x32x32, got '${shape}'`);
    o.input = dims;
  }
  if (p.flags.has('seq-len')) {
    if (shape !== undefined) throw new UsageError('--seq-len T is --input T: give one of them');
    o.input = [intFlag(p, 'seq-len', 128, 1)];
  }
  if (p.flags.has('classes')) o.classes = intFlag(p, 'classes', 10, 2);
  for (const k of ['depth', 'width'] as const) if (p.flags.has(k)) o[k] = intFlag(p, k, 1, 1);
  return o;
}
