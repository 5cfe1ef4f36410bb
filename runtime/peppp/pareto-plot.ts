/**
 * A memory-error scatter in the style of PEPPP's Figure 1a: memory (MB) on x, error on y, every configuration as a
 * dot, the Pareto frontier as larger dots joined by a step line. A second series (e.g. predicted errors next to the
 * measured ones) can share the axes; measured configurations can be ringed. Self-contained SVG, the axes and text
 * helpers of `lpc plot`.
 */
import { esc, fmt, ticks } from '../cli/plot.js';
import { paretoFrontier } from './pareto.js';

export interface PlotPoint { x: number; y: number; label?: string }
export interface PlotSeries {
  name: string;
  points: PlotPoint[];
  /** indices into `points` of the frontier (any order; drawn by x) */
  frontier: number[];
  /** indices into `points` drawn with a ring (e.g. the measured configurations) */
  marked?: number[];
  color?: string;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e'];

export function paretoSvg(title: string, series: PlotSeries[], markedName = 'measured'): string {
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  if (!all.length) throw new Error('nothing to plot: no point has both a memory and an error');
  const W = 760, H = 520, left = 70, right = 170, top = 40, bottom = 50, pw = W - left - right, ph = H - top - bottom;
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const xt = ticks(Math.min(...xs), Math.max(...xs), 7), yt = ticks(Math.min(...ys), Math.max(...ys), 6);
  const xlo = Math.min(xt[0], ...xs), xhi = Math.max(xt[xt.length - 1], ...xs);
  const ylo = Math.min(yt[0], ...ys), yhi = Math.max(yt[yt.length - 1], ...ys);
  const X = (v: number) => (left + ((v - xlo) / (xhi - xlo || 1)) * pw).toFixed(1);
  const Y = (v: number) => (top + ph - ((v - ylo) / (yhi - ylo || 1)) * ph).toFixed(1);
  const o: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left + pw / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`,
  ];
  for (const v of yt) o.push(`<line x1="${left}" x2="${left + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/><text x="${left - 6}" y="${Y(v)}" dy="4" text-anchor="end">${fmt(v)}</text>`);
  for (const v of xt) o.push(`<line x1="${X(v)}" x2="${X(v)}" y1="${top + ph}" y2="${top + ph + 4}" stroke="#888"/><text x="${X(v)}" y="${top + ph + 16}" text-anchor="middle">${fmt(v)}</text>`);
  o.push(`<text x="${left + pw / 2}" y="${H - 12}" text-anchor="middle">memory (MB)</text>`);
  o.push(`<text transform="translate(18 ${top + ph / 2}) rotate(-90)" text-anchor="middle">error</text>`);
  series.forEach((s, k) => {
    const c = s.color ?? COLORS[k % COLORS.length];
    const ok = (i: number) => Number.isFinite(s.points[i].x) && Number.isFinite(s.points[i].y);
    const tip = (p: PlotPoint) => `<title>${esc(`${p.label ? p.label + ': ' : ''}${p.x} MB, error ${p.y}`)}</title>`;
    o.push(`<g class="series" data-name="${esc(s.name)}">`);
    s.points.forEach((p, i) => { if (ok(i)) o.push(`<circle class="point" cx="${X(p.x)}" cy="${Y(p.y)}" r="2.5" fill="${c}" fill-opacity="0.35">${tip(p)}</circle>`); });
    // the frontier as a staircase: from each point right to the next one's memory, then down to its error
    const f = s.frontier.filter(ok).map((i) => s.points[i]).sort((a, b) => a.x - b.x);
    if (f.length) {
      let d = `M${X(f[0].x)},${Y(f[0].y)}`;
      for (let j = 1; j < f.length; j++) d += ` L${X(f[j].x)},${Y(f[j - 1].y)} L${X(f[j].x)},${Y(f[j].y)}`;
      o.push(`<path class="frontier" d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`);
      for (const p of f) o.push(`<circle class="frontier-point" cx="${X(p.x)}" cy="${Y(p.y)}" r="4.5" fill="${c}">${tip(p)}</circle>`);
    }
    for (const i of s.marked ?? []) if (ok(i)) o.push(`<circle class="marked" cx="${X(s.points[i].x)}" cy="${Y(s.points[i].y)}" r="7" fill="none" stroke="black" stroke-width="1.5">${tip(s.points[i])}</circle>`);
    o.push('</g>');
    const ly = top + 12 + k * 34;
    o.push(`<circle cx="${left + pw + 22}" cy="${ly}" r="4.5" fill="${c}"/><text x="${left + pw + 32}" y="${ly + 4}">${esc(s.name)}</text>`);
    o.push(`<line x1="${left + pw + 12}" x2="${left + pw + 32}" y1="${ly + 14}" y2="${ly + 14}" stroke="${c}" stroke-width="2"/><text x="${left + pw + 38}" y="${ly + 18}">frontier</text>`);
  });
  if (series.some((s) => s.marked?.length)) {
    const ly = top + 12 + series.length * 34;
    o.push(`<circle cx="${left + pw + 22}" cy="${ly}" r="7" fill="none" stroke="black" stroke-width="1.5"/><text x="${left + pw + 34}" y="${ly + 4}">${esc(markedName)}</text>`);
  }
  o.push('</svg>');
  return o.join('\n') + '\n';
}

/** PEPPP Figure 1a for a prediction: every candidate at its predicted error with the predicted frontier, the measured
 *  configurations ringed, and the measured points with their own frontier beside them. */
export function predictionSvg(title: string, cand: readonly number[], memRow: ArrayLike<number>, predicted: ArrayLike<number>,
  frontier: readonly number[], measured: readonly number[], errors: readonly number[], names: readonly string[]): string {
  const points = cand.map((j, q) => ({ x: memRow[j], y: predicted[q], label: names[j] }));
  const mpoints = measured.map((j, i) => ({ x: memRow[j], y: errors[i], label: names[j] }));
  return paretoSvg(title, [
    { name: 'predicted', points, frontier: frontier.map((j) => cand.indexOf(j)), marked: measured.map((j) => cand.indexOf(j)) },
    { name: 'measured', points: mpoints, frontier: paretoFrontier(mpoints.map((q) => q.x), mpoints.map((q) => q.y)) },
  ]);
}
