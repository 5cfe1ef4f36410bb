/**
 * Sweep configurations as data: a list of {name, precision}, in column order.
 *
 * - `peppp`: PEPPP's 99 configurations (pack README §1), the Cartesian product of 11 low and 9 high float formats,
 *   low outermost (column = 9a + b), named `l_<lowbits>_<lowman>_h_<highbits>_<highman>`.
 * - `FILE.json`: `[{"name": "...", "precision": "..."}, …]`, or `{"grid": {...}, "template": "..."}` (below).
 * - `grid:SLOT=FORMATS,SLOT=FORMATS,…`: the product of format slots, first slot outermost. FORMATS is one or more
 *   `float<E,M>` joined by `+`, where E and M are an integer, a range `a..b` or a list `a|b|c`; within one
 *   `float<…>` E is outer and M inner. Each cell's precision is `<slot>=float<E,M>:stochastic …` followed by the
 *   template (default PEPPP's `W=low G=low M=high ACC=high loss_scale=1000`); its name is
 *   `<slot initial>_<bits>_<man>_…` (bits = 1 + E + M), so `grid:low=float<3..4,1..4>+float<5,1..3>,high=float<6..8,7|9|11>`
 *   is `peppp`. A term may also be `mx<ELEMS[,block=B][,scale=S]>` with ELEMS one or more MX element formats joined
 *   by `|` (`mx<e4m3|e2m1>`, `mx<int4|int8,scale=rceil>`), named `<slot initial>_mx_<elem>[_b<B>][_<S>]`.
 *
 * Precision strings are checked by one function, `precisionProblem`, which asks the precision parser: it accepts
 * whatever the precision language accepts (named classes and loss_scale once they are in it).
 */
import * as fs from 'node:fs';
import { MX_ELEMS, MX_SCALES } from '../../ir/format.js';
import { parsePolicy, PrecisionSpecError } from '../../ir/precision/index.js';
import { printable } from '../files.js';

export interface SweepConfig { name: string; precision: string }

/** One line: text it quotes from the input (a newline in a grid string, say) is escaped. */
export class ConfigError extends Error {
  constructor(message: string) { super(printable(message)); this.name = 'ConfigError'; }
}

export interface FloatFormat { exp: number; man: number }
/** A slot's format: float<E,M>, or an MX element format with an optional block size. */
export type SlotFormat = FloatFormat | { mx: string; block?: number; scale?: string };
const bits = (f: FloatFormat) => 1 + f.exp + f.man;
const slotText = (f: SlotFormat) => ('mx' in f ? `mx<${f.mx}${f.block ? `,block=${f.block}` : ''}${f.scale ? `,scale=${f.scale}` : ''}>` : `float<${f.exp},${f.man}>`);
const slotName = (f: SlotFormat) => ('mx' in f ? `mx_${f.mx}${f.block ? `_b${f.block}` : ''}${f.scale ? `_${f.scale}` : ''}` : `${bits(f)}_${f.man}`);

/** PEPPP's low formats (exp, man) in list order (a = 0..10). */
export const PEPPP_LOW: FloatFormat[] = [[3, 1], [3, 2], [3, 3], [3, 4], [4, 1], [4, 2], [4, 3], [4, 4], [5, 1], [5, 2], [5, 3]]
  .map(([exp, man]) => ({ exp, man }));
/** PEPPP's high formats (exp, man) in list order (b = 0..8). */
export const PEPPP_HIGH: FloatFormat[] = [[6, 7], [6, 9], [6, 11], [7, 7], [7, 9], [7, 11], [8, 7], [8, 9], [8, 11]]
  .map(([exp, man]) => ({ exp, man }));
/** What follows the slot formats in a PEPPP (and default grid) precision: where each class goes, and the loss scale. */
export const PEPPP_TEMPLATE = 'W=low G=low M=high ACC=high loss_scale=1000';

