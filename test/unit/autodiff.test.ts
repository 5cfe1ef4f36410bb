import { Builder, Graph, emptyGraph, Module } from '../../ir/graph.js';
import { autodiff } from '../../passes/autodiff.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { numel } from '../../ir/types.js';
import { traceModel } from '../../dsl/frontend.js';
import { model, input, conv2d, batchNorm, relu, maxPool, flatten, linear } from '../../dsl/index.js';
import { golden, fromHex, rand, randn, relErr } from './helpers.js';

/** A one-op graph whose scalar loss is the cross-entropy of the op's flattened output against class 0. */
function opGraph(build: (b: Builder, param: (shape: number[], kind?: string) => number) => number): { m: Module; shapes: Map<string, number[]> } {
  const g = emptyGraph('train');
  const b = new Builder(g);
  const shapes = new Map<string, number[]>();
  const param = (shape: number[], kind = 'param') => {
    const name = `p${shapes.size}`;
    shapes.set(name, shape);
    return b.add('state', [], { name, kind, shape, init: 'zeros' });
  };
  const y = build(b, param);
  const flat = b.add('reshape', [y], { shape: [1, numel(b.type(y).shape)] });
  const lab = b.add('input', [], { name: 'y', kind: 'label', shape: [1], dtype: 'i32' });
  g.outputs.push({ name: 'loss', node: b.add('softmax_xent', [flat, lab]) });
  return { m: { version: 1, name: 't', graphs: [g] }, shapes };
}

/** With `lossScale` S the analytic gradients must be S times the finite differences (static loss scaling). */
function checkGradients(build: Parameters<typeof opGraph>[0], seed: number, positive = false, lossScale = 1): void {
  const { m, shapes } = opGraph(build);
  const g: Graph = autodiff(m, { lossScale }).graphs[0];
  const r = rand(seed);
  const state = new Map<string, Float64Array>();
  for (const [k, s] of shapes) {
    const v = randn(r, numel(s));
    state.set(k, positive ? v.map((x) => Math.abs(x) + 0.5) : v);
  }
  const feeds = { y: [0] };
  const res = runGraph(g, feeds, state, { precision: 'f64' });
  const loss = (st: Map<string, Float64Array>) => runGraph(g, feeds, st, { precision: 'f64' }).outputs.loss[0];
  for (const [k, v] of state) {
    const analytic = res.outputs[`grad:${k}`];
    if (!analytic) continue; // a buffer, not a parameter
    const numeric = new Float64Array(v.length);
    const h = 1e-6;
    for (let i = 0; i < v.length; i++) {
      const x0 = v[i];
      v[i] = x0 + h; const lp = loss(state);
      v[i] = x0 - h; const lm = loss(state);
      v[i] = x0;
      numeric[i] = lossScale * (lp - lm) / (2 * h);
    }
    expect(relErr(analytic, numeric)).toBeLessThan(1e-5);
  }
}

