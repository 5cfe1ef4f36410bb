/**
 * The quantize pass (A and E roles) and OptimLP (G, ACC, W, M) against independent references: a hand-written
 * float64 forward/backward of a small MLP with quantizers where QPyTorch puts them, and the OptimLP step of
 * research/seeds.md §1.11.
 */
import { Builder, emptyGraph, Module } from '../../ir/graph.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { quantize } from '../../ir/quant/quantize.js';
import { traceModel } from '../../dsl/frontend.js';
import { model, input, relu, linear } from '../../dsl/index.js';
import { runPasses } from '../../passes/pipeline.js';
import { optimizer } from '../../passes/optimizer.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { rand, randn, relErr } from './helpers.js';

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0, wd: 0 };
const N = 3, K = 5, H = 4, C = 3;
const mlp = model('mlp', () => relu(linear(relu(linear(input([K]), H)), C)));
// The logits are relu(...) here so that the last *layer* output is not the model output: the final relu feeds the
// loss and stays unquantized, the first linear, its relu and the second linear are quantized.

const q = (x: ArrayLike<number>, shape: number[], spec: string) =>
  Array.from(quantize(Float32Array.from(x), shape, parsePolicy(`A=${spec}`).roles.A!.fmt, 'nearest'));

describe('quantize pass', () => {
  test('places A after every layer but the model output, and E on the error of each (print-after shows roles)', () => {
    const logs: string[] = [];
    const m = runPasses(traceModel(mlp, N), {
      batch: N, optimizer: sgd, precision: parsePolicy('A=fixed<8,4> E=fixed<6,3>'), verifyEach: true,
      printAfter: ['quantize'], log: (s) => logs.push(s), fuse: false,
    });
    expect(logs.join('\n')).toMatch(/quantize\(%\d+\) \{bwd_fmt=fixed<6,3>, bwd_rounding="nearest", fmt=fixed<8,4>, role="A"/);
    const train = m.graphs.find((g) => g.name === 'train')!;
    const roles = (r: string) => train.nodes.filter((n) => n.op === 'quantize' && n.attrs.role === r).length;
    expect(roles('A')).toBe(3);
    expect(roles('E')).toBe(3);
    const evalG = m.graphs.find((g) => g.name === 'eval')!;
    expect(evalG.nodes.filter((n) => n.op === 'quantize').length).toBe(3);
  });

  test('gradients equal a hand-written float64 backward with QPyTorch-placed quantizers', () => {
    const A = 'fixed<8,4>', E = 'fixed<8,6>';
    const m = runPasses(traceModel(mlp, N), { batch: N, optimizer: sgd, precision: parsePolicy(`A=${A} E=${E}`) });
    const train = m.graphs.find((g) => g.name === 'train')!;
    // Expose the parameter gradients: they are the inputs of the SGD updates' `mul_scalar` nodes.
    const r = rand(7);
    const x = Float32Array.from(randn(r, N * K));
    const labels = [0, 2, 1];
    const st = initState(m, 3);
    const res = runGraph(train, { x, y: labels, lr: [1] }, st);
    const W1 = st.get('linear0.weight')!, b1 = st.get('linear0.bias')!, W2 = st.get('linear1.weight')!, b2 = st.get('linear1.bias')!;

    // Reference: h = Q_A(x W1ᵀ + b1), r = Q_A(relu h), z = Q_A(r W2ᵀ + b2), logits = relu z.
    const lin = (a: ArrayLike<number>, W: ArrayLike<number>, b: ArrayLike<number>, I: number, O: number) =>
      Array.from({ length: N * O }, (_, k) => {
        const n = Math.floor(k / O), o = k % O;
        let s = b[o];
        for (let i = 0; i < I; i++) s += a[n * I + i] * W[o * I + i];
        return Math.fround(s);
      });
    const h = q(lin(x, W1, b1, K, H), [N, H], A);
    const rr = q(h.map((v) => Math.max(v, 0)), [N, H], A);
    const z = q(lin(rr, W2, b2, H, C), [N, C], A);
    const logits = z.map((v) => Math.max(v, 0));
    // dlogits of the mean cross-entropy
    const dl: number[] = [];
    for (let n = 0; n < N; n++) {
      const row = logits.slice(n * C, n * C + C), mx = Math.max(...row);
      const e = row.map((v) => Math.exp(v - mx)), s = e.reduce((a, b) => a + b);
      for (let c = 0; c < C; c++) dl.push(Math.fround((e[c] / s - (c === labels[n] ? 1 : 0)) / N));
    }
    const dz = q(dl.map((d, k) => (z[k] > 0 ? d : 0)), [N, C], E);
    // dW[o,i] = Σ_n d[n,o]·a[n,i]
    const weightGrad = (d: ArrayLike<number>, a: ArrayLike<number>, O: number, I: number) =>
      Array.from({ length: O * I }, (_, k) => {
        let s = 0;
        for (let n = 0; n < N; n++) s += d[n * O + Math.floor(k / I)] * a[n * I + (k % I)];
        return s;
      });
    const dW2 = weightGrad(dz, rr, C, H);
    const dr = q(Array.from({ length: N * H }, (_, k) => {
      const n = Math.floor(k / H), i = k % H;
      let s = 0;
      for (let o = 0; o < C; o++) s += dz[n * C + o] * W2[o * H + i];
      return Math.fround(s);
    }), [N, H], E);
    const dh = q(dr.map((d, k) => (h[k] > 0 ? d : 0)), [N, H], E);
    const dW1 = weightGrad(dh, x, H, K);
    // With lr = 1, momentum 0, wd 0: new weight = w − grad.
    const upd = (name: string) => train.updates.find((u) => u.name === name)!.node;
    const got = (name: string, w: Float32Array) => Array.from(res.values[upd(name)], (v, i) => w[i] - v);
    expect(relErr(got('linear1.weight', W2), dW2)).toBeLessThan(1e-5);
    expect(relErr(got('linear0.weight', W1), dW1)).toBeLessThan(1e-5);
    expect(dW1.some((v) => v !== 0)).toBe(true);
  });
});

describe('OptimLP order (G, update, ACC, W, M)', () => {
  /** One parameter w = [0.3, −0.7] whose gradient is fed as an input, through the optimizer pass. */
  function step(spec: string, o = { kind: 'sgd' as const, lr: 0.5, momentum: 0.9, wd: 0 }, acc = [0.3, -0.7]) {
    const g = emptyGraph('train');
    const b = new Builder(g);
    const w = b.add('state', [], { name: 'w', kind: 'param', shape: [2], init: 'zeros' });
    const grad = b.add('input', [], { name: 'g', kind: 'data', shape: [2], dtype: 'f32' });
    g.outputs.push({ name: 'loss', node: w }, { name: 'grad:w', node: grad });
    const m: Module = optimizer({ version: 1, name: 't', graphs: [g] }, o, parsePolicy(spec));
    const train = m.graphs[0];
    const state = new Map([['w', [0.3, -0.7]], ['w.momentum', [0, 0]], ['w.acc', acc]]);
    const res = runGraph(train, { g: [0.05, 0.26], lr: [o.lr] }, state);
    return Object.fromEntries([...res.updates].map(([k, v]) => [k, Array.from(v)]));
  }

  test('QPyTorch OptimLP with fixed<8,4> gradient, weight and momentum quantizers (seeds.md §1.11)', () => {
    const u = step('G=fixed<8,4> W=fixed<8,4> M=fixed<8,4>');
    expect(u.w).toEqual([0.25, -0.8125]);
    expect(u['w.momentum']).toEqual([0.0625, 0.25]);
  });

  test('with an ACC=fixed<16,12> accumulator the weights are quantized from it', () => {
    const u = step('G=fixed<8,4> W=fixed<8,4> M=fixed<8,4> ACC=fixed<16,12>');
    expect(u['w.acc'].map((v) => +v.toFixed(7))).toEqual([0.2687988, -0.8249512]);
    expect(u.w).toEqual([0.25, -0.8125]);
  });

  test('weight decay reads the accumulator, not the quantized weight', () => {
    const o = { kind: 'sgd' as const, lr: 0.5, momentum: 0, wd: 0.1 };
    const u = step('ACC=fixed<16,12> W=fixed<4,1>', o, [0.31, -0.7]);
    // acc = Q_acc(0.31 − 0.5·(0.05 + 0.1·0.31)): decay and step both start from the accumulator, not w = 0.3
    expect(u['w.acc'][0]).toBeCloseTo(Math.round((0.31 - 0.5 * (0.05 + 0.031)) * 4096) / 4096, 7);
    expect(u.w[0]).toBe(0.5);
  });
});
