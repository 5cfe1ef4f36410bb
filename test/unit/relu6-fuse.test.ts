/**
 * ReLU6 in quantized graphs (passes/fuse.ts, ir/quant/grid.ts): BN → Q → relu6 → Q and its backward
 * dy → Q_E → relu6_bwd → Q_E. Where relu6 keeps Q's grid the second quantizer is an identity (removed) and relu6 (or
 * relu6_bwd) runs after the first one as its producer's qpost; the fused graph computes the unfused graph's bits on
 * the CPU interpreter: by hand-built graphs (stochastic rounding, the producer's bits) and by a MobileNetV2-style
 * net's train and eval step (test/fixtures/dwbn.ts) at nearest rounding (the full pipeline with and without fusion). Where relu6 leaves the grid (minmax, MX
 * E4M3, bfp<2>) the second quantizer stays and so does relu6's kernel.
 */
import { Format, formatToString } from '../../ir/format.js';
import { Graph } from '../../ir/graph.js';
import { verifyModule } from '../../ir/verify.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { quantize } from '../../ir/quant/quantize.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { fuseGraph } from '../../passes/fuse.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { inputFeeds, rand } from './helpers.js';
import { bits, epiText, moduleOf, testGraph } from './graph-builder.js';

const SHAPE = [2, 4, 3, 3];
const relu6 = (v: number) => (v > 0 ? (v < 6 ? v : 6) : 0);
/** Inputs uniform in [−10, 10): many values clamp at 6. */
function wideFeeds(g: Graph, seed: number): Record<string, Float32Array> {
  const r = rand(seed), feeds: Record<string, Float32Array> = {};
  for (const n of g.nodes)
    if (n.op === 'input') feeds[n.attrs.name as string] = Float32Array.from({ length: n.type.shape.reduce((a, b) => a * b, 1) }, () => 20 * r() - 10);
  return feeds;
}
const STEP = { seed: 9, step: 2 };

const KEPT: Format[] = [
  { kind: 'bfp', wl: 8, axis: 'tensor' }, { kind: 'bfp', wl: 3, axis: 1 }, { kind: 'fixed', wl: 8, fl: 3 },
  { kind: 'float', exp: 4, man: 3 }, { kind: 'mx', elem: 'e5m2', block: 4 }, { kind: 'mx', elem: 'int8', block: 2 },
];
const LEFT: Format[] = [{ kind: 'minmax', bits: 4, per: 'tensor' }, { kind: 'mx', elem: 'e4m3', block: 4 }, { kind: 'bfp', wl: 2, axis: 'tensor' }];

describe('forward: add → Q → relu6 → Q', () => {
  const build = (fmt: Format) => {
    const { g, add, q, input, out } = testGraph();
    const s = add('add', [input('x', SHAPE), input('y', SHAPE)]);
    const r = add('relu6', [q(s, fmt, 'stochastic')]);
    out('o', q(r, fmt, 'stochastic'));
    return { g, s, r };
  };
  for (const fmt of KEPT)
    test(`${formatToString(fmt)}: the second quantizer goes, relu6 follows the first (qpost); relu6(Q(v)) bit for bit`, () => {
      const { g, s } = build(fmt);
      const { graph: f, stats } = fuseGraph(g);
      verifyModule(moduleOf(f));
      expect(stats).toEqual({ fused: 1, identities: 1, kept: 0, qpost: 1 });
      expect(f.nodes.map((n) => n.op)).toEqual(['input', 'input', 'add']);
      expect(epiText(f.nodes[s])).toBe(`epilogue{q=${formatToString(fmt)}, rounding=stochastic, role="A", qpost=relu6(x)}`);
      const text = printModule(moduleOf(f));
      expect(printModule(parseModule(text, 'f.lpir'))).toBe(text);
      const feeds = wideFeeds(g, 3);
      const raw = runGraph(g, feeds, new Map()).values[s] as Float32Array;
      const want = quantize(raw, SHAPE, fmt, 'stochastic', { ...STEP, tensorId: s }).map(relu6);
      expect(want.some((v) => v === 6) && want.some((v) => v > 0 && v < 6)).toBe(true);
      expect(bits(runGraph(f, feeds, new Map(), STEP).outputs.o)).toEqual(bits(want));
    });
  for (const fmt of LEFT)
    test(`${formatToString(fmt)}: relu6 leaves the grid, so it keeps its own quantizer and kernel`, () => {
      const { g, s, r } = build(fmt);
      const { graph: f, stats } = fuseGraph(g);
      verifyModule(moduleOf(f));
      expect(stats).toEqual({ fused: 2, identities: 0, kept: 0, qpost: 0 });
      expect(f.nodes.map((n) => n.op)).toEqual(['input', 'input', 'add', 'relu6']);
      expect(epiText(f.nodes[s])).not.toContain('qpost');
      expect(f.nodes[r - 1].epi?.q?.fmt).toEqual(fmt);
    });
});

