/**
 * The fusion rules of passes/fuse.ts, each alone on a small hand-built graph (applyRule), and the rewrite toolkit
 * they are written with (ir/rewrite.ts). Each rewritten graph verifies, round-trips through the text form, and
 * computes the same bits on the CPU interpreter as the graph it came from (nearest rounding).
 */
import { Attrs, Builder, Graph, Module, emptyGraph } from '../../ir/graph.js';
import { Format } from '../../ir/format.js';
import { numel } from '../../ir/types.js';
import { verifyModule } from '../../ir/verify.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { Rewrite, copyNode, rebuild } from '../../ir/rewrite.js';
import {
  FUSION_RULES, FusionRule, applyRule, dropIdentityQuantizer, foldElementwise, foldQpostRelu, foldQuantizer,
  recomputeSharedElementwise, refoldElementwise,
} from '../../passes/fuse.js';
import { PASS_NAMES } from '../../passes/pipeline.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { rand } from './helpers.js';
import { bits, epiText, feedsFor, moduleOf, testGraph } from './graph-builder.js';
import { parsePost } from '../../ir/parse.js';
import type { Epilogue } from '../../ir/epilogue.js';

const FIXED: Format = { kind: 'fixed', wl: 8, fl: 4 };
const FLOAT: Format = { kind: 'float', exp: 5, man: 2 };
const F32: Format = { kind: 'f32' };

const graph = testGraph;
const mod = moduleOf;

/** Applies one rule; checks the result verifies, round-trips, and computes the same outputs bit for bit. */
function check(rule: FusionRule, g: Graph): { graph: Graph; count: number } {
  verifyModule(mod(g));
  const r = applyRule(rule, g);
  verifyModule(mod(r.graph));
  const text = printModule(mod(r.graph));
  expect(printModule(parseModule(text, 'x.lpir'))).toBe(text);
  const feeds = feedsFor(g, 7);
  const a = runGraph(g, feeds, new Map()), b = runGraph(r.graph, feeds, new Map());
  for (const o of g.outputs) expect([o.name, bits(b.outputs[o.name])]).toEqual([o.name, bits(a.outputs[o.name])]);
  return r;
}

const ops = (g: Graph) => g.nodes.map((n) => n.op);

test('every rule is a pass of the pipeline, in order', () => {
  const names = FUSION_RULES.map((r) => r.name);
  expect(names).toEqual(['fold-elementwise', 'drop-identity-quantizer', 'recompute-shared-elementwise', 'fold-quantizer',
    'fold-qpost-relu', 'refold-elementwise']);
  expect(PASS_NAMES.filter((n) => names.includes(n))).toEqual(names);
});

test('fold-elementwise: a chain folds into the producer as post-ops; a shared value does not', () => {
  const { g, add, input, out } = graph();
  const x = input('x', [2, 3]), w = input('w', [4, 3]), y = input('y', [2, 4]);
  const l = add('linear', [x, w]);
  const r = add('relu', [l]);
  out('o', add('add', [y, r])); // y exists before l: it becomes the linear's extra operand
  const s = add('scale', [y], { c: 0.5 });
  out('s', s);
  out('t', add('sub', [s, y])); // s is an output too (two uses): not folded
  const { graph: f, count } = check(foldElementwise, g);
  expect(count).toBe(2);
  expect(ops(f)).toEqual(['input', 'input', 'input', 'linear', 'scale', 'sub']);
  expect(epiText(f.nodes[3])).toBe('epilogue{post=add($0,relu(x)), args=1}');
  expect(f.nodes[3].inputs).toEqual([x, w, y]);
  expect(f.outputs[0]).toEqual({ name: 'o', node: 3 });
  expect(check(foldElementwise, f).count).toBe(0); // a fixed point
  expect(refoldElementwise.apply).toBe(foldElementwise.apply);
});

