/**
 * The model-zoo ops on the CPU interpreter against PyTorch (fixtures from test/fixtures/zoo/make_op_grads.py):
 * forward values and the gradient of every input, in float64 (the spec) and in float32 (what the GPU stores); the
 * DSL's checks on grouped convolutions, padded pooling, adaptive pooling and concat; and the gradient rules against
 * finite differences through autodiff.
 */
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { autodiff } from '../../passes/autodiff.js';
import { quantizePass } from '../../passes/quantize.js';
import { frontEnd, traceModel } from '../../dsl/frontend.js';
import { model, input, conv2d, relu6, maxPool, adaptiveAvgPool, concat, flatten, linear, Tensor } from '../../dsl/index.js';
import { MAX_CONCAT_INPUTS } from '../../ir/ops/index.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { numel } from '../../ir/types.js';
import { isTiledNode } from '../../codegen/kernels/tiles.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { rand, randn, relErr } from './helpers.js';
import { caseGraph, zooCases } from './zoo-cases.js';

const cases = zooCases();

test('the fixture covers every new op', () => {
  expect(new Set(cases.map((c) => c.op))).toEqual(new Set(['conv2d', 'maxpool', 'relu6', 'adaptive_avgpool', 'concat']));
  expect(cases.some((c) => c.attrs.groups === c.inputs[0].shape[1])).toBe(true); // a depthwise one
});

describe.each(cases.map((c) => [c.name, c] as const))('%s: CPU interpreter vs PyTorch', (_name, c) => {
  for (const precision of ['f64', 'f32'] as const) {
    test(precision, () => {
      const { g, y, grads, feeds } = caseGraph(c);
      const { values } = runGraph(g, feeds, new Map(), { precision });
      const tol = precision === 'f64' ? 1e-12 : 1e-4;
      expect(g.nodes[y].type.shape).toEqual(c.y.shape);
      expect(relErr(values[y], c.y.data)).toBeLessThan(tol);
      grads.forEach((id, i) => {
        expect(g.nodes[id].type.shape).toEqual(c.inputs[i].shape);
        expect(relErr(values[id], c.grads[i])).toBeLessThan(tol);
      });
    });
  }
});

describe('through the DSL and autodiff', () => {
  const net = model('zoo_ops', () => {
    const x = input([4, 6, 6]);
    let h = concat([conv2d(x, { out: 4, kernel: 3, pad: 1, groups: 4, name: 'dw' }), x]); // [8, 6, 6]
    h = maxPool(h, 3, 2, 1); // [8, 3, 3]
    h = relu6(conv2d(h, { out: 6, kernel: 1, groups: 2, name: 'gc' }));
    return linear(flatten(adaptiveAvgPool(h, [2, 1])), 3, { name: 'fc' });
  });

  test('a net of the new ops: every parameter gradient equals central finite differences (float64)', () => {
    const g = autodiff(traceModel(net, 2)).graphs.find((x) => x.name === 'train')!;
    const r = rand(28);
    const state = new Map<string, Float64Array>();
    for (const n of g.nodes) if (n.op === 'state') state.set(n.attrs.name as string, randn(r, numel(n.type.shape), 0.7));
    const feeds = { x: randn(r, 2 * 4 * 6 * 6), y: [0, 2] };
    const res = runGraph(g, feeds, state, { precision: 'f64' });
    const loss = () => runGraph(g, feeds, state, { precision: 'f64' }).outputs.loss[0];
    const checked: string[] = [];
    for (const [k, v] of state) {
      const analytic = res.outputs[`grad:${k}`];
      if (!analytic) continue;
      const numeric = v.map((x0, i) => {
        v[i] = x0 + 1e-6; const lp = loss();
        v[i] = x0 - 1e-6; const lm = loss();
        v[i] = x0;
        return (lp - lm) / 2e-6;
      });
      expect([k, relErr(analytic, numeric) < 1e-5]).toEqual([k, true]);
      checked.push(k);
    }
    expect(checked.sort()).toEqual(['dw.bias', 'dw.weight', 'fc.bias', 'fc.weight', 'gc.bias', 'gc.weight']);
  });

  test('concat of more inputs than one node takes is joined in runs; DSL checks name the problem', () => {
    const wide = model('wide_concat', () => {
      const x = input([1, 2, 2]);
      return linear(flatten(concat(Array.from({ length: MAX_CONCAT_INPUTS + 6 }, () => x))), 2);
    });
    const g = traceModel(wide, 2).graphs[0];
    const cats = g.nodes.filter((n) => n.op === 'concat');
    expect(cats.map((n) => n.inputs.length)).toEqual([MAX_CONCAT_INPUTS, 6, 2]);
    expect(g.nodes[cats[2].id].type.shape).toEqual([2, MAX_CONCAT_INPUTS + 6, 2, 2]);
    const bad = (body: (x: Tensor) => Tensor) => () => traceModel(model('bad', () => linear(flatten(body(input([4, 6, 6]))), 2)), 2);
    expect(bad((x) => conv2d(x, { out: 6, kernel: 3, groups: 3 }))).toThrow('conv2d: groups 3 must divide the input channels (4) and the output channels (6)');
    expect(bad((x) => concat([x, maxPool(x, 2)]))).toThrow('concat along axis 1: input 1 [2, 4, 3, 3] does not match input 0 [2, 4, 6, 6] outside that axis');
    expect(bad((x) => maxPool(x, 3, 2, 2))).toThrow('maxPool: pad 2 must be at most half the window 3');
    expect(bad((x) => adaptiveAvgPool(x, 7))).toThrow('adaptiveAvgPool: output 7×7 is larger than the input 6×6');
  });
});

test("CPT's placement quantizes grouped convolutions like dense ones: input A (minmax, running range), weight W, error E", () => {
  const m = quantizePass(frontEnd('models/mobilenetv2.ts', 2, { input: [3, 8, 8] }),
    parsePolicy('W=minmax<8,channel> A=minmax<8,tensor> E=minmax<8,tensor>:stochastic'));
  const g = m.graphs.find((x) => x.name === 'train')!;
  const dw = g.nodes.filter((n) => n.op === 'conv2d' && n.attrs.groups !== undefined);
  expect(dw.length).toBe(17);
  for (const n of dw) {
    const [xq, wq] = [g.nodes[n.inputs[0]], g.nodes[n.inputs[1]]];
    expect([xq.op, xq.attrs.role, wq.op, wq.attrs.role]).toEqual(['quantize', 'A', 'quantize', 'W']);
    expect(g.nodes.some((k) => k.op === 'quantize' && k.inputs[0] === n.id && k.attrs.role === 'E')).toBe(true);
  }
  expect(g.updates.filter((u) => u.name.endsWith('.act_range')).length).toBe(52); // every conv, grouped or not
});

test('grouped convolutions take no GEMM tile (the tuner measures only dense ones); their kernels are the direct ones', () => {
  const g = frontEnd('models/mobilenetv2.ts', 2, { input: [3, 8, 8] }).graphs[0];
  const convs = g.nodes.filter((n) => n.op === 'conv2d');
  expect(convs.filter((n) => isTiledNode(n)).length).toBe(35);
  for (const n of convs.filter((c) => c.attrs.groups !== undefined)) {
    expect(isTiledNode(n)).toBe(false);
    // a tile picker is not consulted for them
    expect(kernelsForNode(g, n.id, { tiles: () => { throw new Error('asked for a tile'); } }).map((k) => k.name)).toEqual(['conv2d_grouped']);
  }
});
