/**
 * PEPPP's memory accounting (../shared/peppp/README.md §3.1), which its released memory matrix follows bit for bit:
 *
 *   MB = ( b_lo·(P + 2A) + b_hi·(I + 2Z + 2P) ) / (8 · 2^20)
 *
 * P trainable parameters; A every output a forward hook on each module records (a module called twice counts
 * twice), Z the network's output, I the input; b_lo / b_hi the total bits of the low / high format. lpc's DSL calls
 * stand for PyTorch's modules: the trace records the output of every layer, quantizer site and scope
 * (TraceContext.records; flatten and add are functional in PyTorch and not recorded). The authors' tool summed in
 * float32; emulating that order reproduces every released entry exactly.
 *
 * Beside it (runtime/cli/peppp-memory.ts), lpc's own plan: the memory planner's live peak of the training step with
 * every value stored at its format's width (passes/memory.ts packedBytes).
 */
import type { ModelOptions } from '../../dsl/index.js';
import { PepppCounts } from './counts.js';
import { traceSandboxed } from '../sandbox/trace.js';
import { F32, formatBitsWithScale, Format } from '../../ir/format.js';
import { PrecisionPolicy } from '../../ir/precision/index.js';

export { pepppCounts } from './counts.js';
export type { PepppCounts } from './counts.js';

const MB = 8 * 2 ** 20;
/** The formula in MB (2^20 bytes), partial sums rounded to float32 in the authors' order (params in low, then
 *  activations and output, then the input, then the high-precision momentum and master copy). */
export function pepppMemoryMB(c: PepppCounts, bLo: number, bHi: number): number {
  const f = Math.fround;
  let s = f(c.params * bLo);
  s = f(s + f(2 * c.activations * bLo + 2 * c.output * bHi));
  s = f(s + f(c.input * bHi));
  s = f(s + f(2 * c.params * bHi));
  return f(s / MB);
}

/**
 * The low and high formats of a configuration: its `low`/`high` classes, else the W and ACC (or M) roles, else f32
 * (32 bits: an fp32 configuration counts as PEPPP's formula with b_lo = b_hi = 32), so every cell of a sweep is in
 * the same accounting.
 */
export function lowHigh(p: PrecisionPolicy): { low: Format; high: Format } {
  return {
    low: p.classes?.low?.fmt ?? p.roles.W?.fmt ?? F32,
    high: p.classes?.high?.fmt ?? p.roles.ACC?.fmt ?? p.roles.M?.fmt ?? F32,
  };
}

const countsCache = new Map<string, PepppCounts>();
/** A sweep cell's memory by PEPPP's accounting (`policy` undefined: fp32), so lpc's matrices and the released ones
 *  are comparable. */
export function pepppMemoryOf(file: string, batch: number, options: ModelOptions, policy: PrecisionPolicy | undefined): number {
  const { low, high } = lowHigh(policy ?? { roles: {} });
  const key = JSON.stringify([file, batch, options]);
  if (!countsCache.has(key)) countsCache.set(key, traceSandboxed(file, batch, options, { counts: true }).counts!);
  return pepppMemoryMB(countsCache.get(key)!, formatBitsWithScale(low), formatBitsWithScale(high));
}
