/**
 * `lpc sweep` end to end on the CPU backend with a tiny model: the CSVs' layout and values, a SIGKILLed sweep
 * resumed to the same results as an uninterrupted one, failing cells recorded while the sweep goes on, worker
 * processes, and bad input refused with one line. Runs the built bin/lpc.js.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killAfterCells } from './helpers.js';
import { F43, cellMetrics, cells, read, tinySweep } from './sweep-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-sweep-'));
const lpc = (args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const { configs, tasks, args } = tinySweep(tmp);

describe('lpc sweep', () => {
  const straight = path.join(tmp, 'straight');
  beforeAll(() => {
    const r = lpc(args(straight));
    expect(r.err).toContain('sweep finished 4/4 cells (0 failed)');
    expect(r.code).toBe(0);
  });

  test("errors.csv and memory.csv in PEPPP's layout; per-cell results and metrics", () => {
    const errors = read(path.join(straight, 'errors.csv')).split('\n');
    expect(errors[0]).toBe('dataset,fp32,f43');
    expect(errors[3]).toBe('');
    expect(errors).toHaveLength(4);
    const rows = errors.slice(1, 3).map((l) => l.match(/^"([^"]*)",(.*)$/)!);
    expect(rows.map((m) => m[1])).toEqual(['mnist:classes=0,1', 'mnist:classes=7,2,4']);
    const results = cells(straight);
    expect(results.map((r) => r.id)).toEqual(['t000-c000', 't000-c001', 't001-c000', 't001-c001']);
    rows.forEach((m, t) => {
      const values = m[2].split(',').map(Number);
      // numbers round-trip: the CSV holds exactly the cell's error, 1 − accuracy
      expect(values).toEqual([results[2 * t].error, results[2 * t + 1].error]);
    });
    for (const r of results) {
      expect(r).toMatchObject({ status: 'ok', steps: 6, reason: null });
      expect(r.error).toBeGreaterThanOrEqual(0);
      expect(r.error).toBeLessThan(1);
      expect(Number.isFinite(r.test_loss)).toBe(true);
    }
    // test sets of 2000·(share of those digits) images: the accuracy is a multiple of 1/n
    const memory = read(path.join(straight, 'memory.csv')).trim().split('\n').slice(1).map((l) => l.split(',').slice(-2).map(Number));
    expect(memory[0][0]).toBe(results[0].memory_mb);
    expect(memory[0][0]).toBeGreaterThan(0);
    expect(memory[0][1]).not.toBe(memory[0][0]);
    // one artifact per distinct (configuration, shape, classes): 2 configurations × 2 class counts
    expect(fs.readdirSync(path.join(straight, 'artifacts')).filter((f) => f.endsWith('.lpc'))).toHaveLength(4);
    expect(read(path.join(straight, 'metrics.jsonl')).trim().split('\n')).toHaveLength(4);
    expect(cellMetrics(straight).map((m) => m.length)).toEqual([2, 2, 2, 2]);
  });

  test('a sweep killed with SIGKILL and resumed ends with one result per cell, identical to an uninterrupted one', async () => {
    const killed = path.join(tmp, 'killed');
    await killAfterCells(args(killed), killed, 2);
    expect(cells(killed).map((r) => r.id)).toEqual(['t000-c000', 't000-c001']);
    expect(read(path.join(killed, 'errors.csv')).split('\n')[2]).toBe('"mnist:classes=7,2,4",,');
    const r = lpc(args(killed));
    expect(r.err).toContain('(2 already done)');
    expect(r.code).toBe(0);
    expect(r.err.match(/^sweep cells /gm)).toHaveLength(2); // only the two missing cells ran
    expect(cells(killed)).toEqual(cells(straight));
    expect(cellMetrics(killed)).toEqual(cellMetrics(straight));
    for (const f of ['errors.csv', 'memory.csv']) expect(read(path.join(killed, f))).toBe(read(path.join(straight, f)));
    expect(fs.readdirSync(path.join(killed, 'cells')).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // resuming a finished sweep runs nothing
    const again = lpc(args(killed));
    expect(again.code).toBe(0);
    expect(again.err).toContain('(4 already done)');
    expect(again.err).not.toMatch(/^sweep cells /m);
  });

  test('--workers 2 gives the same results', () => {
    const w = path.join(tmp, 'workers');
    const r = lpc(args(w, ['--workers', '2']));
    expect(r.code).toBe(0);
    expect(cells(w)).toEqual(cells(straight));
    expect(read(path.join(w, 'errors.csv'))).toBe(read(path.join(straight, 'errors.csv')));
  });

  test('a failing cell (bad data, divergence) is recorded with its reason and the sweep goes on', () => {
    // a CIFAR-100 superclass with fewer training images than the batch
    const c100 = path.join(tmp, 'c100');
    fs.mkdirSync(c100);
    const rec = (n: number) => { const b = Buffer.alloc(n * 3074); for (let i = 0; i < n; i++) { b[i * 3074] = 3; b[i * 3074 + 1] = 10 + (i % 2); } return b; };
    fs.writeFileSync(path.join(c100, 'train.bin'), rec(4));
    fs.writeFileSync(path.join(c100, 'test.bin'), rec(2));
    const t2 = path.join(tmp, 'tasks2.txt');
    fs.writeFileSync(t2, `cifar100:${c100}:superclass=3\nmnist:classes=0,1\n`);
    const out = path.join(tmp, 'failing');
    const r = lpc(['sweep', 'test/fixtures/sweep_tiny.ts', '--configs', configs, '--tasks', t2, '--out', out, '--backend', 'cpu', '--epochs', '1', '--max-steps', '2', '--batch', '16']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('sweep finished 4/4 cells (2 failed)');
    const res = cells(out);
    expect(res[0]).toMatchObject({ status: 'failed', error: null, reason: 'batch size 16 is larger than cifar100:superclass=3/train (4 samples)' });
    expect(res[2].status).toBe('ok');
    const csv = read(path.join(out, 'errors.csv')).split('\n');
    expect(csv[1]).toBe(`cifar100:${c100}:superclass=3,,`);
    expect(csv[2]).toMatch(/^"mnist:classes=0,1",0\.\d+,0\.\d+$/);

    const div = path.join(tmp, 'diverged');
    const d = lpc(['sweep', 'test/fixtures/sweep_tiny.ts', '--configs', configs, '--tasks', tasks, '--out', div, '--backend', 'cpu', '--epochs', '1',
      '--max-steps', '3', '--batch', '16', '--optimizer', 'sgd(lr=1e30,momentum=0.9,wd=0)']);
    expect(d.code).toBe(0);
    expect(cells(div)[0]).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^training diverged: loss is (NaN|Infinity)/) });
  });

  test('one sweep per directory: a live owner of DIR/.lock refuses a second run; a dead one is taken over', () => {
    const out = path.join(tmp, 'locked');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, '.lock'), `${process.pid}\n`); // this (live) jest process
    const r = lpc(args(out));
    expect([r.code, r.err.trim()]).toEqual([1, `lpc: ${out}: another lpc sweep (pid ${process.pid}) is running in this directory; wait for it, stop it, or (if none runs) delete ${path.join(out, '.lock')}`]);
    expect(fs.readdirSync(out)).toEqual(['.lock']);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    fs.writeFileSync(path.join(out, '.lock'), `${dead}\n`);
    const ok = lpc(args(out));
    expect(ok.code).toBe(0);
    expect(fs.existsSync(path.join(out, '.lock'))).toBe(false); // released at exit
  });

  test('bad input: one line, exit 2, nothing written', () => {
    const out = path.join(tmp, 'never');
    const bad = (extra: string[], message: string | RegExp, code = 2) => {
      const r = lpc(['sweep', 'test/fixtures/sweep_tiny.ts', '--backend', 'cpu', ...extra]);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      if (typeof message === 'string') expect(r.err.trim()).toBe(`lpc: ${message}`); else expect(r.err).toMatch(message);
      expect(r.code).toBe(code);
      expect(fs.existsSync(out)).toBe(false);
    };
    const badTasks = path.join(tmp, 'bad-tasks.txt');
    fs.writeFileSync(badTasks, 'mnist:classes=0,1\n\nmnist:classes=3,11\n');
    bad(['--configs', configs, '--tasks', badTasks, '--out', out], `${badTasks}:3: 'mnist:classes=3,11': unknown class 11 (mnist has classes 0..9)`);
    const badConfigs = path.join(tmp, 'bad-configs.json');
    fs.writeFileSync(badConfigs, '[{"name": "x", "precision": "W=bpf<8>"}]');
    bad(['--configs', badConfigs, '--tasks', tasks, '--out', out], `${badConfigs}: configuration 'x': precision 1:3: unknown format 'bpf'; expected fixed, bfp, float, minmax, mx or an alias (bf16, fp16, e4m3, e5m2)`);
    fs.writeFileSync(badConfigs, '[{"name": "x", "precision": ""');
    bad(['--configs', badConfigs, '--tasks', tasks, '--out', out], new RegExp(`^lpc: ${badConfigs}: not valid JSON`));
    bad(['--configs', configs, '--tasks', tasks, '--out', tasks], `--out ${tasks} is the input ${tasks}; refusing to write there`);
    const inData = path.join(tmp, 'c100', 'x');
    bad(['--configs', configs, '--tasks', path.join(tmp, 'tasks2.txt'), '--out', inData], `--out ${inData} is inside the input ${path.join(tmp, 'c100')}; refusing to write there`);
    expect(fs.existsSync(inData)).toBe(false);
    bad(['--configs', configs, '--tasks', tasks], 'lpc sweep needs --out');
    bad(['--configs', configs, '--tasks', tasks, '--out', out, '--workers', '0'], "--workers must be an integer ≥ 1, got '0'");
    // a sweep directory made with other options
    const r = lpc(args(straight).map((a) => (a === '1' ? '2' : a)));
    expect(r.err.trim()).toBe(`lpc: --out ${straight}: holds a sweep made with other options (seed differ); resume it with the same options or choose another directory`);
    expect(r.code).toBe(2);
    // the file of a regular file
    fs.writeFileSync(path.join(tmp, 'afile'), '');
    const f = lpc(args(path.join(tmp, 'afile')));
    expect(f.err.trim()).toBe(`lpc: --out ${path.join(tmp, 'afile')}: is not a directory`);
  });
});
