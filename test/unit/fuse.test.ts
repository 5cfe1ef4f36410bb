/**
 * passes/fuse.ts: which quantizers fold into their producer, that the result verifies and keeps every loc, and that
 * the CPU interpreter computes the same values with and without fusion (nearest rounding; stochastic bits follow
 * the producer's id after fusion).
 */
import { Attrs, Builder, Graph, Module, emptyGraph } from '../../ir/graph.js';
import { Format } from '../../ir/format.js';
import { verifyModule } from '../../ir/verify.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { quantize } from '../../ir/quant/quantize.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { fuseElementwiseGraph, fuseGraph, fuseQuantizers, fusionStats } from '../../passes/fuse.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { inputFeeds, rand } from './helpers.js';
import { bits, epiText, feedsFor, moduleOf, testGraph } from './graph-builder.js';
import { postToString } from '../../ir/post.js';

const FIXED: Format = { kind: 'fixed', wl: 8, fl: 4 };
const FLOAT: Format = { kind: 'float', exp: 5, man: 2 };
const BFP: Format = { kind: 'bfp', wl: 6, axis: 0 };
const F32: Format = { kind: 'f32' };

const graph = testGraph;
const mod = moduleOf;

function expectSameResults(a: Graph, b: Graph, feeds: Record<string, ArrayLike<number>>, state = new Map<string, ArrayLike<number>>()): void {
  const ra = runGraph(a, feeds, state, { seed: 5, step: 3 }), rb = runGraph(b, feeds, state, { seed: 5, step: 3 });
  expect(Object.keys(rb.outputs)).toEqual(Object.keys(ra.outputs));
  for (const k of Object.keys(ra.outputs)) expect([k, bits(rb.outputs[k])]).toEqual([k, bits(ra.outputs[k])]);
  expect([...rb.updates.keys()]).toEqual([...ra.updates.keys()]);
  for (const [k, v] of ra.updates) expect([k, bits(rb.updates.get(k)!)]).toEqual([k, bits(v)]);
}

test('folds a sole-use quantizer into its producer; outputs and updates follow; locs kept', () => {
  const { g, add, q, input } = graph();
  const x = input('x', [3, 5]), y = input('y', [3, 5]);
  const w = add('state', [], { name: 'w', kind: 'param', shape: [3, 5], init: 'zeros' });
  const s = add('add', [x, y]);
  const r = add('relu', [q(s, FIXED)]); // add → fixed: fused
  const out = q(r, FLOAT); // relu → float, a graph output: fused, the output moves to relu
  const upd = q(add('scale', [w], { c: 0.5 }), BFP); // an update: fused, the update moves to scale
  g.outputs.push({ name: 'out', node: out });
  g.updates.push({ name: 'w', node: upd });
  const before = mod(g);
  verifyModule(before);

  const after = fuseQuantizers(before);
  verifyModule(after);
  expect(fusionStats(before)).toEqual({ fused: 3, identities: 0, kept: 0, qpost: 0 });
  const f = after.graphs[0];
  expect(f.nodes.map((n) => n.op)).toEqual(['input', 'input', 'state', 'add', 'relu', 'scale']);
  expect(f.nodes.map((n) => n.id)).toEqual([0, 1, 2, 3, 4, 5]);
  const [, , , fa, fr, fs] = f.nodes;
  expect([fa.epi?.q?.fmt, fa.epi?.q?.rounding, fa.type.fmt]).toEqual([FIXED, 'nearest', FIXED]);
  expect([fr.epi?.q?.fmt, fr.type.fmt]).toEqual([FLOAT, FLOAT]);
  expect([fs.epi?.q?.fmt, fs.type.fmt]).toEqual([BFP, BFP]);
  expect(fr.inputs).toEqual([fa.id]);
  expect(f.outputs).toEqual([{ name: 'out', node: fr.id }]);
  expect(f.updates).toEqual([{ name: 'w', node: fs.id }]);
  // every surviving node keeps the loc of the node it was
  for (const n of f.nodes) expect(n.loc).toEqual(g.nodes.find((o) => o.op === n.op && o.loc?.line === n.loc?.line)?.loc);
  expect(f.nodes.map((n) => n.loc!.line)).toEqual([1, 2, 3, 4, 6, 8]);
  // the input module is not modified
  expect(g.nodes).toHaveLength(9);
  expect(g.nodes[s].epi).toBeUndefined();

  const state = new Map([['w', Float32Array.from({ length: 15 }, (_, i) => i / 3 - 2.4)]]);
  expectSameResults(g, f, feedsFor(g, 1), state);
  // and the text form round-trips
  expect(printModule(parseModule(printModule(after), 'x.lpir'))).toBe(printModule(after));
});