test('drop-identity-quantizer: quantizers to f32 and of values on their grid go; users read the input', () => {
  const { g, add, q, input, out } = graph();
  const x = input('x'), y = input('y');
  const a = add('add', [q(x, F32), y]);
  const qa = q(a, FIXED);
  const r = add('relu', [qa]); // relu keeps qa on the fixed grid
  out('r', q(r, FIXED)); // so this requantization is the identity
  out('f', q(add('relu', [qa]), FLOAT)); // another format: kept
  const { graph: f, count } = check(dropIdentityQuantizer, g);
  expect(count).toBe(2);
  expect(ops(f)).toEqual(['input', 'input', 'add', 'quantize', 'relu', 'relu', 'quantize']);
  expect(f.nodes[2].inputs).toEqual([x, y]);
  expect(f.outputs[0]).toEqual({ name: 'r', node: 4 });
});

test('recompute-shared-elementwise: the other users of a quantized elementwise value compute it themselves', () => {
  const { g, add, q, input, out } = graph();
  const x = input('x'), y = input('y'), z = input('z');
  const p = add('add', [x, y]);
  out('q', q(p, FIXED));
  out('u', add('mul', [p, z]));
  const { graph: f, count } = check(recomputeSharedElementwise, g);
  expect(count).toBe(1);
  expect(ops(f)).toEqual(['input', 'input', 'input', 'add', 'quantize', 'add']);
  expect(epiText(f.nodes[5])).toBe('epilogue{post=mul(x,$0), args=1}');
  expect(f.nodes[5].inputs).toEqual([x, y, z]);
  // the quantizer is now the only use of p, so fold-quantizer folds it
  expect(check(foldQuantizer, f).count).toBe(1);
  // not when p is also a graph output
  const h = graph();
  const hp = h.add('add', [h.input('x'), h.input('y')]);
  h.out('q', h.q(hp, FIXED));
  h.out('u', h.add('relu', [hp]));
  h.out('p', hp);
  expect(check(recomputeSharedElementwise, h.g).count).toBe(0);
});

test('fold-quantizer: a sole-use quantizer becomes its producer\'s epilogue, also through a view', () => {
  const { g, add, q, input, out } = graph();
  const x = input('x'), y = input('y');
  const m = add('mul', [x, y]);
  out('a', q(m, FIXED));
  const v = add('reshape', [add('sub', [x, y])], { shape: [12] });
  out('b', q(v, FLOAT)); // through a single-use view: the sub stores it, the view carries the format
  const s = add('add', [x, y]);
  out('c', q(s, FIXED));
  out('s', s); // s is seen unquantized: kept
  const { graph: f, count } = check(foldQuantizer, g);
  expect(count).toBe(2);
  expect(ops(f)).toEqual(['input', 'input', 'mul', 'sub', 'reshape', 'add', 'quantize']);
  expect(f.nodes[2].epi).toEqual({ args: 0, q: { fmt: FIXED, rounding: 'nearest', role: 'A' } });
  expect(f.nodes[2].type.fmt).toEqual(FIXED);
  expect(f.nodes[3].epi?.q?.fmt).toEqual(FLOAT);
  expect(f.nodes[4].type.fmt).toEqual(FLOAT);
  expect(f.outputs.slice(0, 2)).toEqual([{ name: 'a', node: 2 }, { name: 'b', node: 4 }]);
});

test('fold-qpost-relu: a ReLU or ReLU backward of a quantized value folds after the quantizer', () => {
  const { g, add, input, out } = graph();
  const x = input('x'), y = input('y'), yv = input('yv');
  const p = add('add', [x, y], {}, { args: 0, q: { fmt: FIXED, rounding: 'nearest' } });
  out('r', add('relu', [p]));
  const d = add('mul', [x, y], {}, { args: 0, q: { fmt: FLOAT, rounding: 'nearest' } });
  out('d', add('relu_bwd', [d, yv]));
  const e = add('sub', [x, y]); // not quantized: a post-op's job, not this rule's
  out('e', add('relu', [e]));
  const { graph: f, count } = check(foldQpostRelu, g);
  expect(count).toBe(2);
  expect(ops(f)).toEqual(['input', 'input', 'input', 'add', 'mul', 'sub', 'relu']);
  expect(epiText(f.nodes[3])).toBe('epilogue{q=fixed<8,4>, rounding=nearest, qpost=relu(x)}');
  expect(epiText(f.nodes[4])).toBe('epilogue{args=1, q=float<5,2>, rounding=nearest, qpost=relu_bwd(x,$0)}');
  expect(f.nodes[4].inputs).toEqual([x, y, yv]);
  expect(f.outputs.map((o) => o.node)).toEqual([3, 4, 6]);
});

