/**
 * Numerics diagnostics: `lpc run --check-numerics` names the op and model line of an injected overflow; a diverged
 * run (training or evaluation) exits 1 and points at --check-numerics; metrics never hold null; `--quant-stats`
 * counts equal counts written out by hand; with neither flag the loop reads nothing back.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { quantCounts } from '../../runtime/train/quant-stats.js';
import { quantize } from '../../ir/quant/quantize.js';
import { panels } from '../../runtime/cli/plot.js';
import { readArtifact } from '../../runtime/artifact.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState } from '../../runtime/train/init.js';
import { train } from '../../runtime/train/train.js';
import { loadSynthetic } from '../../runtime/data/synthetic.js';
import { Progress } from '../../runtime/train/progress.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-numerics-'));
function lpc(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const RUN = ['--backend', 'cpu', '--data', 'synthetic', '--epochs', '1', '--seed', '1'];
const MODEL = 'test/models/overflow.ts';
/** The 1-based line of the model's logits layer (`return linear(`), found in its text, not taken from lpc. */
const logitsLine = fs.readFileSync(MODEL, 'utf8').split('\n').findIndex((l) => l.includes('return linear(')) + 1;
const noNull = (file: string) => {
  const text = fs.readFileSync(file, 'utf8');
  expect(text).not.toMatch(/null/);
  return text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
};