test('does not fuse when the unquantized value has another use, or the producer cannot take an epilogue', () => {
  const { g, add, q, input } = graph();
  const x = input('x', [4, 6]), y = input('y', [4, 6]);
  const m = add('mul', [x, y]);
  const qm = q(m, FIXED);
  const both = add('sub', [qm, add('reshape', [m], { shape: [4, 6] })]); // m is used raw too (not elementwise): not fused
  const s = add('add', [x, y]);
  const qs = q(s, FLOAT); // s is also a graph output: not fused
  const qx = q(x, FIXED); // an input: not fused
  const v = add('reshape', [both], { shape: [24] });
  const qv = q(v, FIXED); // through a single-use view into 'both' (sub): fused, the view carries the format
  const v2 = add('reshape', [add('mul', [y, x])], { shape: [24] });
  const qv2 = q(v2, { kind: 'bfp', wl: 8, axis: 0 }); // per-row blocks of the view are not the producer's: kept
  const d = add('add', [s, s]); // two uses by one node
  const qd = q(add('relu', [d]), FIXED); // relu has one use: fused
  const qq = q(qd, FLOAT); // its producer already has an epilogue after that: kept
  const t = add('relu', [qm]);
  const qt = q(q(t, FLOAT), FIXED); // float fuses into relu (t is on the fixed grid, not the float one), fixed stays
  g.outputs.push({ name: 'qs', node: qs }, { name: 's', node: s }, { name: 'qx', node: qx }, { name: 'qv', node: qv },
    { name: 'qv2', node: qv2 }, { name: 'qq', node: qq }, { name: 'qt', node: qt });
  verifyModule(mod(g));
  const { graph: f, stats } = fuseGraph(g);
  verifyModule(mod(f));
  expect(stats).toEqual({ fused: 3, identities: 0, kept: 6, qpost: 0 });
  const fusedOps = f.nodes.filter((n) => n.epi?.q).map((n) => n.op);
  expect(fusedOps).toEqual(['sub', 'relu', 'relu']);
  expect(f.nodes.filter((n) => n.op === 'quantize')).toHaveLength(6);
  expect(f.nodes[f.outputs.find((o) => o.name === 'qv')!.node].op).toBe('reshape');
  expectSameResults(g, f, feedsFor(g, 2));
});

test('f32 quantizers are removed: users, outputs and updates read the input', () => {
  const { g, add, q, input } = graph();
  const x = input('x', [2, 3]);
  const w = add('state', [], { name: 'w', kind: 'param', shape: [2, 3], init: 'zeros' });
  const a = add('add', [q(x, F32), q(q(w, F32), F32)]);
  const r = add('relu', [a]);
  const qr = q(q(r, FIXED), F32); // the fixed quantizer fuses into relu; the identity after it goes
  const s = add('reshape', [q(qr, F32)], { shape: [6] }); // a view of a fused value takes its format
  g.outputs.push({ name: 'x', node: q(x, F32) }, { name: 'r', node: qr }, { name: 's', node: s });
  g.updates.push({ name: 'w', node: q(a, F32) });
  verifyModule(mod(g));
  const { graph: f, stats } = fuseGraph(g);
  verifyModule(mod(f));
  expect(stats).toEqual({ fused: 1, identities: 7, kept: 0, qpost: 0 });
  expect(f.nodes.map((n) => n.op)).toEqual(['input', 'state', 'add', 'relu', 'reshape']);
  expect(f.nodes[2].inputs).toEqual([0, 1]);
  expect(f.nodes[4].type.fmt).toEqual(FIXED);
  expect(f.outputs).toEqual([{ name: 'x', node: 0 }, { name: 'r', node: 3 }, { name: 's', node: 4 }]);
  expect(f.updates).toEqual([{ name: 'w', node: 2 }]);
  expectSameResults(g, f, feedsFor(g, 3), new Map([['w', new Float32Array([1, -2, 0.3, 4, -0.5, 6])]]));
});