/** The product of the slots' format lists, first slot outermost; names and precisions as described above. */
export function gridConfigs(slots: { slot: string; formats: SlotFormat[] }[], template = PEPPP_TEMPLATE): SweepConfig[] {
  let out: { name: string[]; prec: string[] }[] = [{ name: [], prec: [] }];
  for (const { slot, formats } of slots)
    out = out.flatMap((c) => formats.map((f) => ({
      name: [...c.name, `${slot[0]}_${slotName(f)}`],
      prec: [...c.prec, `${slot}=${slotText(f)}:stochastic`],
    })));
  return out.map((c) => ({ name: c.name.join('_'), precision: [...c.prec, template].filter((s) => s).join(' ') }));
}

export function pepppConfigs(): SweepConfig[] {
  return gridConfigs([{ slot: 'low', formats: PEPPP_LOW }, { slot: 'high', formats: PEPPP_HIGH }]);
}

/** Bounds on a grid (a hostile or mistyped one, `float<0..99999999999,1>`, would exhaust memory). */
const MAX_RANGE = 1000, MAX_CONFIGS = 100_000;

/** Integers of `a`, `a..b` or `a|b|c`. */
function intSet(text: string, where: string): number[] {
  const t = text.trim();
  let m: RegExpMatchArray | null;
  if ((m = t.match(/^(\d+)\.\.(\d+)$/))) {
    const [a, b] = [Number(m[1]), Number(m[2])];
    if (a > b) throw new ConfigError(`${where}: empty range '${t}'`);
    if (b - a >= MAX_RANGE) throw new ConfigError(`${where}: range '${t}' holds more than ${MAX_RANGE} integers`);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }
  if (/^\d+(\|\d+)*$/.test(t)) return t.split('|').map(Number);
  throw new ConfigError(`${where}: '${t}' is not an integer, a range a..b or a list a|b|c`);
}

/** `float<E,M>+float<E,M>+mx<…>…` → formats, E outer and M inner within each float term. */
function slotFormats(text: string, where: string): SlotFormat[] {
  const out: SlotFormat[] = [];
  for (const term of text.split('+')) {
    const mx = term.trim().match(/^mx<([^,<>]+)(?:,\s*block=(\d+))?(?:,\s*scale=(\w+))?>$/);
    if (mx) {
      if (mx[3] && !(MX_SCALES as readonly string[]).includes(mx[3])) throw new ConfigError(`${where}: '${mx[3]}' is not an MX scale mode (${MX_SCALES.join(', ')})`);
      for (const e of mx[1].split('|').map((x) => x.trim())) {
        if (!Object.hasOwn(MX_ELEMS, e)) throw new ConfigError(`${where}: '${e}' is not an MX element format (${Object.keys(MX_ELEMS).join(', ')})`);
        out.push({ mx: e, ...(mx[2] ? { block: Number(mx[2]) } : {}), ...(mx[3] && mx[3] !== 'floor' ? { scale: mx[3] } : {}) });
      }
      continue;
    }
    const m = term.trim().match(/^float<([^,<>]+),([^,<>]+)>$/);
    if (!m) throw new ConfigError(`${where}: '${term.trim()}' is not float<E,M> (E, M: an integer, a..b or a|b|c) or mx<ELEM|ELEM…[,block=B][,scale=S]>`);
    const exps = intSet(m[1], where), mans = intSet(m[2], where);
    if (out.length + exps.length * mans.length > MAX_CONFIGS) throw new ConfigError(`${where}: more than ${MAX_CONFIGS} formats`);
    for (const exp of exps) for (const man of mans) out.push({ exp, man });
  }
  return out;
}

/** Splits at commas outside <…>. */
function topLevelCommas(s: string): string[] {
  const parts: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '<') depth++;
    else if (s[i] === '>') depth--;
    else if (s[i] === ',' && depth === 0) { parts.push(s.slice(start, i)); start = i + 1; }
  }
  parts.push(s.slice(start));
  return parts;
}

