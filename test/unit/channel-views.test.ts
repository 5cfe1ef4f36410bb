/**
 * Concatenations without copies (passes/channel-views.ts), without a device: where the rule places a DenseNet's
 * feature maps (each block one buffer, every map at its channel offset, as the architecture puts them), what it
 * refuses to place and why, the CPU interpreter on the placed layout (runtime/cpu/placed.ts) computing the same bits
 * as on separate values (and different ones when a placement is wrong), and the memory plan's placed values.
 */
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Graph, Module } from '../../ir/graph.js';
import { ChannelView, ViewMap, concatViews } from '../../passes/channel-views.js';
import { planGraphMemory } from '../../passes/memory.js';
import { parsePost } from '../../ir/parse.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { testGraph, feedsFor } from './graph-builder.js';
import { relErr } from './helpers.js';
import { TORCH, caseFeeds, caseState, gradientModule } from './densecat-cases.js';

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const BFP = 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic';
const train = (m: Module): Graph => m.graphs.find((g) => g.name === 'train')!;
const compile = (file: string, input: number[], spec?: string) =>
  runPasses(frontEnd(file, 2, { input }), { batch: 2, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });

/** The placed values that are not concats or slices (the maps written in place), as "op@offset" by root, in offset order. */
function leaves(g: Graph, views: ViewMap): string[][] {
  const byRoot = new Map<number, [number, string][]>();
  for (const [id, v] of views) {
    const op = g.nodes[id].op;
    if (v.slice || v.accumulates !== undefined || op === 'concat') continue;
    byRoot.set(v.root, [...(byRoot.get(v.root) ?? []), [v.offset, `${op}@${v.offset}`]]);
  }
  return [...byRoot.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => l.sort((a, b) => a[0] - b[0]).map(([, s]) => s));
}

describe('where DenseNets\' maps go', () => {
  test("kuangliu's order (new map first): each block's maps at the offsets the architecture gives, newest first", () => {
    const g = train(compile('test/fixtures/densecat/cifar-tiny.ts', [3, 8, 8]));
    // block 1: stem 8 channels + 3 layers of 4 = 20: [h3, h2, h1, stem]; block 2: transition 10 + 2 × 4 = 18: [h5, h4, t]
    expect(leaves(g, concatViews(g))).toEqual([
      ['conv2d@0', 'conv2d@4', 'conv2d@8', 'conv2d@12'],
      ['conv2d@0', 'conv2d@4', 'avgpool@8'],
    ]);
  });

  test("torchvision's order (new map appended): the stem's max pool first, then each new map", () => {
    const g = train(compile('test/fixtures/densecat/imagenet-tiny.ts', [3, 16, 16]));
    expect(leaves(g, concatViews(g))).toEqual([
      ['maxpool@0', 'conv2d@8', 'conv2d@12'],
      ['avgpool@0', 'conv2d@8', 'conv2d@12'],
    ]);
  });

  test('every concat input and every gradient split is placed; each root\'s maps tile its channels exactly once', () => {
    const g = train(compile('test/fixtures/densecat/cifar-tiny.ts', [3, 8, 8]));
    const views = concatViews(g);
    const concats = g.nodes.filter((n) => n.op === 'concat');
    for (const c of concats) for (const i of c.inputs) expect(views.has(i)).toBe(true);
    const slices = g.nodes.filter((n) => n.op === 'slice');
    expect(slices.length).toBe(concats.length * 2);
    for (const s of slices) expect(views.get(s.id)?.slice).toBe(true);
    // each block's error in one buffer: the BN input gradient of every layer but the last adds the later layers' part
    // in place, at the offset of the features it is the error of (block 1: 20 channels, the layers' inputs at 4, 8
    // and 12; block 2: 18 channels, at 4 and 8)
    const acc = new Map<number, number[]>();
    for (const [id, v] of views) if (v.accumulates !== undefined) {
      expect(g.nodes[id].op).toBe('bn_bwd_x');
      expect(views.get(v.accumulates)?.slice).toBe(true);
      acc.set(v.root, [...(acc.get(v.root) ?? []), v.offset].sort((a, b) => a - b));
    }
    expect([...acc.entries()].sort((a, b) => b[0] - a[0]).map(([r, o]) => [g.nodes[r].type.shape[1], o])).toEqual([[20, [4, 8, 12]], [18, [4, 8]]]);
    // a concat's range is its inputs' ranges, side by side
    for (const c of concats) {
      const at = views.get(c.id)?.offset ?? 0;
      let o = at;
      for (const i of c.inputs) { expect(views.get(i)!.offset).toBe(o); o += g.nodes[i].type.shape[1]; }
      expect(o - at).toBe(c.type.shape[1]);
    }
  });
});

