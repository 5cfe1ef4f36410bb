/**
 * PEPPP's matrix CSV layout: a header `dataset,<column names>`, then one line per row: its name and one number per
 * column. An empty field (or `nan`, as Python writes it) means "missing" and reads as NaN; whether that is allowed
 * is the reader's option. Numbers are written with JS's shortest round-trip form, so a write then read is exact.
 * Errors name the file, the line and the column, so a hand-edited or half-written sweep file is easy to fix.
 */
import * as fs from 'node:fs';

/** A matrix with named rows and columns; `data[i][j]` is row i, column j (NaN = missing). */
export interface NamedMatrix { rows: string[]; cols: string[]; data: Float64Array[] }

export interface ReadOptions {
  /** whether empty / nan fields may appear (default false: every entry must be a number) */
  allowMissing?: boolean;
  /** the exact row and column count required, if known */
  shape?: [number, number];
}

// a decimal number as CSV writers produce it (no hex, no Infinity, no spaces)
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** A plain decimal number (as CSV writers and users write them: no hex, no Infinity, no spaces), else NaN. */
export const decimal = (text: string): number => (NUMBER.test(text) ? Number(text) : NaN);
const MISSING = new Set(['', 'nan', 'NaN', 'NAN']);

/** One field as a number; undefined when it is missing, an Error message when it is not a number. */
function field(text: string): number | undefined | string {
  const t = text.trim();
  if (MISSING.has(t)) return undefined;
  if (!NUMBER.test(t)) return `'${text.length > 40 ? text.slice(0, 40) + '…' : text}' is not a number`;
  return Number(t);
}

/** A name as a CSV field: quoted (RFC 4180, "" for a quote) when it holds a comma or a quote, as data-set specs
 *  like `mnist:classes=0,1` do. */
export const csvField = (s: string) => (/[",]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** The fields of one CSV line; a quoted field may hold commas and "" quotes. Undefined when a quote is unclosed. */
function splitFields(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      for (i++; ; i++) {
        if (i >= line.length) return undefined;
        if (line[i] === '"') { if (line[i + 1] === '"') { v += '"'; i++; } else { i++; break; } } else v += line[i];
      }
      out.push(v);
      if (i < line.length && line[i] !== ',') return undefined;
    } else {
      const j = line.indexOf(',', i);
      out.push(line.slice(i, j < 0 ? line.length : j));
      i = j < 0 ? line.length : j;
    }
    if (i >= line.length) return out;
    i++; // the comma
  }
}
function fieldsOf(l: { no: number; text: string }, file: string): string[] {
  const f = splitFields(l.text);
  if (!f) throw new Error(`${file}:${l.no}: a quoted field is not closed (or text follows its closing quote)`);
  return f;
}

/** Lines of a text with their 1-based line numbers, skipping blank lines and `#` comments. */
function contentLines(text: string): { no: number; text: string }[] {
  return text.split('\n').map((l, i) => ({ no: i + 1, text: l.replace(/\r$/, '') }))
    .filter((l) => l.text.trim() !== '' && !l.text.startsWith('#'));
}

/** Parses the CSV text of `file` (used only in messages). */
export function parseMatrixCsv(text: string, file: string, opts: ReadOptions = {}): NamedMatrix {
  const lines = contentLines(text);
  if (!lines.length) throw new Error(`${file}: empty file (expected a header 'dataset,<column names>')`);
  const head = fieldsOf(lines[0], file);
  const cols = head.slice(1).map((c) => c.trim());
  if (cols.length === 0) throw new Error(`${file}:${lines[0].no}: the header names no columns`);
  const seenCol = new Map<string, number>();
  cols.forEach((c, j) => {
    if (c === '') throw new Error(`${file}:${lines[0].no}: column ${j + 2} of the header is empty`);
    if (seenCol.has(c)) throw new Error(`${file}:${lines[0].no}: column ${j + 2}: name '${c}' repeats column ${seenCol.get(c)! + 2}`);
    seenCol.set(c, j);
  });
  const rows: string[] = [], data: Float64Array[] = [];
  const seenRow = new Map<string, number>();
  for (const line of lines.slice(1)) {
    const { no } = line, f = fieldsOf(line, file);
    if (f.length !== cols.length + 1) throw new Error(`${file}:${no}: ${f.length} fields, but the header has ${cols.length + 1} (a row name and ${cols.length} values)`);
    const name = f[0].trim();
    if (name === '') throw new Error(`${file}:${no}: column 1: the row name is empty`);
    if (seenRow.has(name)) throw new Error(`${file}:${no}: column 1: row name '${name}' repeats line ${seenRow.get(name)}`);
    seenRow.set(name, no);
    const row = new Float64Array(cols.length);
    for (let j = 0; j < cols.length; j++) {
      const v = field(f[j + 1]);
      const where = `${file}:${no}: column ${j + 2} (${cols[j]}, row ${name})`;
      if (typeof v === 'string') throw new Error(`${where}: ${v}`);
      if (v === undefined && !opts.allowMissing) throw new Error(`${where}: missing value, and this file must be complete`);
      row[j] = v ?? NaN;
    }
    rows.push(name);
    data.push(row);
  }
  if (!rows.length) throw new Error(`${file}: no data rows after the header`);
  if (opts.shape && (rows.length !== opts.shape[0] || cols.length !== opts.shape[1]))
    throw new Error(`${file}: ${rows.length} x ${cols.length}, expected ${opts.shape[0]} x ${opts.shape[1]}`);
  return { rows, cols, data };
}

