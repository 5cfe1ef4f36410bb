/**
 * The model-zoo ops on the CPU interpreter against PyTorch (fixtures from test/fixtures/zoo/make_op_grads.py):
 * forward values and the gradient of every input, in float64 (the spec) and in float32 (what the GPU stores); the
 * DSL's checks on grouped convolutions, padded pooling, adaptive pooling and concat; and the gradient rules against
 * finite differences through autodiff.
 */
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { relErr } from './helpers.js';
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