/** A grid given as `{SLOT: FORMATS, …}` (JSON) or `SLOT=FORMATS,…` (the flag). */
function parseGrid(grid: Record<string, unknown> | string, template: string | undefined, where: string): SweepConfig[] {
  const entries: [string, unknown][] = typeof grid === 'string'
    ? topLevelCommas(grid).map((p) => {
      const eq = p.indexOf('=');
      if (eq < 0) throw new ConfigError(`${where}: '${p}' is not SLOT=FORMATS`);
      return [p.slice(0, eq).trim(), p.slice(eq + 1)];
    })
    : Object.entries(grid);
  if (entries.length === 0) throw new ConfigError(`${where}: the grid has no slots`);
  const slots = entries.map(([slot, f]) => {
    if (!/^[a-z][a-z0-9_]*$/.test(slot)) throw new ConfigError(`${where}: slot name '${slot}' must be lower-case letters, digits and _`);
    if (typeof f !== 'string') throw new ConfigError(`${where}: slot ${slot}: formats must be a string like "float<3..5,1..3>"`);
    return { slot, formats: slotFormats(f, `${where}: slot ${slot}`) };
  });
  const count = slots.reduce((n, s) => n * s.formats.length, 1);
  if (count > MAX_CONFIGS) throw new ConfigError(`${where}: the grid has ${count} configurations, more than ${MAX_CONFIGS}`);
  return gridConfigs(slots, template);
}

/** What is wrong with a precision string (the precision parser's message), or undefined: the ONE place that validates. */
export function precisionProblem(spec: string): string | undefined {
  try {
    parsePolicy(spec);
    return undefined;
  } catch (e) {
    if (e instanceof PrecisionSpecError) return e.message.split('\n')[0];
    throw e;
  }
}

const NAME = /^[A-Za-z0-9_.+-]+$/;

/** Names unique and CSV-safe (no comma, quote, space or newline; not 'dataset'). */
function checkList(list: SweepConfig[], where: string): SweepConfig[] {
  if (list.length === 0) throw new ConfigError(`${where}: no configurations`);
  const seen = new Set<string>();
  list.forEach((c, i) => {
    if (typeof c?.name !== 'string' || !NAME.test(c.name) || c.name === 'dataset')
      throw new ConfigError(`${where}: configuration ${i}: name ${JSON.stringify(c?.name)} must be letters, digits and _ . + - (it is a CSV column)`);
    if (seen.has(c.name)) throw new ConfigError(`${where}: configuration name '${c.name}' appears twice`);
    seen.add(c.name);
    if (typeof c.precision !== 'string') throw new ConfigError(`${where}: configuration '${c.name}': precision must be a string`);
  });
  return list.map(({ name, precision }) => ({ name, precision }));
}

/** `--configs peppp | grid:… | FILE.json` → the configurations in column order, or a ConfigError naming the place. */
export function loadConfigs(arg: string): SweepConfig[] {
  if (arg === 'peppp') return pepppConfigs();
  if (arg.startsWith('grid:')) return checkList(parseGrid(arg.slice(5), undefined, '--configs'), '--configs');
  let text: string;
  try { text = fs.readFileSync(arg, 'utf8'); } catch (e) {
    throw new ConfigError(`--configs ${arg}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); expected peppp, grid:… or a JSON file`);
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch (e) { throw new ConfigError(`${arg}: not valid JSON (${(e as Error).message})`); }
  if (Array.isArray(json)) return checkList(json as SweepConfig[], arg);
  if (json && typeof json === 'object' && 'grid' in json) {
    const { grid, template } = json as { grid: unknown; template?: unknown };
    if (!grid || typeof grid !== 'object' || Array.isArray(grid)) throw new ConfigError(`${arg}: "grid" must be an object {slot: "float<E,M>…"}`);
    if (template !== undefined && typeof template !== 'string') throw new ConfigError(`${arg}: "template" must be a string`);
    return checkList(parseGrid(grid as Record<string, unknown>, template as string | undefined, arg), arg);
  }
  throw new ConfigError(`${arg}: expected a list [{"name": …, "precision": …}, …] or {"grid": {…}}`);
}