export function readMatrixCsv(file: string, opts: ReadOptions = {}): NamedMatrix {
  return parseMatrixCsv(readText(file), file, opts);
}

function readText(file: string): string {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  if (fs.statSync(file).isDirectory()) throw new Error(`${file}: is a directory, not a CSV file`);
  return fs.readFileSync(file, 'utf8');
}

/** The CSV text of `m`; NaN is written as an empty field, every other number in its shortest round-trip form (JS's,
 *  like Python's repr); names with commas quoted. */
export function formatMatrixCsv(m: NamedMatrix): string {
  for (const n of [...m.rows, ...m.cols]) if (/[\n\r]/.test(n)) throw new Error(`name '${n}' holds a line break; it cannot be written as CSV`);
  const out = [['dataset', ...m.cols].map(csvField).join(',')];
  m.data.forEach((row, i) => {
    if (row.length !== m.cols.length) throw new Error(`row ${m.rows[i]} has ${row.length} values for ${m.cols.length} columns`);
    out.push(`${csvField(m.rows[i])},${Array.from(row, (v) => (Number.isNaN(v) ? '' : String(v))).join(',')}`);
  });
  return out.join('\n') + '\n';
}

/**
 * An observation mask (1 = observed, 0 = not): either bare lines of 0/1 (the released `loocv_train_mask.csv`, `#`
 * comments allowed) or the matrix layout with a header and row names. Must be `rows` x `cols`.
 */
export function readMask(file: string, rows: number, cols: number, rowNames?: readonly string[]): Uint8Array[] {
  const lines = contentLines(readText(file));
  const named = lines.length > 0 && fieldsOf(lines[0], file).some((f) => !/^\s*[01]\s*$/.test(f));
  const body = named ? lines.slice(1) : lines;
  if (body.length !== rows) throw new Error(`${file}: ${body.length} mask rows, expected ${rows}`);
  return body.map((line, i) => {
    const all = fieldsOf(line, file), no = line.no;
    // a named mask must list the matrix's rows in its order: matching by position alone would shift a whole row
    if (named && rowNames && all[0].trim() !== rowNames[i]) throw new Error(`${file}:${no}: row '${all[0].trim()}' where the error matrix has '${rowNames[i]}'`);
    const f = all.slice(named ? 1 : 0);
    if (f.length !== cols) throw new Error(`${file}:${no}: ${f.length} mask values, expected ${cols}`);
    return Uint8Array.from(f, (v, j) => {
      const t = v.trim();
      if (t !== '0' && t !== '1') throw new Error(`${file}:${no}: column ${j + 1 + (named ? 1 : 0)}: '${v}' is not 0 or 1`);
      return t === '1' ? 1 : 0;
    });
  });
}

/** The submatrix of `m` without the rows at the given indices (order kept). */
export function dropRows(m: NamedMatrix, drop: number[]): NamedMatrix {
  for (const d of drop) if (!Number.isInteger(d) || d < 0 || d >= m.rows.length) throw new Error(`row index ${d} to drop is outside 0..${m.rows.length - 1}`);
  const keep = m.rows.map((_, i) => i).filter((i) => !drop.includes(i));
  return { rows: keep.map((i) => m.rows[i]), cols: m.cols, data: keep.map((i) => m.data[i]) };
}

/** Checks that an error and a memory matrix describe the same rows and columns. */
export function checkSameShape(err: NamedMatrix, errFile: string, mem: NamedMatrix, memFile: string): void {
  if (err.rows.length !== mem.rows.length || err.cols.length !== mem.cols.length)
    throw new Error(`${errFile} is ${err.rows.length} x ${err.cols.length} but ${memFile} is ${mem.rows.length} x ${mem.cols.length}`);
  const j = err.cols.findIndex((c, k) => c !== mem.cols[k]);
  if (j >= 0) throw new Error(`column ${j + 2} is '${err.cols[j]}' in ${errFile} but '${mem.cols[j]}' in ${memFile}`);
  const i = err.rows.findIndex((r, k) => r !== mem.rows[k]);
  if (i >= 0) throw new Error(`data row ${i + 1} is '${err.rows[i]}' in ${errFile} but '${mem.rows[i]}' in ${memFile}`);
}

/** The index of the row called `name` (or given as a 0-based index written in decimal). */
export function rowIndex(m: NamedMatrix, name: string, file: string): number {
  const i = m.rows.indexOf(name);
  if (i >= 0) return i;
  if (/^\d+$/.test(name) && Number(name) < m.rows.length) return Number(name);
  throw new Error(`${file}: no row '${name}' (rows are ${m.rows.slice(0, 3).join(', ')}${m.rows.length > 3 ? ', …' : ''}, or a 0-based index below ${m.rows.length})`);
}