test('backward: dy → Q_E → relu6_bwd(·, y) → Q_E folds into the error\'s producer (qpost relu6_bwd, y an extra operand)', () => {
  for (const fmt of KEPT.filter((f) => f.kind !== 'mx')) { // MX passes −0 through a backward: not claimed (grid.ts)
    const { g, add, q, input, out } = testGraph();
    const y = input('y', SHAPE);
    const dy = add('mul', [input('a', SHAPE), input('b', SHAPE)]);
    out('dx', q(add('relu6_bwd', [q(dy, fmt, 'stochastic'), y]), fmt, 'stochastic'));
    const { graph: f, stats } = fuseGraph(g);
    verifyModule(moduleOf(f));
    expect([formatToString(fmt), stats]).toEqual([formatToString(fmt), { fused: 1, identities: 1, kept: 0, qpost: 1 }]);
    expect(f.nodes.map((n) => n.op)).toEqual(['input', 'input', 'input', 'mul']);
    expect(epiText(f.nodes[dy])).toBe(`epilogue{args=1, q=${formatToString(fmt)}, rounding=stochastic, role="A", qpost=relu6_bwd(x,$0)}`);
    const feeds = wideFeeds(g, 5);
    feeds.y = feeds.y.map((v) => v * 0.8 + 1); // y in [−7, 9): below 0, inside (0, 6) and at or above 6
    const raw = runGraph(g, feeds, new Map()).values[dy] as Float32Array;
    const want = quantize(raw, SHAPE, fmt, 'stochastic', { ...STEP, tensorId: dy }).map((v, i) => (feeds.y[i] > 0 && feeds.y[i] < 6 ? v : 0));
    expect(bits(runGraph(f, feeds, new Map(), STEP).outputs.dx)).toEqual(bits(want));
  }
});

test('a MobileNetV2-style net under bfp<8> (nearest): fused and unfused pipelines compute the same bits, with no relu6 kernel left', () => {
  const policy = parsePolicy('W=bfp<8,axis=0> A=bfp<8> E=bfp<8> G=bfp<8,axis=0> M=bfp<8,axis=0>');
  const opts = { batch: 2, optimizer: { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: policy };
  const front = frontEnd('test/fixtures/dwbn.ts', 2);
  const unfused = runPasses(structuredClone(front), { ...opts, fuse: false }), fused = runPasses(front, opts);
  const state = initState(unfused, 7);
  // batch norms' γ = 8 instead of 1: their normalised outputs reach past 6, so ReLU6 clamps (and its backward masks)
  for (const [k, v] of state) if (/\.weight$/.test(k) && v.length > 1 && v.every((x) => x === 1)) state.set(k, v.map(() => 8));
  for (const [i, g] of unfused.graphs.entries()) {
    const h = fused.graphs[i];
    expect(h.nodes.filter((n) => n.op === 'relu6' || n.op === 'relu6_bwd')).toEqual([]);
    const q6 = h.nodes.filter((n) => n.epi?.qpost?.kind === 'op' && n.epi.qpost.op === 'relu6');
    expect(q6).toHaveLength(4);
    const feeds = inputFeeds(g, rand(11 + i));
    const a = runGraph(g, feeds, state, STEP), b = runGraph(h, feeds, state, STEP);
    for (const k of Object.keys(a.outputs)) expect([g.name, k, bits(b.outputs[k])]).toEqual([g.name, k, bits(a.outputs[k])]);
    for (const [k, v] of a.updates) expect([g.name, k, bits(b.updates.get(k)!)]).toEqual([g.name, k, bits(v)]);
    const clamped = q6.filter((n) => Array.from(b.values[n.id] as Float32Array).includes(6)).length;
    expect(clamped).toBe(4);
  }
});
