/**
 * PEPPP-style sweeps over MX end to end (`lpc sweep`, the built bin/lpc.js, CPU backend, synthetic data, two steps):
 * a `--configs grid:` naming MX element formats and a scale mode, and a configs JSON with an MX recipe, a CPT
 * schedule over MXINT and torchao scale modes in named classes. Every cell trains, the CSVs name the configurations,
 * the scheduled cell records its widths, and the memory column follows the formats' widths.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfigs } from '../../runtime/sweep/configs.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-mx-sweep-'));
const tasks = path.join(tmp, 'tasks.txt');
fs.writeFileSync(tasks, 'synthetic\n');
const sweep = (configs: string, out: string) => {
  const r = spawnSync(process.execPath, ['bin/lpc.js', 'sweep', 'test/fixtures/sweep_tiny.ts', '--configs', configs, '--tasks', tasks, '--out', out,
    '--backend', 'cpu', '--epochs', '1', '--max-steps', '2', '--batch', '16', '--seed', '1'], { encoding: 'utf8' });
  return { code: r.status, err: r.stderr };
};
const csv = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => l.split(','));
const cell = (dir: string, id: string) => JSON.parse(fs.readFileSync(path.join(dir, 'cells', `${id}.json`), 'utf8'));

test('grid: MX element formats and a scale mode in the slots', () => {
  const grid = 'grid:low=mx<e4m3|int4>+float<4,3>,high=mx<int8,block=16,scale=ceil>';
  expect(loadConfigs(grid)[1].precision).toBe('low=mx<int4>:stochastic high=mx<int8,block=16,scale=ceil>:stochastic W=low G=low M=high ACC=high loss_scale=1000');
  expect(() => loadConfigs('grid:low=mx<e4m3,scale=up>')).toThrow("--configs: slot low: 'up' is not an MX scale mode (floor, ceil, even, rceil)");
  const out = path.join(tmp, 'grid');
  const r = sweep(grid, out);
  expect([r.code, r.err]).toEqual([0, expect.stringContaining('sweep finished 3/3 cells (0 failed)')]);
  const [head, row] = csv(path.join(out, 'errors.csv'));
  expect(head).toEqual(['dataset', 'l_mx_e4m3_h_mx_int8_b16_ceil', 'l_mx_int4_h_mx_int8_b16_ceil', 'l_8_3_h_mx_int8_b16_ceil']);
  expect(row.slice(1).map(Number).every((e) => e >= 0 && e < 1)).toBe(true);
  // PEPPP's memory follows the low format's width: mx<int4> (4.25 bits) < float<4,3> (8) < mx<e4m3> (8.25)
  const mem = csv(path.join(out, 'memory.csv'))[1].slice(1).map(Number);
  expect(mem[1]).toBeLessThan(mem[2]);
  expect(mem[2]).toBeLessThan(mem[0]);
});

test('configs JSON: an MXFP8 recipe, CPT over MXINT, scale modes in classes', () => {
  const configs = path.join(tmp, 'configs.json');
  fs.writeFileSync(configs, JSON.stringify([
    { name: 'mxfp8', precision: 'W=mx<e4m3> A=mx<e4m3> E=mx<e5m2> G=mx<e5m2> ACC=f32 ; save=mx<e4m3>' },
    { name: 'mxint_cpt', precision: 'W=mx<int8> A=mx<int8> E=mx<int8>:stochastic ; schedule fwd=cyclic(3,8,periods=2) bwd=const(8)' },
    { name: 'mxfp4_rceil', precision: 'low=mx<e2m1,scale=rceil>:stochastic high=mx<int8,scale=ceil> W=low G=low M=high ACC=high loss_scale=1000' },
  ]));
  const out = path.join(tmp, 'json');
  const r = sweep(configs, out);
  expect([r.code, r.err]).toEqual([0, expect.stringContaining('sweep finished 3/3 cells (0 failed)')]);
  expect(csv(path.join(out, 'errors.csv'))[0]).toEqual(['dataset', 'mxfp8', 'mxint_cpt', 'mxfp4_rceil']);
  const losses = ['t000-c000', 't000-c001', 't000-c002'].map((id) => cell(out, id)).map((c) => { expect(c.status).toBe('ok'); return c.train_loss; });
  expect(new Set(losses).size).toBe(3);
  // the scheduled cell ran at the schedule's widths (the epoch's record: its last step's; cyclic(3,8) over 2 steps in
  // 2 periods is 3 at every step)
  const metrics = fs.readFileSync(path.join(out, 'cells', 't000-c001.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(metrics.map((m) => [m.bits_fwd, m.bits_bwd])).toEqual([[3, 8]]);
});
