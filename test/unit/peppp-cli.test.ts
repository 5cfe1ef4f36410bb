/** `lpc peppp …` end to end (the built bin/lpc.js): outputs, help, and one clear line per bad input. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { SUBCOMMANDS } from '../../runtime/cli/peppp.js';
import * as path from 'node:path';

const FIX = path.resolve('test/fixtures/peppp');
const ERR = path.join(FIX, 'error_matrix_slice.csv'), MEM = path.join(FIX, 'memory_mb_matrix_slice.csv');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-peppp-'));
function lpc(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', 'peppp', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const CIFAR10_FRONTIER = [0, 3, 4, 36, 48, 51, 77, 81, 87, 89, 91, 95];

describe('lpc peppp', () => {
  test('help: the dispatcher lists every subcommand; each one shows its own options', () => {
    const top = lpc(['--help']);
    expect(top.code).toBe(0);
    for (const s of Object.keys(SUBCOMMANDS)) expect(top.out).toContain(`  ${s} `);
    expect(Object.keys(SUBCOMMANDS)).toEqual(expect.arrayContaining(['memory', 'tune', 'fit', 'select', 'predict', 'pareto', 'loocv']));
    expect(lpc(['memory', '--help']).out).toContain('--configs peppp|grid:…|FILE.json');
    expect(lpc(['tune', '--help']).out).toContain('--budget MB');
    expect(lpc(['fit', '--help']).out).toContain('--sample SPEC');
    expect(lpc(['loocv', '--help']).out).toContain('--measurements RANGE');
    expect(lpc(['predict', '--help']).out).toContain('--budget MB');
    const none = lpc([]);
    expect(none.code).toBe(2);
    const bad = lpc(['fitt']);
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toBe(`lpc: unknown subcommand 'lpc peppp fitt'; subcommands are ${Object.keys(SUBCOMMANDS).join(', ')}`);
    expect(lpc(['pareto', '--bogus']).err.trim()).toBe("lpc: unknown option '--bogus' for 'lpc peppp pareto'; see 'lpc peppp pareto --help'");
    expect(spawnSync(process.execPath, ['bin/lpc.js', '--help'], { encoding: 'utf8' }).stdout).toContain('peppp');
  });

  test('pareto: the CIFAR-10 frontier as JSON, and an SVG with every point and the 12 frontier points', () => {
    const svg = path.join(tmp, 'c10.svg');
    const r = lpc(['pareto', '--errors', ERR, '--memory', MEM, '--row', 'cifar10_K10', '--json', '--plot', svg]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).frontier.map((x: { column: number }) => x.column)).toEqual(CIFAR10_FRONTIER);
    const s = fs.readFileSync(svg, 'utf8');
    expect(s.match(/class="point"/g)!.length).toBe(99);
    expect(s.match(/class="frontier-point"/g)!.length).toBe(12);
    expect(s).toContain('class="frontier"');
    const unknown = lpc(['pareto', '--errors', ERR, '--memory', MEM, '--row', 'mnist']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/^lpc: .*error_matrix_slice\.csv: no row 'mnist'/);
  });

  test('fit: a matrix with empty cells comes back complete, in [0, 1], observed cells nearly kept; nothing else left behind', () => {
    const lines = fs.readFileSync(ERR, 'utf8').trim().split('\n');
    const holey = lines.map((l, i) => (i === 0 ? l : l.split(',').map((f, j) => (j > 0 && (i * 7 + j) % 3 === 0 ? '' : f)).join(','))).join('\n') + '\n';
    const inp = path.join(tmp, 'holey.csv'), out = path.join(tmp, 'completed.csv');
    fs.writeFileSync(inp, holey);
    const r = lpc(['fit', '--errors', inp, '--rank', '3', '--max-iter', '300', '-o', out]);
    expect(r.code).toBe(0);
    expect(r.err).toContain('completed 18 x 99 from');
    const back = fs.readFileSync(out, 'utf8').trim().split('\n');
    expect(back.length).toBe(19);
    expect(back[0]).toBe(lines[0]);
    for (const l of back.slice(1)) for (const f of l.split(',').slice(1)) { const v = Number(f); expect(f).not.toBe(''); expect(v >= 0 && v <= 1).toBe(true); }
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const same = lpc(['fit', '--errors', inp, '-o', inp]);
    expect(same.code).toBe(2);
    expect(same.err).toContain('is the input file too');
  });

  test('select: ED under the median cap picks only configurations within it', () => {
    const r = lpc(['select', '--errors', ERR, '--memory', MEM, '--row', 'imagenet64_task03_K5', '--cap', 'median', '--measurements', '8', '--json']);
    expect(r.code).toBe(0);
    const all = fs.readFileSync(MEM, 'utf8').trim().split('\n').slice(1).flatMap((l) => l.split(',').slice(1).map(Number)).sort((a, b) => a - b);
    const median = (all[all.length / 2 - 1] + all[all.length / 2]) / 2;
    const j = JSON.parse(r.out);
    expect(j.selected.length).toBe(8);
    for (const s of j.selected) expect(s.memory_mb).toBeLessThanOrEqual(median);
    expect(lpc(['select', '--errors', ERR, '--cap', 'median']).code).toBe(2);
  });

  test('predict: a recommendation within the budget with the lowest predicted error; an SVG; bad input', () => {
    const row = fs.readFileSync(ERR, 'utf8').split('\n')[1].split(',');
    const measured = CIFAR10_FRONTIER.slice(0, 6).map((j) => `${j}=${row[j + 1]}`).join(',');
    const svg = path.join(tmp, 'pred.svg');
    const base = ['predict', '--errors', ERR, '--memory', MEM, '--memory-row', 'cifar10_K10'];
    const r = lpc([...base, '--measured', measured, '--budget', '250', '--json', '--plot', svg]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.predicted.length).toBe(99);
    const under = j.predicted.filter((p: { memory_mb: number }) => p.memory_mb <= 250);
    expect(j.recommended.memory_mb).toBeLessThanOrEqual(250);
    expect(j.recommended.predicted_error).toBe(Math.min(...under.map((p: { predicted_error: number }) => p.predicted_error)));
    expect(fs.readFileSync(svg, 'utf8').match(/class="marked"/g)!.length).toBe(6);
    const low = lpc([...base, '--measured', measured, '--budget', '100']);
    expect(low.code).toBe(1);
    expect(low.err.trim()).toBe("lpc: budget 100 MB is below every configuration's memory; the smallest is 180.5099334716797 MB (l_5_1_h_14_7)");
    const bad = lpc([...base, '--measured', '3=0.8,nosuch=0.2']);
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toBe("lpc: --measured: 'nosuch' is neither a configuration name nor a column index below 99");
    expect(lpc([...base, '--measured', '3=abc']).err.trim()).toBe("lpc: --measured: the error of '3' is 'abc', not a number");
    expect(lpc([...base, '--measured', '3=0.1,3=0.2']).code).toBe(2);
  });

  test('shape mismatch and malformed CSV: one line naming the files or file:line, exit 1', () => {
    const cut = path.join(tmp, 'cut.csv');
    fs.writeFileSync(cut, fs.readFileSync(MEM, 'utf8').trim().split('\n').map((l) => l.split(',').slice(0, 50).join(',')).join('\n') + '\n');
    const r = lpc(['pareto', '--errors', ERR, '--memory', cut, '--row', '0']);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`lpc: ${ERR} has 99 configurations but ${cut} has 49`);
    const broken = path.join(tmp, 'broken.csv');
    fs.writeFileSync(broken, 'dataset,a,b\nr1,0.5,0.5\nr2,0.5,oops\n');
    const b = lpc(['loocv', '--errors', broken, '--memory', broken, '--json', path.join(tmp, 'never.json')]);
    expect(b.code).toBe(1);
    expect(b.err.trim()).toBe(`lpc: ${broken}:3: column 3 (b, row r2): 'oops' is not a number`);
    expect(fs.existsSync(path.join(tmp, 'never.json'))).toBe(false);
  });

  test('loocv: JSON results per (method, cap, measurements); bad flags write nothing', () => {
    const out = path.join(tmp, 'loocv.json');
    const r = lpc(['loocv', '--errors', ERR, '--memory', MEM, '--rank', '3', '--methods', 'ed,random', '--measurements', '3..4', '--cap', 'none,median', '--json', out]);
    expect(r.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(j.results.length).toBe(2 * 2 * 2);
    for (const x of j.results) {
      for (const k of ['method', 'cap', 'measurements', 'hyperdiff', 'convergence', 'regret', 'memory_fraction']) expect(x).toHaveProperty(k);
      expect(x.rows).toBe(18);
    }
    const bad = lpc(['loocv', '--errors', ERR, '--memory', MEM, '--measurements', '9..3', '--json', path.join(tmp, 'bad.json')]);
    expect(bad.code).toBe(2);
    expect(fs.existsSync(path.join(tmp, 'bad.json'))).toBe(false);
    expect(lpc(['loocv', '--errors', ERR, '--memory', MEM, '--json', path.join(tmp, 'no', 'dir.json')]).code).toBe(2);
  });
});
