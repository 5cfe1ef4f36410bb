/** PEPPP's Pareto rule and hypervolume: the worked examples of the reference pack (README §5) and properties. */
import * as path from 'node:path';
import { paretoFrontier, hypervolume } from '../../runtime/peppp/pareto.js';
import { readMatrixCsv } from '../../runtime/peppp/matrix-csv.js';
import { rand } from './helpers.js';

const FIX = path.resolve('test/fixtures/peppp');

describe('Pareto frontier (PEPPP rule)', () => {
  test('example 1: equal memory, lower error wins; (3, 0.26) loses to (2, 0.25)', () => {
    const mem = [1, 2, 2, 3, 4], err = [0.30, 0.25, 0.28, 0.26, 0.10];
    expect(paretoFrontier(mem, err)).toEqual([0, 1, 4]);
    expect(paretoFrontier(mem, err, undefined, 'textbook')).toEqual([0, 1, 4]);
  });

  test('example 2: exact duplicates both leave the PEPPP frontier, both stay in the textbook one', () => {
    const mem = [1, 1, 2], err = [0.3, 0.3, 0.2];
    expect(paretoFrontier(mem, err)).toEqual([2]);
    expect(paretoFrontier(mem, err, undefined, 'textbook')).toEqual([0, 1, 2]);
  });

  test('example 3: the CIFAR-10 row of the released data has the 12-column frontier of the README', () => {
    const e = readMatrixCsv(path.join(FIX, 'error_matrix_slice.csv')), m = readMatrixCsv(path.join(FIX, 'memory_mb_matrix_slice.csv'));
    expect(e.rows[0]).toBe('cifar10_K10');
    const expected: [number, number, number][] = [
      [0, 180.5099, 0.8549], [3, 183.1858, 0.8265], [4, 188.5376, 0.8157], [36, 209.1195, 0.5413], [48, 240.4049, 0.4356],
      [51, 243.0807, 0.3649], [77, 251.1084, 0.3255], [81, 266.3386, 0.3049], [87, 271.6903, 0.2989], [89, 282.3938, 0.2624],
      [91, 300.2998, 0.2442], [95, 308.3275, 0.2392],
    ];
    const f = paretoFrontier(m.data[0], e.data[0]);
    expect(f).toEqual(expected.map((x) => x[0]));
    f.forEach((j, i) => { expect(m.data[0][j]).toBeCloseTo(expected[i][1], 3); expect(e.data[0][j]).toBeCloseTo(expected[i][2], 4); });
  });

  test('candidate subsets and NaN entries (failed sweep cells) never join', () => {
    const mem = [1, 2, NaN, 3], err = [0.5, NaN, 0.1, 0.2];
    expect(paretoFrontier(mem, err)).toEqual([0, 3]);
    expect(paretoFrontier([1, 2, 3], [0.3, 0.2, 0.1], [1, 2])).toEqual([1, 2]);
  });

  test('property: textbook rule = a sweep by memory; PEPPP rule = textbook minus exact duplicates', () => {
    const r = rand(7);
    for (let t = 0; t < 50; t++) {
      const n = 5 + Math.floor(r() * 40);
      // coarse grids make ties and duplicates common, as in the released data
      const mem = Array.from({ length: n }, () => Math.floor(r() * 8)), err = Array.from({ length: n }, () => Math.floor(r() * 8) / 8);
      // sweep: per memory value, the lowest-error points join if they beat everything with less memory
      const sweep: number[] = [];
      let best = Infinity;
      for (const m of [...new Set(mem)].sort((a, b) => a - b)) {
        const group = mem.map((_, i) => i).filter((i) => mem[i] === m);
        const low = Math.min(...group.map((i) => err[i]));
        if (low < best) sweep.push(...group.filter((i) => err[i] === low));
        best = Math.min(best, low);
      }
      expect(paretoFrontier(mem, err, undefined, 'textbook')).toEqual(sweep);
      const dup = (i: number) => mem.some((_, j) => j !== i && mem[j] === mem[i] && err[j] === err[i]);
      expect(paretoFrontier(mem, err)).toEqual(sweep.filter((i) => !dup(i)));
    }
  });
});

describe('hypervolume', () => {
  test('example 1 with reference (5, 0.5) is 1.10, whatever order the points come in (bug 2 fixed)', () => {
    expect(hypervolume([[1, 0.30], [2, 0.25], [4, 0.10]], [5, 0.5])).toBeCloseTo(1.10, 12);
    expect(hypervolume([[4, 0.10], [1, 0.30], [2, 0.25]], [5, 0.5])).toBeCloseTo(1.10, 12);
  });

  test('not the released notebooks\' pairing (errors sorted, memories in given order: 0.85 for these points, README §6.7)', () => {
    expect(hypervolume([[4, 0.10], [1, 0.30], [2, 0.25]], [5, 0.5])).not.toBeCloseTo(0.85, 6);
  });

  test('equals the area computed on a fine grid', () => {
    const pts: [number, number][] = [[0.1, 0.9], [0.3, 0.5], [0.35, 0.45], [0.8, 0.05]];
    const ref: [number, number] = [1, 1];
    let cells = 0; const N = 400;
    for (let a = 0; a < N; a++) for (let b = 0; b < N; b++) {
      const x = (a + 0.5) / N, y = (b + 0.5) / N;
      if (pts.some(([px, py]) => px <= x && py <= y)) cells++;
    }
    expect(hypervolume(pts, ref)).toBeCloseTo(cells / (N * N), 2);
  });
});