describe('what is not placed', () => {
  const map = (g: Graph, v: ViewMap) => Object.fromEntries([...v].map(([id, x]) => [g.nodes[id].op + id, [x.root, x.offset]]));

  test('sources, graph outputs, a value twice, reshaped values and a concat with an epilogue keep their copies', () => {
    const { g, add, input, out } = testGraph();
    const x = input('x', [2, 3, 4, 4]);
    const a = add('relu', [x]), b = add('relu', [x]), r = add('relu', [x]);
    const flat = add('reshape', [r], { shape: [2, 48] });
    const c = add('concat', [x, a, a, b, r], { axis: 1 }); // x a source, a twice, r reshaped: only b placed
    out('c', c); out('b2', add('relu', [b])); out('flat', flat);
    expect(map(g, concatViews(g))).toEqual({ [`relu${b}`]: [c, 9] });
    const q = add('concat', [add('relu', [x]), add('relu', [x])], { axis: 1 }, { args: 0, q: { fmt: { kind: 'fixed', wl: 8, fl: 4 }, rounding: 'nearest' } });
    out('q', q);
    expect(concatViews(g).has(q - 1)).toBe(false);
    const y = add('relu', [x]), pinned = add('concat', [y, add('relu', [x])], { axis: 1 });
    out('y', y); out('p', pinned);
    expect(concatViews(g).has(y)).toBe(false); // an output is read back from the start of its own buffer
  });

  test('a sum into a slice\'s range is refused while the range\'s old values are still read after it', () => {
    const { g, add, input, out } = testGraph();
    const x = input('x', [2, 6, 4, 4]), e = input('e', [2, 3, 4, 4]);
    const d = add('relu', [x]);
    const lo = add('slice', [d], { axis: 1, start: 0, len: 3 }), hi = add('slice', [d], { axis: 1, start: 3, len: 3 });
    const post = { args: 1, post: parsePost('add($0,x)') };
    const n = add('relu', [e, hi], {}, post); // relu(e) + hi, summed into hi's range of d
    out('n', add('relu', [n])); out('lo', add('relu', [lo]));
    expect(concatViews(g).get(n)).toEqual({ root: d, axis: 1, offset: 3, accumulates: hi });
    const late = add('relu', [d]); // reads all of d, hi's old values included, after n
    out('late', late);
    expect(concatViews(g).has(n)).toBe(false);
    expect(concatViews(g).get(hi)?.slice).toBe(true);
  });

  test('canPlace refusing (a kernel that cannot address a strided view) keeps the copy', () => {
    const { g, add, input, out } = testGraph();
    const x = input('x', [2, 3, 4, 4]);
    const a = add('relu', [x]), b = add('relu', [x]);
    out('c', add('concat', [a, b], { axis: 1 }));
    expect([...concatViews(g, { canPlace: (v) => v !== a }).keys()]).toEqual([b]);
  });

  test('a kernel writing one map of a block while reading another keeps its value out (no writable aliasing)', () => {
    const { g, add, input, out } = testGraph();
    const x = input('x', [2, 3, 4, 4]);
    const a = add('relu', [x]), b = add('relu', [a]); // b's kernel reads a and writes b: both in c's buffer
    const c = add('concat', [a, b], { axis: 1 });
    out('c', c);
    expect(map(g, concatViews(g))).toEqual({ [`relu${a}`]: [c, 0] });
  });

  test('nested concats place into the outermost buffer; an inner one read twice owns its buffer', () => {
    const { g, add, input, out } = testGraph();
    const x = input('x', [2, 3, 4, 4]);
    const a = add('relu', [x]), b = add('relu', [x]), d = add('relu', [x]);
    const inner = add('concat', [a, b], { axis: 1 }), outer = add('concat', [d, inner], { axis: 1 });
    out('o', add('relu', [outer]));
    expect(map(g, concatViews(g))).toEqual({ [`relu${a}`]: [outer, 3], [`relu${b}`]: [outer, 6], [`relu${d}`]: [outer, 0], [`concat${inner}`]: [outer, 3] });
    const other = add('concat', [inner, d], { axis: 1 }); // inner now also joins another concat: first claim wins
    out('p', other);
    const v = concatViews(g);
    expect(v.get(inner)?.root).toBe(other);
    expect(v.has(d)).toBe(true);
  });
});

