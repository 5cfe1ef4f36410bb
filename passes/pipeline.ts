/**
 * The pass pipeline, as one named list. `--print-after NAME` prints the module after that pass,
 * `--time-passes` reports each pass's time; the verifier runs after every pass when `verifyEach` is set (tests).
 */
import { Module, dce } from '../ir/graph.js';
import { printModule } from '../ir/print.js';
import { verifyModule } from '../ir/verify.js';
import { autodiff } from './autodiff.js';
import { optimizer, OptimizerOptions } from './optimizer.js';
import { quantizePass } from './quantize.js';
import { FusionRule, applyRuleToModule, dropIdentityQuantizer, foldElementwise, foldQpostRelu, foldQuantizer, recomputeSharedElementwise, refoldElementwise } from './fuse.js';
import { fuseCompressProducers } from './fuse-compress.js';
import { compressPass } from './compress.js';
import { packStatePass } from './pack-state.js';
import { checkModes } from './check-modes.js';
import { PrecisionPolicy } from '../ir/precision/index.js';

export interface CompileOptions {
  batch: number;
  optimizer: OptimizerOptions;
  /** false: leave quantizers as separate nodes (benchmarks, tests). */
  fuse?: boolean;
  /** false: keep MX weights (with ACC) and optimizer state in f32 buffers (passes/pack-state.ts; default packed). */
  packState?: boolean;
  /** Formats per tensor role (absent: everything f32). */
  precision?: PrecisionPolicy;
  /** Pass names after which to print the module (or 'all'). */
  printAfter?: string[];
  timePasses?: boolean;
  verifyEach?: boolean;
  /** Where prints and timings go (stderr by default). */
  log?: (s: string) => void;
}

export interface Pass { name: string; run(m: Module, o: CompileOptions): Module }

/** A fusion rule as a pass (skipped when `fuse` is false). */
function fusion(rule: FusionRule): Pass {
  return { name: rule.name, run: (m, o) => (o.fuse === false ? m : applyRuleToModule(rule, m)) };
}

export const PASSES: Pass[] = [
  // Train and eval must be one model: eval is train's forward part with only the documented mode differences.
  { name: 'check-modes', run: (m) => { checkModes(m); return m; } },
  // A and E quantizers go in before autodiff: a quantizer's gradient rule quantizes the error.
  { name: 'quantize', run: (m, o) => quantizePass(m, o.precision) },
  { name: 'autodiff', run: (m, o) => autodiff(m, { lossScale: o.precision?.lossScale }) },
  // SGD or Adam inside OptimLP: places the G, ACC, W, M (and Adam's V) quantizers.
  { name: 'optimizer', run: (m, o) => optimizer(m, o.optimizer, o.precision) },
  // DIVISION: backward reads of saved activations go through packed forms (save=division(…)).
  { name: 'compress', run: (m, o) => compressPass(m, o.precision) },
  // MX weights with ACC, and MX optimizer state, stored packed: a decode before each reader, an encode as the update.
  { name: 'pack-state', run: (m, o) => packStatePass(m, o.packState !== false) },
  // Fusion, one pass per rule (passes/fuse.ts). Elementwise ops (ReLU, residual adds, relu_bwd, optimizer
  // arithmetic) fold into the kernel producing their input; then the quantizers (after autodiff: a folded quantizer
  // has no gradient rule): identities go, an elementwise value shared with a quantizer is recomputed by its other
  // users, each quantizer folds into the kernel that produces its value, a ReLU of a quantized value folds in after
  // the quantizer; then elementwise ops again: removing identity quantizers (an E after max-pool backward) joins new
  // chains.
  fusion(foldElementwise),
  fusion(dropIdentityQuantizer),
  fusion(recomputeSharedElementwise),
  fusion(foldQuantizer),
  fusion(foldQpostRelu),
  fusion(refoldElementwise),
  // DIVISION's compression into the kernel producing the activation (a bn_apply): with_input on the compress node.
  { name: 'fuse-compress', run: (m, o) => (o.fuse === false ? m : fuseCompressProducers(m)) },
  { name: 'dce', run: (m) => ({ ...m, graphs: m.graphs.map(dce) }) },
];

export const PASS_NAMES = ['frontend', ...PASSES.map((p) => p.name)];

export function checkPassNames(names: string[]): void {
  for (const n of names)
    if (n !== 'all' && !PASS_NAMES.includes(n))
      throw new Error(`--print-after: unknown pass '${n}'; passes are ${PASS_NAMES.join(', ')} (or 'all')`);
}

/** Runs the pipeline on the traced module; `frontendMs` lets the timing table include the front end. */
export function runPasses(m: Module, o: CompileOptions, frontendMs = 0): Module {
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const printAfter = new Set(o.printAfter ?? []);
  const show = (name: string, mod: Module) => {
    if (printAfter.has(name) || printAfter.has('all')) log(`// ----- IR after ${name} -----\n${printModule(mod)}`);
  };
  checkPassNames([...printAfter]);
  const times: [string, number][] = [['frontend', frontendMs]];
  show('frontend', m);
  for (const p of PASSES) {
    const t0 = performance.now();
    m = p.run(m, o);
    if (o.verifyEach) verifyModule(m);
    times.push([p.name, performance.now() - t0]);
    show(p.name, m);
  }
  const t0 = performance.now();
  verifyModule(m);
  times.push(['verify', performance.now() - t0]);
  if (o.timePasses) {
    const total = times.reduce((s, [, t]) => s + t, 0);
    const w = Math.max(12, ...times.map(([n]) => n.length));
    log(`${'pass'.padEnd(w)} ${'ms'.padStart(7)}`);
    for (const [n, t] of times) log(`${n.padEnd(w)} ${t.toFixed(1).padStart(7)}`);
    log(`${'total'.padEnd(w)} ${total.toFixed(1).padStart(7)}`);
  }
  return m;
}
