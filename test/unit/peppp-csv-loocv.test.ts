import * as fs from 'node:fs';
import * as os from 'node:os';
/** The matrix CSV layout (round trip, every bad input named by file:line) and a LOOCV on small matrices. */
import * as path from 'node:path';
import { formatMatrixCsv, parseMatrixCsv, readMatrixCsv, readMask, dropRows } from '../../runtime/peppp/matrix-csv.js';
import { runLoocv, parseMeasurements, parseCap } from '../../runtime/peppp/loocv.js';
import { rand } from './helpers.js';

const FIX = path.resolve('test/fixtures/peppp');

describe('matrix CSV', () => {
  test('round trip is exact; empty fields are missing (NaN)', () => {
    const m = {
      rows: ['fashion-mnist:classes=0;2;4', 'cifar10_K10'], cols: ['l_5_1_h_14_7', 'fp32'],
      data: [Float64Array.from([0.1 + 0.2, NaN]), Float64Array.from([180.50993347167969, 1e-300])],
    };
    const text = formatMatrixCsv(m);
    expect(text.split('\n')[1]).toBe('fashion-mnist:classes=0;2;4,0.30000000000000004,');
    const back = parseMatrixCsv(text, 'x.csv', { allowMissing: true });
    expect(back.rows).toEqual(m.rows); expect(back.cols).toEqual(m.cols);
    expect(Array.from(back.data[0])).toEqual([0.30000000000000004, NaN]);
    expect(Array.from(back.data[1])).toEqual([180.50993347167969, 1e-300]);
  });

  test('the released files read as 18 x 99 (Python repr floats, CRLF-safe)', () => {
    const e = readMatrixCsv(path.join(FIX, 'error_matrix_slice.csv'), { shape: [18, 99] });
    expect(e.data[0][0]).toBe(1 - 0.1451);
    expect(parseMatrixCsv('dataset,a,b\r\nr,1,2\r\n', 'w.csv').data[0][1]).toBe(2);
  });

  test.each([
    ['dataset,a,b\nr1,0.1\n', 'f.csv:2: 2 fields, but the header has 3 (a row name and 2 values)'],
    ['dataset,a,b\nr1,0.1,x7\n', "f.csv:2: column 3 (b, row r1): 'x7' is not a number"],
    ['dataset,a,b\nr1,0.1,\n', 'f.csv:2: column 3 (b, row r1): missing value, and this file must be complete'],
    ['dataset,a,b\nr1,0.1,nan\n', 'f.csv:2: column 3 (b, row r1): missing value'],
    ['dataset,a,b\nr1,0.1,0.2\nr1,0.3,0.4\n', "f.csv:3: column 1: row name 'r1' repeats line 2"],
    ['dataset,a,a\nr1,0.1,0.2\n', "f.csv:1: column 3: name 'a' repeats column 2"],
    ['dataset,a,b\n', 'f.csv: no data rows after the header'],
    ['', 'f.csv: empty file'],
    ['dataset,a,b\n,0.1,0.2\n', 'f.csv:2: column 1: the row name is empty'],
    ['dataset,a,b\nr1,0.1,Infinity\n', "f.csv:2: column 3 (b, row r1): 'Infinity' is not a number"],
  ])('bad input %#', (text, msg) => {
    expect(() => parseMatrixCsv(text, 'f.csv')).toThrow(msg);
  });

  test('row names with commas and quotes (data-set specs like mnist:classes=0,1) are quoted and read back', () => {
    const m = { rows: ['mnist:classes=0,1', 'say "hi"'], cols: ['l_5_1_h_14_7', 'c,2'], data: [Float64Array.of(0.5, NaN), Float64Array.of(0.25, 1)] };
    const lines = formatMatrixCsv(m).split('\n');
    expect(lines.slice(0, 3)).toEqual(['dataset,l_5_1_h_14_7,"c,2"', '"mnist:classes=0,1",0.5,', '"say ""hi""",0.25,1']);
    const back = parseMatrixCsv(lines.join('\n'), 'm.csv', { allowMissing: true });
    expect([back.rows, back.cols]).toEqual([m.rows, m.cols]);
    expect(() => parseMatrixCsv('dataset,a\n"x,1\n', 'q.csv')).toThrow('q.csv:2: a quoted field is not closed (or text follows its closing quote)');
  });
  test('a mask in the matrix layout: quoted row names read, rows checked against the matrix by name', () => {
    const f = path.join(os.tmpdir(), `lpc-mask-${process.pid}.csv`);
    fs.writeFileSync(f, 'dataset,a,b\n"mnist:classes=0,1",1,0\nt2,0,1\n');
    expect(readMask(f, 2, 2, ['mnist:classes=0,1', 't2']).map((r) => [...r])).toEqual([[1, 0], [0, 1]]);
    expect(() => readMask(f, 2, 2, ['t2', 'mnist:classes=0,1'])).toThrow(`${f}:2: row 'mnist:classes=0,1' where the error matrix has 't2'`);
    fs.rmSync(f);
  });
  test('wrong shape', () => {
    expect(() => parseMatrixCsv('dataset,a,b\nr,1,2\n', 'f.csv', { shape: [2, 2] })).toThrow('f.csv: 1 x 2, expected 2 x 2');
  });
});

