/**
 * Typed op attributes (ir/op-registry.ts): `attrsOf(node, op)` gives a node's attributes typed by its op's schema and
 * refuses a node of another op. The `@ts-expect-error` lines are type assertions, checked by tsc over the test folder
 * (jest only transpiles): each must meet an error. The `rounding` kind takes nearest or stochastic only.
 */
import { Builder, emptyGraph } from '../../ir/graph.js';
import { allOps, attrsOf } from '../../ir/ops/index.js';
import { verifyGraph } from '../../ir/verify.js';

function graph() {
  const g = emptyGraph('g'), b = new Builder(g);
  const x = b.add('input', [], { name: 'x', kind: 'data', shape: [2, 3, 8, 8], dtype: 'f32' });
  const w = b.add('state', [], { name: 'w', kind: 'param', shape: [4, 3, 3, 3], init: 'uniform', bound: 0.5 });
  const conv = b.add('conv2d', [x, w], { stride: 1, pad: 1 });
  const relu = b.add('relu', [conv]);
  const q = b.add('quantize', [relu], { fmt: { kind: 'fixed', wl: 8, fl: 4 }, rounding: 'stochastic', role: 'A' });
  return { g, x, w, conv, relu, q };
}

test('attrsOf: the attributes of a node of the named op(s), typed; another op is refused', () => {
  const { g, w, conv, relu, q } = graph();
  const c = attrsOf(g.nodes[conv], 'conv2d');
  const pad: number = c.pad, stride: number = c.stride;
  expect([pad, stride]).toEqual([1, 1]);
  // @ts-expect-error conv2d has no attribute 'padding'
  expect(c.padding).toBeUndefined();
  // @ts-expect-error pad is a number, not a string
  const wrong: string = c.pad;
  expect(wrong).toBe(1);
  const { fmt, rounding, bwd_fmt } = attrsOf(g.nodes[q], 'quantize');
  const r: 'nearest' | 'stochastic' = rounding; // the rounding kind is typed as the two roundings
  expect([fmt, r, bwd_fmt]).toEqual([{ kind: 'fixed', wl: 8, fl: 4 }, 'stochastic', undefined]);
  const s = attrsOf(g.nodes[w], 'state', 'input'); // attributes two ops share
  expect([s.name, s.shape]).toEqual(['w', [4, 3, 3, 3]]);
  // @ts-expect-error 'conv3d' is no op
  expect(() => attrsOf(g.nodes[conv], 'conv3d')).toThrow('node %2 is conv2d, not conv3d');
  expect(() => attrsOf(g.nodes[relu], 'conv2d', 'conv2d_bwd_data')).toThrow('node %3 is relu, not conv2d or conv2d_bwd_data');
});

test('the rounding kind: nearest or stochastic, anything else refused by the verifier', () => {
  const { g, q } = graph();
  expect(() => verifyGraph(g)).not.toThrow();
  g.nodes[q] = { ...g.nodes[q], attrs: { ...g.nodes[q].attrs, rounding: 'up' } };
  expect(() => verifyGraph(g)).toThrow(`attribute 'rounding' of quantize must be "nearest" or "stochastic", got "up"`);
  const kinds = allOps().flatMap((d) => Object.entries(d.attrs).filter(([k]) => k.endsWith('rounding')).map(([k, kind]) => `${d.name}.${k}: ${kind}`));
  expect(kinds.sort()).toEqual(['minmax_quantize.rounding: rounding', 'quantize.bwd_rounding: rounding', 'quantize.rounding: rounding']);
});

test('no op takes epilogue attributes any more: the epilogue is typed on the node (ir/epilogue.ts)', () => {
  for (const d of allOps()) for (const k of ['post', 'post_args', 'qfmt', 'qround', 'qrole', 'qpost']) expect([d.name, k in d.attrs]).toEqual([d.name, false]);
});