describe('gradient rules vs central finite differences (float64)', () => {
  test('add, sub, mul, scale', () => checkGradients((b, p) => {
    const a = p([2, 3]), c = p([2, 3]);
    return b.add('mul', [b.add('sub', [b.add('add', [a, c]), b.add('scale', [c], { c: 0.7 })]), a]);
  }, 1));
  test('relu', () => checkGradients((b, p) => b.add('relu', [p([3, 5])]), 2));
  test('linear with bias', () => checkGradients((b, p) => b.add('linear', [p([3, 4]), p([5, 4]), p([5])]), 3));
  test('conv2d stride 2, pad 1, bias', () =>
    checkGradients((b, p) => b.add('conv2d', [p([2, 3, 7, 6]), p([4, 3, 3, 3]), p([4])], { stride: 2, pad: 1 }), 4));
  test('conv2d stride 1, no pad, no bias', () =>
    checkGradients((b, p) => b.add('conv2d', [p([1, 2, 5, 5]), p([3, 2, 2, 3])], { stride: 1, pad: 0 }), 5));
  test('maxpool (overlapping windows)', () => checkGradients((b, p) => b.add('maxpool', [p([2, 2, 5, 5])], { k: 3, stride: 2 }), 6));
  test('avgpool', () => checkGradients((b, p) => b.add('avgpool', [p([2, 2, 5, 4])], { k: 2, stride: 2 }), 7));
  test('batch norm, training mode (through the batch statistics)', () => checkGradients((b, p) => {
    const x = p([3, 2, 3, 3]);
    return b.add('bn_apply', [x, b.add('bn_stats', [x]), p([2]), p([2])], { eps: 1e-5, training: true });
  }, 8));
  test('batch norm on [N, C]', () => checkGradients((b, p) => {
    const x = p([5, 3]);
    return b.add('bn_apply', [x, b.add('bn_stats', [x]), p([3]), p([3])], { eps: 1e-5, training: true });
  }, 9));
  test('batch norm, eval mode (statistics are constants)', () => checkGradients((b, p) =>
    b.add('bn_apply', [p([2, 2, 2, 3]), p([2, 2], 'buffer'), p([2]), p([2])], { eps: 1e-5, training: false }), 10, true));
  test('reshape', () => checkGradients((b, p) => b.add('reshape', [p([2, 3, 2])], { shape: [3, 4] }), 11));
  test('loss scaling: with loss_scale=1000 backward starts from 1000, every gradient is 1000·∂L/∂p', () => checkGradients((b, p) => {
    const x = b.add('conv2d', [p([2, 2, 5, 5]), p([3, 2, 3, 3])], { stride: 1, pad: 1 });
    return b.add('relu', [b.add('bn_apply', [x, b.add('bn_stats', [x]), p([3]), p([3])], { eps: 1e-5, training: true })]);
  }, 12, false, 1000));
  test('an explicit quantizer site whose classes the spec leaves out passes the gradient straight through', () =>
    checkGradients((b, p) => b.add('quantize_site', [b.add('relu', [p([3, 4])])], { fwd: 'low', bwd: 'low' }), 13));
  test('softmax cross-entropy with a padded (−1) label', () => {
    const { m } = opGraph((b, p) => p([1, 3]));
    const g = autodiff(m).graphs[0];
    const st = new Map([['p0', new Float64Array([0.1, -0.4, 2])]]);
    const r = runGraph(g, { y: [0] }, st, { precision: 'f64' }).outputs;
    const e = [0.1, -0.4, 2].map(Math.exp), s = e[0] + e[1] + e[2];
    expect(r.loss[0]).toBeCloseTo(Math.log(s) - 0.1, 12);
    expect([...r['grad:p0']].map((v) => +v.toFixed(12))).toEqual([e[0] / s - 1, e[1] / s, e[2] / s].map((v) => +v.toFixed(12)));
  });
});

describe('PyTorch golden network (grad_small.json)', () => {
  const gs = golden('grad_small.json');
  const net = model('small', () => {
    const x = input([3, 8, 8]);
    let h = conv2d(x, { out: 4, kernel: 3, pad: 1, name: 'conv' });
    h = maxPool(relu(batchNorm(h, { name: 'bn' })), 2);
    return linear(flatten(h), 10, { name: 'fc' });
  });
  const m = autodiff(traceModel(net, 4), { wrtInputs: true });
  const train = m.graphs.find((g) => g.name === 'train')!;
  const state = new Map<string, Float32Array>();
  for (const [k, v] of Object.entries<any>(gs.params)) state.set(k, fromHex(v));
  const rm = fromHex(gs.bn_running_mean_before), rv = fromHex(gs.bn_running_var_before);
  state.set('bn.running', Float32Array.from([...rm, ...rv]));
  const feeds = { x: fromHex(gs.input), y: gs.target };

  for (const precision of ['f32', 'f64'] as const) {
    test(`loss, every gradient and the running statistics match PyTorch (${precision})`, () => {
      const res = runGraph(train, feeds, state, { precision });
      const fp = gs.fp32;
      expect(relErr(res.outputs.loss, fromHex(fp.loss))).toBeLessThan(1e-4);
      for (const [k, v] of Object.entries<any>(fp.grads)) {
        const want = fromHex(v), got = res.outputs[`grad:${k}`];
        if (k === 'conv.bias') {
          // Mathematically zero (BN follows); PyTorch's values are rounding noise.
          for (const x of got) expect(Math.abs(x)).toBeLessThan(1e-6);
        } else expect(relErr(got, want)).toBeLessThan(1e-4);
      }
      expect(relErr(res.outputs['grad:x'], fromHex(fp.input_grad))).toBeLessThan(1e-4);
      const run = res.updates.get('bn.running')!;
      expect(relErr(run.slice(0, 4), fromHex(fp.bn_running_mean_after))).toBeLessThan(1e-5);
      expect(relErr(run.slice(4), fromHex(fp.bn_running_var_after))).toBeLessThan(1e-5);
    });
  }
});