describe('--check-numerics and divergence', () => {
  const art = path.join(tmp, 'overflow.lpc');
  beforeAll(() => { expect(lpc(['compile', MODEL, '-o', art, '--batch', '8']).code).toBe(0); });

  test('names the op, node and model line of an overflow, and the step; exit 1', () => {
    const r = lpc(['run', art, ...RUN, '--max-steps', '3', '--check-numerics']);
    expect(r.code).toBe(1);
    const last = r.err.trim().split('\n').pop()!;
    expect(last).toMatch(/^lpc: training diverged: loss is NaN at epoch 1, step 1; --check-numerics, training step 1 \(epoch 1, step 1\): first non-finite value: -?Infinity at element \d+ of %\d+ = linear \(reads [\w.]+weight, [\w.]+bias\) in graph train at /);
    expect(last.endsWith(`${MODEL}:${logitsLine}:10`)).toBe(true);
  });

  test('without the flag the run exits 1 and says to rerun with --check-numerics; a step record holds "NaN", never null', () => {
    const metrics = path.join(tmp, 'div.jsonl');
    const r = lpc(['run', art, ...RUN, '--max-steps', '3', '--metrics', metrics, '--metrics-steps', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('training diverged: loss is NaN at epoch 1, step 1; rerun with --check-numerics');
    expect(noNull(metrics)).toEqual([{ step: 1, epoch: 1, loss: 'NaN', lr: Math.fround(0.05) }]);
    const p = panels(noNull(metrics)).panels.find((x) => x.title === 'loss')!;
    expect(p.marks).toEqual([{ x: 1, label: 'loss NaN' }]);
    expect(lpc(['plot', metrics, '-o', path.join(tmp, 'div.svg')]).code).toBe(0);
  });

  test('a non-finite evaluation loss is divergence: exit 1, the epoch record holds "NaN", --check-numerics names the eval op', () => {
    // lr 1e30: the first step's loss is finite, but its update leaves weights of ~1e30 and the evaluation overflows
    const big = path.join(tmp, 'big.lpc');
    expect(lpc(['compile', 'test/fixtures/helpers_loop.ts', '-o', big, '--batch', '8', '--optimizer', 'sgd(lr=1e30,momentum=0.9,wd=0)']).code).toBe(0);
    const metrics = path.join(tmp, 'eval.jsonl');
    const r = lpc(['run', big, ...RUN, '--max-steps', '1', '--metrics', metrics]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/evaluation diverged: the test loss after epoch 1 is NaN; rerun with --check-numerics/);
    const [rec] = noNull(metrics);
    expect(rec).toMatchObject({ epoch: 1, test_loss: 'NaN' });
    const c = lpc(['run', big, ...RUN, '--max-steps', '1', '--check-numerics']);
    expect(c.code).toBe(1);
    expect(c.err).toMatch(/--check-numerics, test batch 1 of \d+ through graph eval: first non-finite value: -?Infinity at element \d+ of %\d+ = conv2d .*test\/fixtures\/helpers_loop\.ts:\d+:\d+/);
    // two steps: the state the first step leaves is finite, the second step's forward overflows first
    const d = lpc(['run', big, ...RUN, '--max-steps', '2', '--check-numerics']);
    expect(d.err).toMatch(/training step 2 \(epoch 1, step 2\): first non-finite value: .* = conv2d/);
  });
});

describe('--quant-stats', () => {
  test('counts equal a direct count: fixed<4,2> (range [−2, 1.75], grid 0.25), nearest', () => {
    const x = Float32Array.from([0, 0.1, -0.1, 0.2, 1.8, 2.5, -2.1, -3, 0.05, NaN, 1.0, -0.6]);
    const q = quantize(x, [12], { kind: 'fixed', wl: 4, fl: 2 }, 'nearest');
    // q by hand: round to the 0.25 grid, clip to [−2, 1.75]; NaN stays NaN (−0.1 gives −0, as QPyTorch)
    expect(Array.from(q)).toEqual([0, 0, -0, 0.25, 1.75, 1.75, -2, -2, 0, NaN, 1, -0.5]);
    const c = quantCounts(x, q, [12], { kind: 'fixed', wl: 4, fl: 2 });
    const finite = [0, 0.1, -0.1, 0.2, 1.8, 2.5, -2.1, -3, 0.05, 1.0, -0.6].map(Math.fround);
    const qf = [0, 0, 0, 0.25, 1.75, 1.75, -2, -2, 0, 1, -0.5];
    expect(c.n).toBe(12);
    expect(c.nonfinite).toBe(1);
    expect(c.saturated).toBe(finite.filter((v) => v > 1.75 || v < -2).length); // 1.8, 2.5, −2.1, −3
    expect(c.saturated).toBe(4);
    expect(c.nonzero).toBe(10);
    expect(c.flushed).toBe(3); // 0.1, −0.1, 0.05
    let sum = 0, k = 0;
    finite.forEach((v, i) => { if (v !== 0) { sum += Math.abs(qf[i] - v) / Math.abs(v); k++; } });
    expect(c.relErrSum / c.relErrN).toBeCloseTo(sum / k, 12);
  });

  test('block and float ranges: bfp clips at 2^E·(2 − 2^(2−wl)) of its block, float<3,1> at 2^4·1.5, minmax at its qparams', () => {
    const bx = Float32Array.from([1.9, 0.3, -1.0, 0.01, /* block 2 */ 7.9, -7.6, 3, 0]);
    const bfp = { kind: 'bfp' as const, wl: 4, axis: 0 };
    // rows of 4 along axis 0 of [2,4]: row 0 max 1.9 → E = 0, clip 1.75; row 1 max 7.9 → E = 2, clip 7
    const shape = [2, 4];
    const bq = quantize(bx, shape, bfp, 'nearest');
    expect([bq[0], bq[4], bq[5]]).toEqual([1.75, 7, -7]); // the interpreter clips exactly there
    const c = quantCounts(bx, bq, shape, bfp);
    expect(c.saturated).toBe(3); // 1.9, 7.9, −7.6
    const fx = Float32Array.from([30, -25, 24, 1, 0.001]);
    const fl = { kind: 'float' as const, exp: 3, man: 1 };
    const fq = quantize(fx, [5], fl, 'nearest');
    expect(Array.from(fq).slice(0, 3)).toEqual([24, -24, 24]);
    const fc = quantCounts(fx, fq, [5], fl);
    expect([fc.saturated, fc.flushed]).toEqual([2, fq[4] === 0 ? 1 : 0]);
    const mx = Float32Array.from([-0.5, 0.5, 1.5]);
    const mm = quantCounts(mx, mx, [3], { kind: 'minmax', bits: 4, per: 'tensor' }, [0, 1]);
    expect(mm.saturated).toBe(2);
    expect(quantCounts(mx, mx, [3], { kind: 'minmax', bits: 4, per: 'tensor' }).saturated).toBe(0);
  });

  test('a run records every quantizer site with its role and format; no null; plot and inspect show them', () => {
    const art = path.join(tmp, 'q.lpc');
    expect(lpc(['compile', 'test/fixtures/sweep_tiny.ts', '-o', art, '--batch', '4', '--precision', 'W=fixed<8,6> A=e4m3 E=bfp<8>:stochastic G=fixed<4,3>']).code).toBe(0);
    const metrics = path.join(tmp, 'q.jsonl');
    const r = lpc(['run', art, ...RUN, '--max-steps', '4', '--quant-stats', '2', '--metrics', metrics]);
    expect(r.code).toBe(0);
    const recs = noNull(metrics);
    const qs = recs.filter((x) => 'quant_step' in x) as { quant_step: number; sites: Record<string, unknown>[] }[];
    expect(qs.map((x) => x.quant_step)).toEqual([1, 3]);
    const sites = qs[0].sites;
    expect(new Set(sites.map((s) => s.site))).toEqual(new Set(['A', 'E', 'G', 'W']));
    expect(sites.find((s) => s.site === 'E')).toMatchObject({ fmt: 'bfp<8,tensor>', rounding: 'stochastic' });
    expect(sites.find((s) => s.site === 'G')).toMatchObject({ fmt: 'fixed<4,3>' });
    for (const s of sites) for (const k of ['saturated', 'flushed', 'nonfinite']) expect(s[k]).toBeGreaterThanOrEqual(0);
    expect(sites.filter((s) => s.site === 'G').some((s) => (s.flushed as number) > 0)).toBe(true); // 4-bit gradients flush
    const titles = panels(recs).panels.map((p) => p.title);
    expect(titles).toEqual(expect.arrayContaining(['quantizers: saturated, flushed to zero', 'quantizers: mean relative rounding error', 'learning rate']));
    const ins = lpc(['inspect', metrics]);
    expect(ins.code).toBe(0);
    expect(ins.out).toMatch(/quantizer statistics at step 3 \(epoch 1, graph train\):/);
    expect(ins.out).toMatch(/\n {2}E +%\d+ +matmul +bfp<8,tensor>:stochastic/);
    expect(lpc(['run', art, ...RUN, '--max-steps', '1', '--quant-stats', '1']).err).toContain('--quant-stats needs --metrics FILE');
  });

  test('off, the training loop reads no state back and runs nothing but the steps and the evaluation', async () => {
    const art = path.join(tmp, 'off.lpc');
    expect(lpc(['compile', 'test/fixtures/sweep_tiny.ts', '-o', art, '--batch', '4', '--precision', 'A=e4m3']).code).toBe(0);
    const m = readArtifact(art).module;
    const b = new CpuBackend(m);
    await b.setState(initState(m, 0));
    let gets = 0;
    const runs: string[] = [];
    const real = b.run.bind(b);
    b.getState = async () => { gets++; return new Map(); };
    b.run = (g, f, s, r) => { runs.push(g); return real(g, f, s, r); };
    const data = loadSynthetic({ train: 8, test: 4, seed: 0 });
    await train(b, data, { epochs: 1, batch: 4, seed: 0, lr: () => 0.05, progress: new Progress({ write: () => true, isTTY: false }) });
    expect(gets).toBe(0);
    expect(runs).toEqual(['train', 'train', 'eval']);
  });
});