describe('the CPU interpreter on the placed layout', () => {
  const cases: [string, number[], string | undefined][] = [
    ['test/fixtures/densecat/cifar-tiny.ts', [3, 8, 8], undefined],
    ['test/fixtures/densecat/imagenet-tiny.ts', [3, 16, 16], undefined],
    ['test/fixtures/densecat/cifar-tiny.ts', [3, 8, 8], BFP],
    ['test/fixtures/densecat/cifar-tiny.ts', [3, 8, 8], 'save=division(block=8,bits=2)'],
  ];
  for (const [file, input, spec] of cases)
    test(`${file} ${spec ? spec.slice(0, 20) : 'fp32'}: a training step computes the same bits as on separate values`, () => {
      const m = compile(file, input, spec), g = train(m), views = concatViews(g);
      expect(views.size).toBeGreaterThan(0);
      const state = initState(m, 0), feeds = { ...feedsFor(g, 4), y: Int32Array.from([3, 7]), lr: new Float32Array([0.05]) };
      const plain = runGraph(g, feeds, state, { seed: 2, step: 1 }), placed = runGraph(g, feeds, state, { seed: 2, step: 1, views });
      const bits = (a: ArrayLike<number>) => [...new Uint32Array(Float32Array.from(a).buffer)];
      for (const o of g.outputs) expect(bits(placed.outputs[o.name])).toEqual(bits(plain.outputs[o.name]));
      for (const [k, v] of plain.updates) expect(bits(placed.updates.get(k)!)).toEqual(bits(v));
      // every forward map as its block buffer holds it at the end (gradient ranges are summed over, on purpose)
      const forward = [...views].filter(([, v]) => !v.slice && v.accumulates === undefined);
      expect(forward.length).toBeGreaterThan(0);
      for (const [id] of forward) expect(bits(placed.values[id])).toEqual(bits(plain.values[id]));
    });

  test('a wrong placement (two maps on one range) changes the result: the layout is really followed', () => {
    const m = compile('test/fixtures/densecat/cifar-tiny.ts', [3, 8, 8]), g = train(m), views = concatViews(g);
    const [id, v] = [...views].find(([i, x]) => !x.slice && g.nodes[i].op === 'conv2d' && x.offset === 4)!;
    const wrong: ViewMap = new Map(views);
    wrong.set(id, { ...v, offset: 0 } as ChannelView); // onto the newest map's channels
    const state = initState(m, 0), feeds = { ...feedsFor(g, 4), y: Int32Array.from([3, 7]), lr: new Float32Array([0.05]) };
    const a = runGraph(g, feeds, state, { views }).outputs.loss[0], b = runGraph(g, feeds, state, { views: wrong }).outputs.loss[0];
    expect(b).not.toBe(a);
  });

  for (const c of TORCH.cases)
    test(`${c.file}: on the placed layout in float64 the loss and every gradient equal PyTorch's (1e-9)`, () => {
      const m = gradientModule(c), g = train(m), views = concatViews(g);
      const r = runGraph(g, caseFeeds(c), caseState(m, c), { precision: 'f64', views });
      expect(Math.abs(r.outputs.loss[0] - c.loss)).toBeLessThan(1e-9);
      for (const [n, ref] of Object.entries(c.grads)) expect(relErr(r.outputs[`grad:${n}`], ref)).toBeLessThan(1e-9);
    });
});

test('the memory plan: placed values own no buffer; a root lives from the first write into it to the last read', () => {
  const m = compile('test/fixtures/densecat/cifar-tiny.ts', [3, 8, 8]), g = train(m), views = concatViews(g);
  const before = planGraphMemory(g), after = planGraphMemory(g, { views });
  const own = new Set(after.buffers.filter((b) => b.scratch === undefined).map((b) => b.node));
  for (const id of views.keys()) expect(own.has(id)).toBe(false);
  const span = new Map(before.buffers.filter((b) => b.scratch === undefined).map((b) => [b.node, [b.start, b.end]]));
  // the two blocks' forward buffers and their two gradient buffers
  const roots = after.buffers.filter((x) => x.scratch === undefined && [...views.values()].some((v) => !v.slice && v.root === x.node));
  expect(roots.length).toBe(4);
  for (const b of roots) {
    const members = [...views].filter(([, v]) => v.root === b.node).map(([id]) => id);
    // no slice reader ends after the root: its readers are the root's readers
    expect(b.start).toBe(Math.min(span.get(b.node)![0], ...members.filter((id) => !views.get(id)!.slice).map((id) => span.get(id)![0])));
    for (const id of members) if (!views.get(id)!.slice) expect(b.end).toBeGreaterThanOrEqual(span.get(id)![1]);
  }
  expect(after.live_peak_bytes).toBeLessThan(before.live_peak_bytes);
});
