/** Quantizers: `quantize`, the DSL's `quantize_site`, and CPT's minmax quantizer with running qparams. */
import { def } from './epilogue.js';
import { f32, need, str } from './helpers.js';
import { Format, formatToString } from '../format.js';
import { numel } from '../types.js';
import { quantize as quantizeCpu } from '../quant/quantize.js';
import { MinmaxFormat, minmaxBits, minmaxQparams, minmaxRunningUpdate, quantizeMinmaxWith } from '../quant/minmax.js';
import type { AttrsOf } from '../op-registry.js';

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const QUANTIZE = { fmt: 'format', rounding: 'rounding', role: 'string', bwd_fmt: 'format', bwd_rounding: 'rounding' } as const;
const QUANTIZE_SITE = { fwd: 'string', bwd: 'string' } as const;
const MINMAX_RUNNING_UPDATE = { momentum: 'float', fmt: 'format' } as const;
const MINMAX_QUANTIZE = { fmt: 'format', rounding: 'rounding' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    quantize: AttrsOf<typeof QUANTIZE, 'bwd_fmt' | 'bwd_rounding'>;
    quantize_site: AttrsOf<typeof QUANTIZE_SITE, 'fwd' | 'bwd'>;
    minmax_running_update: AttrsOf<typeof MINMAX_RUNNING_UPDATE>;
    minmax_quantize: AttrsOf<typeof MINMAX_QUANTIZE>;
  }
}

// ---------- quantize (a format is part of the result type) ----------
/**
 * QPyTorch's Quantizer: the forward value to `fmt` (f32: identity) and, straight through, the error on the way back
 * to `bwd_fmt` (absent: identity). `role` says which policy role placed it (A, E, G, M, ACC, W).
 */
def({
  name: 'quantize', arity: 1, attrs: QUANTIZE, optional: ['bwd_fmt', 'bwd_rounding'],
  infer: (t, a) => {
    // a per-axis block format placed by a role on a tensor without that axis: say which role and format
    for (const [f, role] of [[a.fmt, a.role], [a.bwd_fmt, 'E']] as [Format | undefined, string][])
      if ((f?.kind === 'bfp' || f?.kind === 'mx') && typeof f.axis === 'number')
        need(f.axis < t[0].shape.length, `precision ${role}=${formatToString(f)}: axis ${f.axis} does not exist in a tensor of shape ${str(t[0].shape)}`);
    return f32(t[0].shape, a.fmt);
  },
  cpu: (ins, out, c) => {
    const q = quantizeCpu(Float32Array.from(ins[0]), c.inTypes[0].shape, c.attrs.fmt, c.attrs.rounding, c.rng);
    c.onQuantize?.(ins[0], q);
    out.set(q);
  },
  grad: (g) => [g.attrs.bwd_fmt
    ? g.add('quantize', [g.dy], { fmt: g.attrs.bwd_fmt, rounding: g.attrs.bwd_rounding ?? 'nearest', role: 'E' })
    : g.dy],
});

/**
 * An explicit quantizer site from the DSL's `quantize(x, 'low')`: forward class `fwd`, backward class `bwd` (either
 * absent: identity that way). The quantize pass (passes/quantize.ts) turns it into a `quantize` node with the
 * precision spec's formats for those classes, before autodiff, so no later pass sees one.
 */
def({
  name: 'quantize_site', arity: 1, attrs: QUANTIZE_SITE, optional: ['fwd', 'bwd'],
  infer: (t) => f32(t[0].shape, t[0].fmt),
  cpu: (ins, out) => out.set(ins[0]),
  grad: (g) => [g.dy],
});

// ---------- CPT's activation quantizer with running qparams (ir/quant/minmax.ts, passes/quantize.ts) ----------
const minmaxTensorFmt = (a: { fmt?: Format }, op: string): MinmaxFormat => {
  const f = a.fmt;
  need(f?.kind === 'minmax' && f.per === 'tensor', `${op}: fmt must be a per-tensor minmax format (got ${f ? formatToString(f) : 'none'})`);
  return f as MinmaxFormat;
};
/** [zero_point, range] = [min, max − min] of the whole tensor (CPT's calculate_qparams; not differentiated). */
def({
  name: 'minmax_qparams', arity: 1, attrs: {},
  infer: () => f32([2]),
  cpu: (ins, out) => out.set(minmaxQparams(ins[0])),
});
/** QuantMeasure's running buffers [zero_point, range]: r ← (1−m)·r + m·batch in f32; unchanged when the width of
 *  `fmt` (the activation format, scheduled or not) is 0 — CPT's conv then skips its quantizer altogether. */
def({
  name: 'minmax_running_update', arity: 2, attrs: MINMAX_RUNNING_UPDATE,
  infer: (t, a) => {
    minmaxTensorFmt(a, 'minmax_running_update');
    need(numel(t[0].shape) === 2 && numel(t[1].shape) === 2, `minmax_running_update expects [2] running and batch qparams, got ${str(t[0].shape)} and ${str(t[1].shape)}`);
    return f32(t[0].shape);
  },
  cpu: (ins, out, c) => {
    if (minmaxBits(c.attrs.fmt as MinmaxFormat, c.rng) === 0) out.set(ins[0]);
    else minmaxRunningUpdate(ins[0], ins[1], c.attrs.momentum, out);
  },
});
/** x quantized per tensor with given qparams [zero_point, range] (CPT's eval mode: the running buffers), to the
 *  per-tensor minmax `fmt`; straight-through gradient. */
def({
  name: 'minmax_quantize', arity: 2, attrs: MINMAX_QUANTIZE,
  infer: (t, a) => {
    const f = minmaxTensorFmt(a, 'minmax_quantize');
    need(numel(t[1].shape) === 2, `minmax_quantize expects qparams [2] (zero point, range), got ${str(t[1].shape)}`);
    need(a.rounding === 'nearest' || a.rounding === 'stochastic', `minmax_quantize: rounding must be nearest or stochastic (got ${String(a.rounding)})`);
    return f32(t[0].shape, f);
  },
  cpu: (ins, out, c) => {
    const q = quantizeMinmaxWith(ins[0], ins[1], c.attrs.fmt as MinmaxFormat, c.attrs.rounding === 'stochastic', c.rng);
    c.onQuantize?.(ins[0], q);
    out.set(q);
  },
  grad: (g) => [g.dy, null],
});