test('a ReLU reading a quantized producer folds after its quantizer (qpost): relu(Q(v)) bit for bit', () => {
  const { g, add, q, input } = graph();
  const x = input('x', [4, 6]), y = input('y', [4, 6]);
  const s = add('add', [x, y]);
  const tensorBfp: Format = { kind: 'bfp', wl: 5, axis: 'tensor' };
  const r = add('relu', [q(s, tensorBfp, 'stochastic')]);
  g.outputs.push({ name: 'o', node: r }, { name: 'm', node: add('maxpool', [add('reshape', [r], { shape: [1, 1, 4, 6] })], { k: 2, stride: 2 }) });
  const { graph: f, stats } = fuseGraph(g);
  verifyModule(mod(f));
  expect(stats).toEqual({ fused: 1, identities: 0, kept: 0, qpost: 1 });
  expect(f.nodes.map((n) => n.op)).toEqual(['input', 'input', 'add', 'reshape', 'maxpool']);
  expect(epiText(f.nodes[s])).toMatch(/ qpost=relu\(x\)}$/);
  expect(f.nodes[s].type.fmt).toEqual(tensorBfp);
  expect(f.outputs[0]).toEqual({ name: 'o', node: s });
  const feeds = feedsFor(g, 8);
  const raw = runGraph(g, feeds, new Map()).values[s] as Float32Array;
  const got = runGraph(f, feeds, new Map(), { seed: 9, step: 2 }).outputs.o;
  const want = quantize(raw, [4, 6], tensorBfp, 'stochastic', { seed: 9, step: 2, tensorId: s }).map((v) => (v > 0 ? v : 0));
  expect(bits(got)).toEqual(bits(want));
  // ReLU's backward through its error input: the producer reads y as an extra operand
  const k = graph();
  const yv = k.input('y', [4, 6]);
  const dy = k.add('mul', [k.input('a', [4, 6]), k.input('b', [4, 6])]);
  k.g.outputs.push({ name: 'dx', node: k.add('relu_bwd', [k.q(dy, tensorBfp, 'stochastic'), yv]) });
  const kf = fuseGraph(k.g);
  verifyModule(mod(kf.graph));
  expect(kf.stats.qpost).toBe(1);
  expect(kf.graph.nodes.map((n) => n.op)).toEqual(['input', 'input', 'input', 'mul']);
  expect(epiText(kf.graph.nodes[dy])).toMatch(/^epilogue{args=1, .* qpost=relu_bwd\(x,\$0\)}$/);
  expect(kf.graph.nodes[dy].inputs).toEqual([1, 2, yv]);
  const kfeeds = feedsFor(k.g, 9);
  const kraw = runGraph(k.g, kfeeds, new Map()).values[dy] as Float32Array;
  const kq = quantize(kraw, [4, 6], tensorBfp, 'stochastic', { seed: 9, step: 2, tensorId: dy });
  expect(bits(runGraph(kf.graph, kfeeds, new Map(), { seed: 9, step: 2 }).outputs.dx)).toEqual(bits(kq.map((v, i) => (kfeeds.y[i] > 0 ? v : 0))));
  // a second use of the quantized value keeps the ReLU separate
  const h = graph();
  const a2 = h.add('add', [h.input('x', [2, 2]), h.input('y', [2, 2])]);
  const q2 = h.q(a2, tensorBfp);
  h.g.outputs.push({ name: 'r', node: h.add('relu', [q2]) }, { name: 'q', node: q2 });
  expect(fuseGraph(h.g).stats.qpost).toBe(0);
});

test('recompute instead of share: elementwise users of a quantized elementwise value compute it themselves', () => {
  const { g, add, q, input } = graph();
  const m = input('m', [3, 5]), gr = input('g', [3, 5]), w = input('w', [3, 5]);
  const lr = input('lr', [1]);
  const d = add('add', [add('scale', [m], { c: 0.9 }), gr]); // SGD's d = μ·m + g
  const upd = add('sub', [w, add('mul_scalar', [d, lr])]); // w − lr·d reads d raw
  g.outputs.push({ name: 'm', node: q(d, BFP) }, { name: 'w', node: upd }); // nearest: stochastic bits follow ids
  const fe = fuseElementwiseGraph(g); // as the pipeline: elementwise chains first
  const { graph: f, stats } = fuseGraph(fe);
  verifyModule(mod(f));
  expect(stats.fused).toBe(1);
  expect(f.nodes.filter((n) => n.op === 'quantize')).toHaveLength(0);
  expect(f.nodes.filter((n) => !['input'].includes(n.op)).map((n) => [n.op, n.epi?.post ? postToString(n.epi.post) : ''])).toEqual([
    ['scale', 'add(x,$0)'], ['scale', 'sub($2,mul_scalar(add(x,$0),$1))'],
  ]);
  expectSameResults(g, f, feedsFor(g, 6));
});

