/**
 * `lpc inspect <metrics.jsonl>`: what a metrics file of `lpc run --metrics` says — its records, the last epoch, the
 * first non-finite value (a diverged run) and, from `--quant-stats` records, a table of every quantizer site of the
 * last such record (role, node, op, format, saturated %, flushed to zero %, mean relative rounding error, model line).
 */
import { readMetrics } from './plot.js';

type Rec = Record<string, unknown>;
const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);
const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(2)}%` : '-');

/** The first field, in file order, holding a non-finite number: `line N: key = NaN`. */
export function firstNonFiniteField(recs: Rec[]): string | undefined {
  for (let i = 0; i < recs.length; i++)
    for (const [k, v] of Object.entries(recs[i])) if (typeof v === 'string' && NON_FINITE.has(v)) return `record ${i + 1}: ${k} = ${v}`;
  return undefined;
}

export function metricsSummary(file: string, json: boolean): string {
  const recs = readMetrics(file);
  const epochs = recs.filter((r) => typeof r.train_loss !== 'undefined' && typeof r.epoch === 'number');
  const steps = recs.filter((r) => typeof r.step === 'number');
  const quant = recs.filter((r) => typeof r.quant_step === 'number' && Array.isArray(r.sites));
  const bad = firstNonFiniteField(recs);
  const last = quant[quant.length - 1];
  if (json) return JSON.stringify({ records: recs.length, epochs: epochs.length, steps: steps.length, quant_stats: quant.length, non_finite: bad ?? null, last_epoch: epochs[epochs.length - 1] ?? null, last_quant_stats: last ?? null }, null, 1);
  const lines = [`metrics ${file}: ${recs.length} records (${epochs.length} epoch, ${steps.length} step, ${quant.length} quant-stats)`];
  const e = epochs[epochs.length - 1];
  if (e) lines.push(`last epoch ${String(e.epoch)}: train loss ${String(e.train_loss)}, test loss ${String(e.test_loss)}, test accuracy ${pct(e.test_accuracy)}`);
  lines.push(bad ? `non-finite: ${bad} (the run diverged; lpc run --check-numerics names the op)` : 'non-finite: none');
  if (!last) {
    lines.push('quantizer statistics: none (lpc run --quant-stats N --metrics FILE records them)');
    return lines.join('\n');
  }
  lines.push(`quantizer statistics at step ${String(last.quant_step)} (epoch ${String(last.epoch)}, graph ${String(last.graph)}):`);
  const rows = [['site', 'node', 'op', 'format', 'n', 'saturated', 'flushed', 'rel.error', 'nonfinite', 'at']];
  for (const s of last.sites as Rec[])
    rows.push([String(s.site), `%${String(s.node)}`, String(s.op), `${String(s.fmt)}${s.rounding === 'stochastic' ? ':stochastic' : ''}`, String(s.n),
      pct(s.saturated), pct(s.flushed), typeof s.rel_error === 'number' ? s.rel_error.toExponential(2) : '-', pct(s.nonfinite), String(s.loc ?? '')]);
  const w = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  for (const r of rows) lines.push('  ' + r.map((c, j) => (j >= 4 && j <= 8 ? c.padStart(w[j]) : c.padEnd(w[j]))).join('  ').trimEnd());
  return lines.join('\n');
}