test('the rewrite toolkit: uses, users, replaceAllUses through chains, finish renumbers and re-infers', () => {
  const { g, add, q, input, out } = graph();
  const x = input('x'), y = input('y');
  const a = add('add', [x, y]);
  const qa = q(a, FIXED);
  const b = add('mul', [qa, qa]);
  out('b', b);
  g.updates.push({ name: 'w', node: qa });
  const rw = new Rewrite(g);
  expect(rw.uses()).toEqual([1, 1, 1, 3, 1]);
  expect(rw.users(qa).map((n) => n.id)).toEqual([b]);
  rw.nodes[a].epi = { args: 0, q: { fmt: FIXED, rounding: 'nearest' } };
  rw.replaceAllUses(qa, a);
  expect(rw.isErased(qa)).toBe(true);
  expect(rw.resolve(qa)).toBe(a);
  expect(rw.uses()).toEqual([1, 1, 3, 0, 1]);
  expect(rw.users(a).map((n) => n.id)).toEqual([b]);
  expect(() => rw.replaceAllUses(a, qa)).toThrow('cannot replace itself');
  const f = rw.finish();
  expect(ops(f)).toEqual(['input', 'input', 'add', 'mul']);
  expect(f.nodes[3].inputs).toEqual([2, 2]);
  expect(f.nodes[2].type.fmt).toEqual(FIXED);
  expect(f.updates).toEqual([{ name: 'w', node: 2 }]);
  expect(g.nodes[a].epi).toBeUndefined(); // the input graph is not modified
  expect(g.nodes).toHaveLength(5);
});

