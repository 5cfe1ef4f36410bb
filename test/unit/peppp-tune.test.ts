/**
 * `lpc peppp tune` end to end on the CPU backend with a tiny model: a synthetic low-rank meta-training matrix over 12
 * configurations, a budget that leaves about half of them, 3 measured (ED-MF) through the sweep runner. Checked
 * against what the tool must guarantee, recomputed here: nothing over the budget is measured or recommended, the
 * measured errors are the sweep's, the recommendation is the lowest predicted error within the budget, a rerun
 * resumes the sweep, and a budget below every configuration stops before anything is trained or written.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-peppp-tune-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const lpc = (args: string[]) => spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
const CONFIGS = 'grid:low=float<3|4|5,1..2>,high=float<6,7|9>';
const common = ['--configs', CONFIGS, '--backend', 'cpu', '--epochs', '1', '--max-steps', '2', '--batch', '16'];

test('lpc peppp tune: measure 3 of the configurations within the budget, predict the rest, recommend within the budget', () => {
  const mem = lpc(['peppp', 'memory', 'test/fixtures/sweep_tiny.ts', '--configs', CONFIGS, '--batch', '16', '--input', '1x28x28', '--classes', '2', '--no-planned', '--json']);
  expect(mem.status).toBe(0);
  const cfgs = (JSON.parse(mem.stdout) as { configs: { name: string; memory_mb: number }[] }).configs;
  expect(cfgs.length).toBe(12);
  const sorted = cfgs.map((c) => c.memory_mb).sort((a, b) => a - b), budget = (sorted[5] + sorted[6]) / 2;
  // a low-rank meta matrix (rank 3: a row term, a column term and one product), in (0, 1)
  const rows = Array.from({ length: 8 }, (_, i) => `task${i},${cfgs.map((_, j) => (0.1 + 0.05 * (i % 4) + 0.4 / (1 + j) + 0.02 * i * (j % 3)).toFixed(6)).join(',')}`);
  const meta = path.join(tmp, 'meta.csv');
  fs.writeFileSync(meta, `dataset,${cfgs.map((c) => c.name).join(',')}\n${rows.join('\n')}\n`);
  const out = path.join(tmp, 'tune');
  const args = ['peppp', 'tune', 'test/fixtures/sweep_tiny.ts', '--data', 'mnist:classes=0,1', '--budget', String(budget), '--meta', meta,
    '--measurements', '3', '--rank', '2', '--out', out, ...common, '--json'];
  const r = lpc(args);
  expect([r.status, r.stderr.split('\n').filter((l) => l.startsWith('lpc: ') && !l.includes('wrote')).slice(-1)[0]]).toEqual([0, expect.stringContaining('lpc: sweep finished 3/3 cells (0 failed)')]);
  const res = JSON.parse(fs.readFileSync(path.join(out, 'prediction.json'), 'utf8'));
  expect(res.candidates).toBe(6);
  const byName = new Map(cfgs.map((c) => [c.name, c.memory_mb]));
  for (const m of res.measured) expect(byName.get(m.name)!).toBeLessThanOrEqual(budget);
  const sweepErr = fs.readFileSync(path.join(out, 'sweep', 'errors.csv'), 'utf8').trim().split('\n');
  expect(sweepErr[0].split(',').slice(1)).toEqual(res.measured.map((m: { name: string }) => m.name));
  expect(sweepErr[1].split(',').slice(-3).map(Number)).toEqual(res.measured.map((m: { error: number }) => m.error));
  const within = (res.predicted as { name: string; memory_mb: number; predicted_error: number }[]).filter((q) => q.memory_mb <= budget);
  expect(within.length).toBe(6);
  const best = within.reduce((a, b) => (b.predicted_error < a.predicted_error ? b : a));
  expect(res.recommended.name).toBe(best.name);
  const bm = (res.measured as { name: string; error: number }[]).reduce((a, b) => (b.error < a.error ? b : a));
  expect(res.best_measured).toMatchObject({ name: bm.name, error: bm.error });
  expect(JSON.parse(r.stdout).recommended.precision).toContain('loss_scale=1000');
  expect(fs.readFileSync(path.join(out, 'pareto.svg'), 'utf8')).toMatch(/^<svg[^]*predicted[^]*measured/);
  // a rerun resumes the sweep: nothing trained again
  const again = lpc(args);
  expect(again.status).toBe(0);
  expect(again.stderr).toContain('(3 already done)');
  // another selection into the same work directory is refused before anything there changes
  const before = fs.readFileSync(path.join(out, 'measured-configs.json'), 'utf8');
  const other = lpc(args.map((a, i) => (args[i - 1] === '--measurements' ? '4' : a)));
  expect([other.status, other.stderr.trim()]).toEqual([2, `lpc: --out ${out}: holds a tune that measured other configurations (another data set, budget, meta matrix or --measurements); choose another directory`]);
  expect(fs.readFileSync(path.join(out, 'measured-configs.json'), 'utf8')).toBe(before);
}, 180000);

test('lpc peppp tune: a budget below every configuration, or a meta column that is no configuration, stops before any work', () => {
  const meta = path.join(tmp, 'meta2.csv'), out = path.join(tmp, 'never');
  fs.writeFileSync(meta, 'dataset,l_5_1_h_14_7,nosuch\nt0,0.5,0.4\n');
  const bad = lpc(['peppp', 'tune', 'test/fixtures/sweep_tiny.ts', '--data', 'mnist:classes=0,1', '--budget', '1', '--meta', meta, '--out', out, ...common]);
  expect([bad.status, bad.stderr.trim()]).toEqual([2, `lpc: ${meta}: column 'nosuch' is not a configuration of --configs ${CONFIGS}`]);
  fs.writeFileSync(meta, 'dataset,l_5_1_h_14_7,l_6_2_h_16_9\nt0,0.5,0.4\n');
  const low = lpc(['peppp', 'tune', 'test/fixtures/sweep_tiny.ts', '--data', 'mnist:classes=0,1', '--budget', '0.001', '--meta', meta, '--out', out, ...common]);
  expect(low.status).toBe(1);
  expect(low.stderr.trim()).toMatch(/^lpc: budget 0\.001 MB is below every configuration's memory; the smallest is [\d.]+ MB \(l_5_1_h_14_7\)$/);
  expect(fs.existsSync(out)).toBe(false);
}, 60000);
