/**
 * SWALP averaging and BN re-estimation on the CPU backend, against independent arithmetic: the running mean of the
 * snapshots, the average of per-batch statistics computed from the data, and a run without SWA (the SGD run must
 * not change by a single bit).
 */
import { frontEnd } from '../../dsl/frontend.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { verifyModule } from '../../ir/verify.js';
import { Module } from '../../ir/graph.js';
import { runPasses } from '../../passes/pipeline.js';
import { SWA_PREFIX, withSwa } from '../../passes/swa.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState } from '../../runtime/train/init.js';
import { swaAverage, swaBnUpdate, train } from '../../runtime/train/train.js';
import { Progress } from '../../runtime/train/progress.js';
import { loadSynthetic } from '../../runtime/data/synthetic.js';
import { epochBatches } from '../../runtime/data/batches.js';
import { rand, randn } from './helpers.js';

const SGD = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const BFP8 = 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic';
const compile = (file: string, batch: number, spec?: string): Module =>
  runPasses(frontEnd(file, batch), { batch, optimizer: SGD, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
const quiet = () => new Progress({ write: () => true } as unknown as NodeJS.WriteStream, false);

describe('SWA graphs', () => {
  test('verify; quantizers removed; only swa.* state written; nothing random', () => {
    const m = withSwa(compile('test/fixtures/helpers_loop.ts', 4, BFP8));
    verifyModule(m);
    const names = m.graphs.map((g) => g.name);
    expect(names).toEqual(['train', 'eval', 'swa_average', 'swa_bn', 'swa_eval']);
    for (const g of m.graphs.slice(2)) {
      for (const n of g.nodes) {
        expect(n.op).not.toBe('quantize');
        expect(n.epi?.q).toBeUndefined();
        if (n.op === 'state' && g.name !== 'swa_average') expect(n.attrs.name as string).toMatch(/^swa\./);
      }
      for (const u of g.updates) expect(u.name.startsWith(SWA_PREFIX)).toBe(true);
    }
    // The BN model has its buffers re-estimated; LeNet-5 has none, so no swa_bn graph.
    expect(withSwa(compile('models/lenet5.ts', 4)).graphs.map((g) => g.name)).toEqual(['train', 'eval', 'swa_average', 'swa_eval']);
  });

  test('swa_average is the equal-weight running mean of the snapshots, in fp32', async () => {
    const m = withSwa(compile('models/lenet5.ts', 4));
    const b = new CpuBackend(m);
    const st = initState(m, 0);
    const r = rand(7);
    const snaps: Map<string, Float32Array>[] = [];
    const params = [...st.keys()].filter((k) => m.graphs[0].nodes.some((n) => n.op === 'state' && n.attrs.name === k && n.attrs.kind === 'param'));
    await b.setState(st);
    for (let i = 0; i < 4; i++) {
      const cur = await b.getState();
      const snap = new Map(params.map((p) => [p, Float32Array.from(randn(r, cur.get(p)!.length, 0.3))]));
      for (const [p, v] of snap) cur.set(p, v);
      await b.setState(cur);
      await swaAverage(b, i);
      snaps.push(snap);
    }
    const got = await b.getState();
    for (const p of params) {
      const avg = got.get(SWA_PREFIX + p)!;
      const w = snaps.map((s) => s.get(p)!);
      // SWALP's moving_average in float32 arithmetic: swa ← fl(fl(swa·fl(1−α)) + fl(w·fl(α)))
      const ref = new Float32Array(avg.length);
      w.forEach((wi, n) => {
        const a = Math.fround(1 / (n + 1)), k = Math.fround(1 - 1 / (n + 1));
        for (let j = 0; j < ref.length; j++) ref[j] = Math.fround(Math.fround(ref[j] * k) + Math.fround(wi[j] * a));
      });
      expect(Array.from(avg)).toEqual(Array.from(ref));
      for (let j = 0; j < avg.length; j++) expect(avg[j]).toBeCloseTo((w[0][j] + w[1][j] + w[2][j] + w[3][j]) / 4, 6);
      // SGD weights untouched by averaging
      expect(Array.from(got.get(p)!)).toEqual(Array.from(snaps[3].get(p)!));
    }
  });

  test('swa_bn: running statistics = the average of the per-batch mean and unbiased variance of the data', async () => {
    const B = 8, m = withSwa(compile('test/fixtures/bn_first.ts', B, BFP8));
    const data = loadSynthetic({ shape: [2, 3, 3], train: 64, test: 16, seed: 3, classes: 3 });
    const b = new CpuBackend(m);
    await b.setState(initState(m, 1));
    const before = await b.getState();
    await swaBnUpdate(b, data.train, B, 5, 2, 6);
    const after = await b.getState();
    const run = after.get('swa.bn0.running')!;
    const batches = epochBatches(data.train, B, 5, 2);
    const C = 2, HW = 9, M = B * HW;
    for (let c = 0; c < C; c++) {
      let meanSum = 0, varSum = 0;
      for (let i = 0; i < 6; i++) {
        const x = batches.get(i).x;
        let s = 0;
        for (let n = 0; n < B; n++) for (let p = 0; p < HW; p++) s += x[(n * C + c) * HW + p];
        const mu = s / M;
        let v = 0;
        for (let n = 0; n < B; n++) for (let p = 0; p < HW; p++) v += (x[(n * C + c) * HW + p] - mu) ** 2;
        meanSum += mu; varSum += v / (M - 1);
      }
      expect(run[c]).toBeCloseTo(meanSum / 6, 5);
      expect(run[C + c]).toBeCloseTo(varSum / 6, 5);
    }
    // the SGD model's own buffers and weights are untouched
    for (const [k, v] of before) if (!k.startsWith(SWA_PREFIX)) expect(Array.from(after.get(k)!)).toEqual(Array.from(v));
  });

  test('training with --swa leaves the SGD run bit-identical; one snapshot of an fp32 model evaluates like the model', async () => {
    const data = loadSynthetic({ shape: [1, 8, 8], train: 96, test: 24, seed: 1, classes: 3 });
    const opts = { epochs: 3, batch: 8, seed: 4, maxSteps: 5, lr: () => 0.05, progress: quiet() };
    const finalState = async (m: Module, swa: boolean) => {
      const b = new CpuBackend(m);
      await b.setState(initState(m, 4));
      const h = await train(b, data, { ...opts, swa: swa ? { start: 2, bn: true } : undefined });
      return { h, st: await b.getState() };
    };
    const base = compile('test/fixtures/helpers_loop.ts', 8, BFP8);
    const plain = await finalState(base, false), avg = await finalState(withSwa(base), true);
    for (const [k, v] of plain.st) expect(Array.from(avg.st.get(k)!)).toEqual(Array.from(v));
    expect(avg.h.map((e) => e.test_accuracy)).toEqual(plain.h.map((e) => e.test_accuracy));
    expect(avg.h.map((e) => e.swa_count)).toEqual([undefined, 1, 2]);

    const f32 = compile('models/lenet5.ts', 8);
    const lenet = await (async () => {
      const m = withSwa(f32), b = new CpuBackend(m);
      await b.setState(initState(m, 0));
      return train(b, loadSynthetic({ shape: [1, 28, 28], train: 64, test: 16, seed: 2 }), { ...opts, epochs: 1, swa: { start: 1, bn: false } });
    })();
    expect(lenet[0].swa_test_loss).toBe(lenet[0].test_loss);
  });
});
