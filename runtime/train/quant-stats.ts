/**
 * `lpc run --quant-stats N`: per quantizer site, how a step's quantization treated its values. Every N steps the
 * training step is rerun on the CPU reference interpreter from the same state, inputs and random key (so stochastic
 * rounding draws the same bits) and every quantizer — a `quantize` node, a `minmax_quantize`, a quantizer the
 * fuse pass folded into its producer (its epilogue's `q`, role in `q.role`), or the compression that quantizes a
 * packed state's update (format_compress with a `role`, passes/pack-state.ts) — reports its input x and output q(x):
 *
 * - `saturated`: the fraction of its finite inputs beyond the format's range (ir/quant/range.ts), clipped by q;
 * - `flushed`: the fraction of its finite nonzero inputs that became 0;
 * - `rel_error`: the mean of |q(x) − x| / |x| over finite nonzero x with finite q(x) (omitted when there is none);
 * - `nonfinite`: the fraction of inputs that were NaN or ±Inf (counted in none of the above).
 *
 * The GPU run is not touched: with the flag off nothing here runs and no kernel or readback is added.
 */
import type { Graph, Node } from '../../ir/graph.js';
import type { Format } from '../../ir/format.js';
import { formatToString } from '../../ir/format.js';
import { locToString } from '../../ir/types.js';
import { saturation } from '../../ir/quant/range.js';
import type { StepBits } from '../../ir/quant/rng.js';
import { runGraph, Feeds } from '../cpu/interpreter.js';
import type { StepInfo } from '../backend.js';
import { attrsOf } from '../../ir/op-registry.js';

export interface QuantCounts { n: number; nonfinite: number; saturated: number; nonzero: number; flushed: number; relErrSum: number; relErrN: number }

/** Counts of one quantizer application: input x (row-major, `shape`), output q. */
export function quantCounts(x: ArrayLike<number>, q: ArrayLike<number>, shape: readonly number[], fmt: Format, qparams?: ArrayLike<number>, bits?: StepBits): QuantCounts {
  const xs = Float32Array.from(x);
  const sat = saturation(xs, shape, fmt, qparams, bits);
  const c: QuantCounts = { n: xs.length, nonfinite: 0, saturated: 0, nonzero: 0, flushed: 0, relErrSum: 0, relErrN: 0 };
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i], w = q[i];
    if (!Number.isFinite(v)) { c.nonfinite++; continue; }
    if (sat(i)) c.saturated++;
    if (v === 0) continue;
    c.nonzero++;
    if (w === 0) c.flushed++;
    if (Number.isFinite(w)) { c.relErrSum += Math.abs(w - v) / Math.abs(v); c.relErrN++; }
  }
  return c;
}

/** One site's line in a metrics record. */
export interface SiteRecord {
  site: string; node: number; op: string; loc?: string; fmt: string; rounding: string;
  n: number; saturated: number; flushed: number; rel_error?: number; nonfinite: number;
}

export function siteRecord(node: Node, c: QuantCounts): SiteRecord {
  const a = node.attrs;
  const q = node.op === 'quantize' || node.op === 'minmax_quantize' || node.op === 'format_compress';
  const fmt = q ? attrsOf(node, 'quantize', 'minmax_quantize', 'format_compress').fmt : node.epi!.q!.fmt;
  const finite = c.n - c.nonfinite;
  return {
    site: siteName(node), node: node.id, op: node.op, ...(node.loc ? { loc: locToString(node.loc) } : {}),
    fmt: formatToString(fmt), rounding: String((q ? a.rounding : node.epi?.q?.rounding) ?? 'nearest'),
    n: c.n, saturated: finite ? c.saturated / finite : 0, flushed: c.nonzero ? c.flushed / c.nonzero : 0,
    ...(c.relErrN ? { rel_error: c.relErrSum / c.relErrN } : {}), nonfinite: c.n ? c.nonfinite / c.n : 0,
  };
}

/** The role that placed a quantizer (A, E, G, W, M, ACC, site:<fwd>/<bwd>); CPT's evaluation quantizer is A's. */
export function siteName(node: Node): string {
  const r = node.attrs.role ?? node.epi?.q?.role;
  return r !== undefined ? String(r) : node.op === 'minmax_quantize' ? 'A' : '?';
}

/** Reruns one step of `g` on the CPU interpreter and returns every quantizer site's statistics, in node order. */
export function quantStats(g: Graph, feeds: Feeds, state: Map<string, ArrayLike<number>>, step: StepInfo): SiteRecord[] {
  const out: SiteRecord[] = [];
  runGraph(g, feeds, state, {
    precision: 'f32', seed: step.seed, step: step.step, bits: step.bits,
    onQuantize: (node, x, q, values) => {
      const own = node.op === 'quantize' || node.op === 'minmax_quantize' || node.op === 'format_compress';
      const fmt = own ? attrsOf(node, 'quantize', 'minmax_quantize', 'format_compress').fmt : node.epi!.q!.fmt;
      const qparams = node.op === 'minmax_quantize' ? values[node.inputs[1]] : undefined;
      // a packed state's update (passes/pack-state.ts) is quantized at its input's shape
      const shape = node.op === 'format_compress' ? g.nodes[node.inputs[0]].type.shape : node.type.shape;
      out.push(siteRecord(node, quantCounts(x, q, shape, fmt, qparams, step.bits)));
    },
  });
  return out;
}
