/**
 * `lpc plot metrics.jsonl -o plot.svg`: a self-contained SVG (written by hand, no dependencies) of what a metrics
 * file holds, one panel per quantity present: loss (per step from `--metrics-steps` records, per epoch train/test/
 * SWA), accuracy (test, SWA), bit width (`bits`: a number or an object of numbers, or `bits_<k>` numbers such as
 * `bits_fwd`, per step or epoch, e.g. from a CPT schedule), learning rate and, from `--quant-stats` records
 * (`quant_step`, `sites`), per role the fraction of values saturated and flushed to zero and the mean relative
 * rounding error (sites of a role averaged weighted by their element counts). The x axis is the global step when
 * step or quant-stats records exist (epoch records sit at their `global_step`), else the epoch. Non-finite numbers
 * (written as the strings "NaN", "Infinity", "-Infinity") are not drawn; the first non-finite loss is marked.
 */
import * as fs from 'node:fs';
import { writeAtomic } from '../files.js';
import { FlagSpec, Parsed, UsageError, flag } from './args.js';
import { checkOutputFile } from './outputs.js';

export const plotFlags: FlagSpec[] = [
  { name: 'out', alias: '-o', value: 'FILE', help: 'the SVG to write (default: the metrics file with .svg)' },
  { name: 'title', value: 'TEXT', help: 'a title above the panels (default: the metrics file name)' },
];

type Rec = Record<string, unknown>;
interface Series { name: string; color: string; points: [number, number][]; markers?: boolean; step?: boolean; thin?: boolean }
interface Panel { title: string; unit?: string; series: Series[]; marks?: { x: number; label: string }[] }

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
/** A number that is not finite: NaN or ±Inf, as lpc run writes them (the strings "NaN", "Infinity", "-Infinity"). */
const nonFinite = (v: unknown): boolean => v === 'NaN' || v === 'Infinity' || v === '-Infinity' || (typeof v === 'number' && !Number.isFinite(v));

export function readMetrics(file: string): Rec[] {
  if (!fs.existsSync(file)) throw new UsageError(`${file}: no such metrics file (write one with lpc run --metrics FILE)`);
  if (fs.statSync(file).isDirectory()) throw new UsageError(`${file}: is a directory, not a metrics file`);
  const out: Rec[] = [];
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let r: unknown;
    try { r = JSON.parse(line); } catch { throw new Error(`${file}:${i + 1}: not a JSON object`); }
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error(`${file}:${i + 1}: not a JSON object`);
    out.push(r as Rec);
  });
  if (!out.length) throw new Error(`${file}: no records to plot`);
  return out;
}

