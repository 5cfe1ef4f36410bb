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

describe('--optimizer adam(…) / adamw(…)', () => {
  test('defaults, every key, the canonical text round-trips; SGD unchanged', () => {
    expect(parseOptimizer('adam')).toEqual({ kind: 'adam', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, wd: 0 });
    expect(parseOptimizer('adamw()')).toEqual({ kind: 'adamw', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, wd: 1e-2 });
    const o = parseOptimizer(' adam( lr=3e-4 , betas=( 0.8 , .95 ), eps=1e-6, wd=0.1 ) ');
    expect(o).toEqual({ kind: 'adam', lr: 3e-4, betas: [0.8, 0.95], eps: 1e-6, wd: 0.1 });
    expect(parseOptimizer(formatOptimizer(o))).toEqual(o);
    expect((parseOptimizer('adamw(betas=(0,0))') as AdamOptions).betas).toEqual([0, 0]);
    expect(parseOptimizer('sgd(lr=0.1,momentum=0,wd=0)')).toEqual({ kind: 'sgd', lr: 0.1, momentum: 0, wd: 0 });
    expect(optimizerProblem({ kind: 'adam', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, wd: 0 })).toBeUndefined();
  });

  test('bad input: one line each', () => {
    const bad: [string, string][] = [
      ['adam(betas=(0.9,1))', 'adam: need betas in [0, 1) (got betas=[0.9,1])'],
      ['adamw(betas=(-0.1,0.9))', 'adamw: need betas in [0, 1) (got betas=[-0.1,0.9])'],
      ['adam(eps=0)', 'adam: need eps > 0 (got eps=0)'],
      ['adam(eps=-1e-8)', 'adam: need eps > 0 (got eps=-1e-8)'],
      ['adam(lr=0)', 'adam: need lr > 0 (got lr=0)'],
      ['adamw(wd=-1)', 'adamw: need wd ≥ 0 (got wd=-1)'],
      ['adam(momentum=0.9)', "adam: bad argument 'momentum=0.9'; expected lr=…, betas=(β1,β2), eps=…, wd=…"],
      ['adam(beta1=0.9)', "adam: bad argument 'beta1=0.9'; expected lr=…, betas=(β1,β2), eps=…, wd=…"],
      ['adam(betas=0.9)', "adam: bad argument 'betas=0.9'; expected betas=(β1,β2) with two numbers"],
      ['adam(betas=(0.9,0.99,0.1))', "adam: bad argument 'betas=(0.9,0.99,0.1)'; expected betas=(β1,β2) with two numbers"],
      ['adam(lr=fast)', "adam: bad argument 'lr=fast'; expected lr=…, betas=(β1,β2), eps=…, wd=… with a number"],
      ['adam(lr=1e-3,lr=1e-2)', 'adam: lr is given twice'],
      ['sgd(betas=(0.9,0.99))', "sgd: bad argument 'betas=(0.9,0.99)'; expected lr=…, momentum=…, wd=…"],
      ['rmsprop(lr=0.01)', "expected sgd(lr=…,momentum=…,wd=…), adam(lr=…,betas=(β1,β2),eps=…,wd=…) or adamw(…), got 'rmsprop(lr=0.01)'"],
    ];
    for (const [text, msg] of bad) {
      let err = '';
      try { parseOptimizer(text); } catch (e) { err = (e as Error).message; }
      expect([text, err]).toEqual([text, `--optimizer: ${msg}`]);
      expect(err).not.toContain('\n');
    }
    // a manifest's options are checked the same way (an edited or foreign key is refused)
    expect(optimizerProblem({ kind: 'adam', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, wd: 0, momentum: 0.9 } as never)).toBe("adam: unknown option 'momentum'");
    expect(optimizerProblem({ kind: 'adam', lr: 1e-3, betas: [0.9] as never, eps: 1e-8, wd: 0 })).toBe('adam: need betas in [0, 1) (got betas=[0.9])');
    expect(optimizerProblem({ kind: 'lion' } as never)).toBe('unknown optimizer kind "lion"');
  });

  test('the optimizer pass: exp_avg / exp_avg_sq state, M and V quantizers after the step, bias corrections as step inputs', () => {
    const m = compileTiny(parseOptimizer('adamw(wd=0.1)'), 'M=bf16 V=float<8,10>:stochastic', false);
    const g = m.graphs[0];
    const upd = new Map(g.updates.map((u) => [u.name, g.nodes[u.node]]));
    expect([...upd.keys()].sort()).toEqual(['linear0.bias', 'linear0.bias.exp_avg', 'linear0.bias.exp_avg_sq', 'linear0.weight', 'linear0.weight.exp_avg', 'linear0.weight.exp_avg_sq']);
    expect(upd.get('linear0.weight.exp_avg')!.attrs).toMatchObject({ role: 'M', rounding: 'nearest' });
    expect(upd.get('linear0.weight.exp_avg_sq')!.attrs).toMatchObject({ role: 'V', rounding: 'stochastic' });
    expect(upd.get('linear0.weight')!.op).toBe('sub'); // no W role: the fp32 update itself
    // the update reads the moments before their quantizers (OptimLP quantizes the state after optim.step())
    const uses = (id: number) => g.nodes.filter((n) => n.inputs.includes(id)).map((n) => n.op).sort();
    expect(uses(upd.get('linear0.weight.exp_avg')!.inputs[0])).toEqual(['mul_scalar', 'quantize']);
    expect(uses(upd.get('linear0.weight.exp_avg_sq')!.inputs[0])).toEqual(['quantize', 'sqrt']);
    const steps = g.nodes.filter((n) => n.op === 'input' && /bias_correction/.test(n.attrs.kind as string)).map((n) => n.attrs);
    expect(steps).toEqual([
      { name: 'adam.bias_correction1', kind: 'bias_correction', shape: [1], dtype: 'f32', beta: 0.9 },
      { name: 'adam.bias_correction2_sqrt', kind: 'bias_correction_sqrt', shape: [1], dtype: 'f32', beta: 0.999 },
    ]);
    expect(m.graphs[1].nodes.some((n) => n.op === 'input' && n.attrs.kind !== 'data' && n.attrs.kind !== 'label')).toBe(false);
  });
});