test('print → parse → print of a graph with every epilogue kind', () => {
  const { g, add, input, out } = graph();
  const x = input('x'), y = input('y'), s1 = input('s', [1]);
  const post = (text: string) => parsePost(text);
  const q = (fmt: Format, rounding: 'nearest' | 'stochastic' = 'nearest', role?: string) => ({ fmt, rounding, ...(role ? { role } : {}) });
  const kinds: [string, number[], Epilogue, string][] = [
    ['post only', [x, y], { post: post('relu(x)'), args: 0 }, 'post=relu(x)'],
    ['post with operands, a scalar, attributes', [x, y, y, s1], { post: post('mul_scalar(relu(sub($0,scale{c=0.5}(x))),$1)'), args: 2 },
      'post=mul_scalar(relu(sub($0,scale{c=0.5}(x))),$1), args=2'],
    ['post with a negative zero and a tiny constant', [x, y], { post: post('add_const{c=1e-7}(scale{c=-0}(x))'), args: 0 },
      'post=add_const{c=1e-7}(scale{c=-0}(x))'],
    ['fixed quantizer only', [x, y], { args: 0, q: q(FIXED) }, 'q=fixed<8,4>, rounding=nearest'],
    ['float quantizer, stochastic, role', [x, y], { args: 0, q: q(FLOAT, 'stochastic', 'E') }, 'q=float<5,2>, rounding=stochastic, role="E"'],
    ['bfp quantizer per row, a site role', [x, y], { args: 0, q: q({ kind: 'bfp', wl: 6, axis: 0 }, 'nearest', 'site:conv1/bwd "x"') },
      'q=bfp<6,axis=0>, rounding=nearest, role="site:conv1/bwd \\"x\\""'],
    ['bfp quantizer per tensor', [x, y], { args: 0, q: q({ kind: 'bfp', wl: 5, axis: 'tensor' }, 'nearest', 'A') }, 'q=bfp<5,tensor>, rounding=nearest, role="A"'],
    ['minmax quantizer', [x, y], { args: 0, q: q({ kind: 'minmax', bits: 8, per: 'tensor' }, 'nearest', 'A') }, 'q=minmax<8,tensor>, rounding=nearest, role="A"'],
    ['post and quantizer', [x, y, y], { post: post('add(x,$0)'), args: 1, q: q(FIXED, 'nearest', 'A') },
      'post=add(x,$0), args=1, q=fixed<8,4>, rounding=nearest, role="A"'],
    ['quantizer and qpost', [x, y], { args: 0, q: q(FIXED, 'nearest', 'A'), qpost: post('relu(x)') }, 'q=fixed<8,4>, rounding=nearest, role="A", qpost=relu(x)'],
    ['quantizer (stochastic) and qpost with an operand', [x, y, y], { args: 1, q: q(FLOAT, 'stochastic'), qpost: post('relu_bwd(x,$0)') },
      'args=1, q=float<5,2>, rounding=stochastic, qpost=relu_bwd(x,$0)'],
    ['post, quantizer, qpost relu_bwd with an operand', [x, y, y, x], { post: post('relu(add(x,$0))'), args: 2, q: q(FLOAT, 'nearest', 'A'), qpost: post('relu_bwd(x,$1)') },
      'post=relu(add(x,$0)), args=2, q=float<5,2>, rounding=nearest, role="A", qpost=relu_bwd(x,$1)'],
  ];
  kinds.forEach(([, inputs, epi], i) => out(`k${i}`, add('add', inputs, {}, epi)));
  const m = mod(g);
  verifyModule(m);
  const text = printModule(m);
  const first = g.nodes.length - kinds.length;
  kinds.forEach(([what, , , fields], i) => expect([what, text.includes(`{${fields}}`)]).toEqual([what, true]));
  kinds.forEach(([what], i) => expect([what, epiText(g.nodes[first + i])]).toEqual([what, `epilogue{${kinds[i][3]}}`]));
  const back = parseModule(text, 'x.lpir');
  expect(printModule(back)).toBe(text);
  expect(back.graphs[0].nodes.map((n) => n.epi)).toEqual(g.nodes.map((n) => n.epi));
  expect(back.graphs[0].nodes.map((n) => n.attrs)).toEqual(g.nodes.map((n) => n.attrs));
  expect(back.graphs[0].nodes.map((n) => n.type)).toEqual(g.nodes.map((n) => n.type));
  // the same outputs, bit for bit, from the graph read back (the CPU interpreter applies every epilogue kind)
  const feeds = feedsFor(g, 3);
  const a = runGraph(g, feeds, new Map()), b = runGraph(back.graphs[0], feeds, new Map());
  for (const o of g.outputs) expect([o.name, bits(b.outputs[o.name])]).toEqual([o.name, bits(a.outputs[o.name])]);
});

describe('rebuild (ir/rewrite.ts)', () => {
  test('inserts nodes after a copy; outputs and updates follow the map, after updates the visitor adds', () => {
    const g = emptyGraph('train'), b = new Builder(g);
    const x = b.add('input', [], { name: 'x', kind: 'data', shape: [2, 3], dtype: 'f32' });
    const s = b.add('state', [], { name: 's', kind: 'buffer', shape: [2, 3], init: 'zeros' });
    const r = b.add('relu', [x]);
    const a = b.add('add', [r, s]);
    g.outputs.push({ name: 'y', node: a });
    g.updates.push({ name: 's', node: a });
    const out = rebuild(g, (n, ins, nb) => {
      const id = copyNode(n, ins, nb);
      if (n.op !== 'relu') return id;
      nb.graph.updates.push({ name: 'extra', node: id });
      return nb.add('scale', [id], { c: 2 }, n.loc); // every reader of the relu now reads 2·relu
    });
    expect(out.nodes.map((n) => n.op)).toEqual(['input', 'state', 'relu', 'scale', 'add']);
    expect(out.nodes[4].inputs).toEqual([3, 1]);
    expect(out.outputs).toEqual([{ name: 'y', node: 4 }]);
    expect(out.updates).toEqual([{ name: 'extra', node: 2 }, { name: 's', node: 4 }]);
  });
});