/** The panels a metrics file supports. */
export function panels(recs: Rec[]): { xLabel: string; panels: Panel[] } {
  const steps = recs.filter((r) => num(r.step) !== undefined && num(r.loss) !== undefined);
  const epochs = recs.filter((r) => num(r.epoch) !== undefined && num(r.train_loss) !== undefined);
  const quant = recs.filter((r) => num(r.quant_step) !== undefined && Array.isArray(r.sites));
  const byStep = steps.length > 0 || quant.length > 0;
  const ex = (r: Rec) => (byStep ? num(r.global_step) ?? (num(r.epoch)! * (num(r.steps) ?? 1)) : num(r.epoch)!);
  const pts = (rs: Rec[], x: (r: Rec) => number, key: string): [number, number][] =>
    rs.flatMap((r) => (num(r[key]) !== undefined ? [[x(r), num(r[key])!] as [number, number]] : []));
  const sx = (r: Rec) => num(r.step)!;
  let c = 0;
  const s = (name: string, points: [number, number][], o: Partial<Series> = {}): Series[] =>
    points.length ? [{ name, color: COLORS[c++ % COLORS.length], points, ...o }] : [];
  const out: Panel[] = [];
  const loss = [
    ...s('loss (step)', pts(steps, sx, 'loss'), { thin: true }),
    ...s('train loss', pts(epochs, ex, 'train_loss'), { markers: true }),
    ...s('test loss', pts(epochs, ex, 'test_loss'), { markers: true }),
    ...s('SWA test loss', pts(epochs, ex, 'swa_test_loss'), { markers: true }),
  ];
  // where the loss first became non-finite (a diverged run's last records)
  const marks: { x: number; label: string }[] = [];
  const badStep = recs.find((r) => num(r.step) !== undefined && nonFinite(r.loss));
  const badEpoch = recs.find((r) => num(r.epoch) !== undefined && ['train_loss', 'test_loss', 'swa_test_loss'].some((k) => nonFinite(r[k])));
  if (badStep) marks.push({ x: num(badStep.step)!, label: `loss ${String(badStep.loss)}` });
  else if (badEpoch && (!byStep || num(badEpoch.global_step) !== undefined)) marks.push({ x: ex(badEpoch), label: 'non-finite loss' });
  if (loss.length || marks.length) out.push({ title: 'loss', series: loss, marks });
  const pct = (p: [number, number][]) => p.map(([x, y]) => [x, y * 100] as [number, number]);
  const acc = [
    ...s('train accuracy', pct(pts(epochs, ex, 'train_accuracy')), { markers: true }),
    ...s('test accuracy', pct(pts(epochs, ex, 'test_accuracy')), { markers: true }),
    ...s('SWA test accuracy', pct(pts(epochs, ex, 'swa_test_accuracy')), { markers: true }),
  ];
  if (acc.length) out.push({ title: 'accuracy', unit: '%', series: acc });
  // bits: `bits` (a number, or an object of numbers such as {fwd, bwd}) or `bits_<k>` numbers; from step records if
  // they carry any, else from epoch records
  const bitsOf = (r: Rec): Map<string, number> => {
    const m = new Map<string, number>();
    if (num(r.bits) !== undefined) m.set('', num(r.bits)!);
    else if (r.bits && typeof r.bits === 'object') for (const [k, v] of Object.entries(r.bits)) if (num(v) !== undefined) m.set(k, num(v)!);
    for (const [k, v] of Object.entries(r)) if (k.startsWith('bits_') && num(v) !== undefined) m.set(k.slice(5), num(v)!);
    return m;
  };
  const bitRecs = steps.some((r) => bitsOf(r).size) ? steps : epochs.filter((r) => bitsOf(r).size);
  const bx = bitRecs === steps ? sx : ex;
  const keys = new Set<string>();
  for (const r of bitRecs) for (const k of bitsOf(r).keys()) keys.add(k);
  const bits = [...keys].flatMap((k) => s(k ? `bits ${k}` : 'bits', bitRecs.flatMap((r) => {
    const v = bitsOf(r).get(k);
    return v !== undefined ? [[bx(r), v] as [number, number]] : [];
  }), { step: true }));
  if (bits.length) out.push({ title: 'bit width', series: bits });
  const lr = s('lr', steps.length ? pts(steps, sx, 'lr') : pts(epochs, ex, 'lr'), { step: true });
  if (lr.length) out.push({ title: 'learning rate', series: lr });
  out.push(...quantPanels(quant, s));
  return { xLabel: byStep ? 'step' : 'epoch', panels: out };
}

/** The --quant-stats panels: per role (site), n-weighted over its sites, saturated and flushed (%) and the rounding error. */
function quantPanels(quant: Rec[], s: (name: string, points: [number, number][], o?: Partial<Series>) => Series[]): Panel[] {
  const roles = new Map<string, Map<number, { n: number; sat: number; flush: number; errN: number; err: number }>>();
  for (const r of quant) {
    for (const site of r.sites as Rec[]) {
      const n = num(site.n), role = typeof site.site === 'string' ? site.site : '?';
      if (!n) continue;
      const byX = roles.get(role) ?? new Map();
      roles.set(role, byX);
      const a = byX.get(num(r.quant_step)!) ?? { n: 0, sat: 0, flush: 0, errN: 0, err: 0 };
      a.n += n; a.sat += n * (num(site.saturated) ?? 0); a.flush += n * (num(site.flushed) ?? 0);
      if (num(site.rel_error) !== undefined) { a.errN += n; a.err += n * num(site.rel_error)!; }
      byX.set(num(r.quant_step)!, a);
    }
  }
  const series = (f: (a: { n: number; sat: number; flush: number; errN: number; err: number }) => number | undefined, label: string, pct: boolean) =>
    [...roles].flatMap(([role, byX]) => s(`${role} ${label}`.trim(), [...byX].flatMap(([x, a]) => {
      const v = f(a);
      return v === undefined ? [] : [[x, pct ? 100 * v : v] as [number, number]];
    }), { markers: true }));
  const sf = [...series((a) => a.sat / a.n, 'saturated', true), ...series((a) => a.flush / a.n, 'flushed', true)];
  const err = series((a) => (a.errN ? a.err / a.errN : undefined), '', false);
  return [
    ...(sf.length ? [{ title: 'quantizers: saturated, flushed to zero', unit: '%', series: sf }] : []),
    ...(err.length ? [{ title: 'quantizers: mean relative rounding error', series: err }] : []),
  ];
}

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw)!;
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(k === 0 ? 0 : Number((k * step).toPrecision(12)));
  return out;
}