test('stochastic: the fused producer draws its bits with its own id', () => {
  const { g, add, q, input } = graph();
  const x = input('x', [5, 7]), y = input('y', [5, 7]);
  const m = add('mul', [x, y]);
  g.outputs.push({ name: 'o', node: q(m, FIXED, 'stochastic') });
  const { graph: f } = fuseGraph(g);
  expect(f.nodes[m].epi?.q?.rounding).toBe('stochastic');
  const feeds = feedsFor(g, 4);
  const raw = runGraph(g, feeds, new Map()).values[m] as Float32Array;
  const fused = runGraph(f, feeds, new Map(), { seed: 9, step: 2 }).outputs.o;
  expect(bits(fused)).toEqual(bits(quantize(raw, [5, 7], FIXED, 'stochastic', { seed: 9, step: 2, tensorId: m })));
});

test('lenet5 with a full precision policy: fused graphs verify and train the same on the CPU interpreter', () => {
  const policy = parsePolicy('W=fixed<8,6> A=fixed<8,4> E=bfp<8,tensor> G=float<5,2> M=bfp<8,axis=0> ACC=fixed<16,12>');
  const m = runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: policy, fuse: false });
  const f = fuseQuantizers(m);
  verifyModule(f);
  const stats = fusionStats(m);
  expect(stats.fused).toBeGreaterThan(10);
  const count = (mm: Module) => mm.graphs.reduce((s, g) => s + g.nodes.filter((n) => n.op === 'quantize').length, 0);
  expect(count(f)).toBe(count(m) - stats.fused - stats.identities);
  expect(fusionStats(f)).toEqual({ fused: 0, identities: 0, kept: stats.kept, qpost: 0 }); // idempotent
  const state = initState(m, 7);
  for (const [i, g] of m.graphs.entries()) {
    const feeds = inputFeeds(g, rand(11 + i));
    expectSameResults(g, f.graphs[i], feeds, state);
  }
});

test('requantizing a value already on the grid is removed: relu, max-pooling and their backward keep the grid', () => {
  // The claim behind the rule, checked with the CPU quantizer on random data: q(f(q(x))) = f(q(x)) bit for bit.
  const r = rand(21);
  const x = Float32Array.from({ length: 2 * 3 * 4 * 4 }, () => (r() - 0.4) * 8);
  const shape = [2, 3, 4, 4];
  const relu = (v: Float32Array) => v.map((a) => (a > 0 ? a : 0));
  const pool = (v: Float32Array) => Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => {
    const ox = i % 2, oy = (i >> 1) % 2, nc = i >> 2;
    return Math.max(...[0, 1, 4, 5].map((d) => v[nc * 16 + oy * 8 + ox * 2 + d]));
  });
  for (const fmt of [FIXED, FLOAT, BFP, { kind: 'bfp', wl: 5, axis: 'tensor' } as Format, { kind: 'bfp', wl: 4, axis: 1 } as Format])
    for (const rounding of ['nearest', 'stochastic'] as const) {
      const key = { seed: 1, step: 2, tensorId: 3 };
      const qx = quantize(x, shape, fmt, rounding, key);
      expect(bits(quantize(relu(qx), shape, fmt, rounding, key))).toEqual(bits(relu(qx)));
      expect(bits(quantize(pool(qx), [2, 3, 2, 2], fmt, rounding, key))).toEqual(bits(pool(qx)));
    }

  // The pass: x → q → relu → q(same) → maxpool → q(same) → q(other format): the two same-format requantizers go.
  const { g, add, q, input } = graph();
  const a = q(add('relu', [input('x', shape)]), BFP);
  const p = add('maxpool', [q(add('relu', [a]), BFP)], { k: 2, stride: 2 });
  const o = q(q(p, BFP), FIXED);
  const axis2: Format = { kind: 'bfp', wl: 6, axis: 2 };
  const kept = q(add('maxpool', [q(add('relu', [input('y', shape)]), axis2)], { k: 2, stride: 2 }), axis2); // pooling mixes axis-2 blocks
  g.outputs.push({ name: 'o', node: o }, { name: 'k', node: kept });
  const { graph: f, stats } = fuseGraph(g);
  expect(stats.identities).toBe(2);
  // left: relu(x)·BFP, maxpool·FIXED, relu(y)·axis2, maxpool·axis2 — all four fused into their producers
  expect(f.nodes.filter((n) => n.op === 'quantize').length).toBe(0);
  expect(f.nodes.filter((n) => n.epi?.q).map((n) => n.op)).toEqual(['relu', 'maxpool', 'relu', 'maxpool']);
  verifyModule(mod(f));
  expectSameResults(g, f, feedsFor(g, 4));
});