describe('meta-LOOCV', () => {
  test('on exactly low-rank data every prediction is exact: zero regret; uncapped, zero hyperdiff and convergence', () => {
    // errors of rank 2 (a constant plus one product), distinct memories: the held-out row is in the others' row space
    const g = rand(21), R = 8, C = 12;
    const u = Array.from({ length: R }, () => g()), v = Array.from({ length: C }, () => g());
    const mk = (f: (i: number, j: number) => number) => Array.from({ length: R }, (_, i) => Float64Array.from({ length: C }, (_, j) => f(i, j)));
    const err = { rows: u.map((_, i) => `d${i}`), cols: v.map((_, j) => `c${j}`), data: mk((i, j) => 0.2 + 0.5 * u[i] * v[j]) };
    const mem = { rows: err.rows, cols: err.cols, data: mk((i, j) => 100 + 10 * j + i + g()) };
    const out = runLoocv(err, mem, { rank: 2, methods: ['ed', 'qr', 'random'], measurements: [2, 4], caps: ['none', 'median', 150] });
    expect(out.results.length).toBe(3 * 3 * 2);
    for (const r of out.per_row) {
      expect(r.regret).toBeCloseTo(0, 9);
      // the true frontier spans all columns even under a cap (as PEPPP): only uncapped frontiers coincide
      if (r.cap === 'none') { expect(r.hyperdiff).toBeCloseTo(0, 9); expect(r.convergence).toBeCloseTo(0, 9); }
      const limit = r.cap === 'none' ? Infinity : r.cap === 'median' ? out.median_cap : r.cap;
      for (const j of r.selected) expect(mem.data[r.row][j]).toBeLessThanOrEqual(limit);
      // memory fraction by hand
      const cand = mem.data[r.row].filter((x) => x <= limit);
      expect(r.memory_fraction).toBeCloseTo(r.selected.reduce((s, j) => s + mem.data[r.row][j], 0) / cand.reduce((a, b) => a + b, 0), 12);
    }
  });

  test('smoke: released slice, row 0 held out and ImageNet rows, with and without sampling', () => {
    const e = readMatrixCsv(path.join(FIX, 'error_matrix_slice.csv')), m = readMatrixCsv(path.join(FIX, 'memory_mb_matrix_slice.csv'));
    const out = runLoocv(e, m, { rank: 3, methods: ['ed', 'random'], measurements: [3, 6], caps: ['none', 'median'], testRows: [0, 7] });
    expect(out.max_memory).toBe(Math.max(...m.data.flatMap((r) => Array.from(r))));
    for (const r of out.results) {
      expect(r.rows).toBe(2);
      for (const k of ['hyperdiff', 'convergence', 'regret', 'memory_fraction'] as const) expect(Number.isFinite(r[k])).toBe(true);
      expect(r.regret).toBeGreaterThanOrEqual(0);
    }
    const mf = (method: string, n: number) => out.results.find((r) => r.method === method && r.measurements === n && r.cap === 'none')!.memory_fraction;
    expect(mf('ed', 6)).toBeGreaterThan(mf('ed', 3));
    const s = runLoocv(e, m, { rank: 3, methods: ['ed'], measurements: [4], sampling: { kind: 'uniform', ratio: 0.5 }, testRows: [1], maxIter: 200 });
    expect(s.completion!.iterations.length).toBe(1);
    expect(s.results[0].rows).toBe(1);
  });

  test('settings parsers', () => {
    expect(parseMeasurements('3..5,8')).toEqual([3, 4, 5, 8]);
    expect(() => parseMeasurements('5..3')).toThrow('must run upwards');
    expect(parseCap('median')).toBe('median');
    expect(parseCap('512.5')).toBe(512.5);
    expect(() => parseCap('-3')).toThrow('a memory cap must be');
    expect(dropRows({ rows: ['a', 'b', 'c'], cols: ['x'], data: [1, 2, 3].map((v) => Float64Array.from([v])) }, [1]).rows).toEqual(['a', 'c']);
  });
});