export const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
export const fmt = (v: number) => {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
};

export function renderSvg(recs: Rec[], title: string): string {
  const { xLabel, panels: ps } = panels(recs);
  if (!ps.length) throw new Error('the metrics file has no loss, accuracy, bits or lr to plot');
  const W = 860, PH = 230, top = 40, left = 70, right = 200, plotW = W - left - right, plotH = PH - 60;
  const H = top + ps.length * PH + 10;
  const allX = ps.flatMap((p) => [...p.series.flatMap((s) => s.points.map((q) => q[0])), ...(p.marks ?? []).map((m) => m.x)]);
  const x0 = Math.min(...allX), x1 = Math.max(...allX);
  const xt = ticks(x0, x1, 8);
  const xlo = Math.min(x0, xt[0]), xhi = Math.max(x1, xt[xt.length - 1]);
  const X = (v: number) => left + ((v - xlo) / (xhi - xlo || 1)) * plotW;
  const o: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  ps.forEach((p, i) => {
    const y0p = top + i * PH + 10;
    const ys = p.series.flatMap((s) => s.points.map((q) => q[1]));
    if (!ys.length) ys.push(0, 1); // only a mark
    const yt = ticks(Math.min(...ys), Math.max(...ys), 5);
    const ylo = Math.min(Math.min(...ys), yt[0]), yhi = Math.max(Math.max(...ys), yt[yt.length - 1]);
    const Y = (v: number) => y0p + plotH - ((v - ylo) / (yhi - ylo || 1)) * plotH;
    o.push(`<g class="panel" data-title="${esc(p.title)}">`);
    o.push(`<text x="${left}" y="${y0p - 4}" font-size="12" font-weight="bold">${esc(p.title)}${p.unit ? ` (${p.unit})` : ''}</text>`);
    o.push(`<rect x="${left}" y="${y0p}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
    for (const v of yt) {
      const y = Y(v).toFixed(1);
      o.push(`<line x1="${left}" x2="${left + plotW}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${left - 6}" y="${y}" dy="4" text-anchor="end">${fmt(v)}</text>`);
    }
    for (const v of xt) {
      const x = X(v).toFixed(1);
      o.push(`<line x1="${x}" x2="${x}" y1="${y0p + plotH}" y2="${y0p + plotH + 4}" stroke="#888"/><text x="${x}" y="${y0p + plotH + 16}" text-anchor="middle">${fmt(v)}</text>`);
    }
    o.push(`<text x="${left + plotW / 2}" y="${y0p + plotH + 32}" text-anchor="middle">${xLabel}</text>`);
    p.series.forEach((s, k) => {
      const pts = [...s.points].sort((a, b) => a[0] - b[0]);
      let d = '';
      pts.forEach(([x, y], j) => {
        if (s.step && j > 0) d += ` L${X(x).toFixed(1)},${Y(pts[j - 1][1]).toFixed(1)}`;
        d += `${j ? ' L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
      });
      o.push(`<path class="series" data-name="${esc(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.thin ? 1 : 2}"${s.thin ? ' stroke-opacity="0.6"' : ''}/>`);
      if (s.markers) for (const [x, y] of pts) o.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
      const ly = y0p + 12 + k * 16;
      o.push(`<line x1="${left + plotW + 12}" x2="${left + plotW + 32}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"/><text x="${left + plotW + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
    });
    for (const m of p.marks ?? []) {
      const x = X(m.x).toFixed(1);
      o.push(`<line class="mark" x1="${x}" x2="${x}" y1="${y0p}" y2="${y0p + plotH}" stroke="#d62728" stroke-dasharray="4,3"/><text x="${x}" y="${y0p + 12}" dx="-4" text-anchor="end" fill="#d62728">${esc(m.label)}</text>`);
    }
    o.push('</g>');
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}

export async function plotCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc plot needs one metrics file (JSON lines from lpc run --metrics)');
  const file = p.positional[0];
  const out = flag(p, 'out') ?? file.replace(/\.jsonl?$/, '') + '.svg';
  checkOutputFile('-o', out, [file]);
  const svg = renderSvg(readMetrics(file), flag(p, 'title') ?? file);
  writeAtomic(out, svg);
  process.stderr.write(`lpc: wrote ${out}\n`);
}
