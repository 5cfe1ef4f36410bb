/**
 * Adam and AdamW (passes/optimizer.ts) on the CPU interpreter against a float64 implementation of PyTorch's
 * torch.optim.Adam / AdamW written here (softmax regression, its gradients in float64 too), the optimizer flag's
 * parsing and its one-line errors, the V role and the state names.
 */
import { AdamOptions, formatOptimizer, optimizerProblem, parseOptimizer } from '../../passes/optimizer.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState } from '../../runtime/train/init.js';
import { relErr } from './helpers.js';
import { B, C, K, compileTiny, tinyBatch } from './adam-tiny.js';

/** Mean softmax cross-entropy's gradients for weight [C, K] and bias [C], in float64. */
function grads(w: Float64Array, bias: Float64Array, x: Float32Array, y: Int32Array): [Float64Array, Float64Array] {
  const gw = new Float64Array(C * K), gb = new Float64Array(C);
  for (let n = 0; n < B; n++) {
    const z = Array.from({ length: C }, (_, c) => bias[c] + Array.from({ length: K }, (_, k) => w[c * K + k] * x[n * K + k]).reduce((a, b) => a + b));
    const mx = Math.max(...z), e = z.map((v) => Math.exp(v - mx)), s = e.reduce((a, b) => a + b);
    for (let c = 0; c < C; c++) {
      const d = (e[c] / s - (c === y[n] ? 1 : 0)) / B;
      gb[c] += d;
      for (let k = 0; k < K; k++) gw[c * K + k] += d * x[n * K + k];
    }
  }
  return [gw, gb];
}

/** torch.optim.Adam / AdamW's update (single-tensor path) in float64; t is 1-based. */
function adamRef(o: AdamOptions, p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, t: number, lr: number): void {
  const [b1, b2] = o.betas;
  for (let i = 0; i < p.length; i++) {
    let gi = g[i];
    if (o.kind === 'adamw') p[i] *= 1 - lr * o.wd;
    else gi += o.wd * p[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    const stepSize = lr / (1 - b1 ** t), denom = Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** t) + o.eps;
    p[i] -= (stepSize * m[i]) / denom;
  }
}

describe('Adam and AdamW against float64 PyTorch formulas', () => {
  const cases: AdamOptions[] = [
    { kind: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, wd: 0 },
    { kind: 'adam', lr: 0.02, betas: [0.8, 0.99], eps: 1e-6, wd: 0.1 },
    { kind: 'adamw', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, wd: 0.1 },
  ];
  for (const o of cases) for (const fuse of [true, false]) {
    test(`${formatOptimizer(o)}${fuse ? '' : ' (unfused)'}: 20 steps within 1e-6`, async () => {
      const m = compileTiny(o, undefined, fuse);
      const b = new CpuBackend(m);
      const st = initState(m, 3);
      await b.setState(st);
      const names = ['fc0.weight', 'fc0.bias'].map((n) => [...st.keys()].find((k) => k.endsWith(n.split('.')[1]) && !k.includes('.exp_avg'))!);
      const p = names.map((n) => Float64Array.from(st.get(n)!));
      const mm = p.map((x) => new Float64Array(x.length)), vv = p.map((x) => new Float64Array(x.length));
      // a schedule: the lr changes every step (Adam's step size reads the lr input)
      const lrAt = (k: number) => Math.fround(o.lr * (1 - k / 40));
      for (let k = 0; k < 20; k++) {
        const { x, y } = tinyBatch(k);
        await b.run('train', { x, y, lr: Float32Array.of(lrAt(k)) }, { seed: 0, step: k }, ['loss']);
        const g = grads(p[0], p[1], x, y);
        p.forEach((pi, j) => adamRef(o, pi, g[j], mm[j], vv[j], k + 1, lrAt(k)));
      }
      const got = await b.getState();
      names.forEach((n, j) => {
        expect(relErr(got.get(n)!, p[j])).toBeLessThan(1e-6);
        expect(relErr(got.get(`${n}.exp_avg`)!, mm[j])).toBeLessThan(1e-5);
        expect(relErr(got.get(`${n}.exp_avg_sq`)!, vv[j])).toBeLessThan(1e-5);
      });
    });
  }
});
