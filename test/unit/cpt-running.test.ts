/**
 * CPT's eval-mode activation quantizer (research/seeds.md §2.2 QuantMeasure): running [zero_point, range] buffers per
 * conv input, updated in training as r ← 0.9·r + 0.1·batch, used by evaluation. The CPU semantics against an
 * independent reference written here (CPT's calculate_qparams / uniform_quantize in plain f32 steps), the placement
 * in the train and eval graphs, the seeds.md §2.4 test idea (one step from zero buffers: running_range = 0.1·range₁),
 * width 0, SWA, checkpoints and the IR text.
 */
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { withSwa } from '../../passes/swa.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Graph, Module } from '../../ir/graph.js';
import { Format, parseFormat } from '../../ir/format.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { quantize } from '../../ir/quant/quantize.js';
import { MinmaxFormat, minmaxQparams, minmaxRunningUpdate, quantizeMinmaxWith } from '../../ir/quant/minmax.js';
import { randomBitsArray } from '../../ir/quant/rng.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState, stateDecls } from '../../runtime/train/init.js';
import { tensorNames } from '../../runtime/checkpoint.js';
import { rand as seededRandom } from './helpers.js';

const f = Math.fround;
const bitsOf = (a: ArrayLike<number>) => [...new Uint32Array(Float32Array.from(a).buffer)];

// ---- the reference: CPT's modules/quantize.py, each torch op one f32 operation ----
function refQparams(x: ArrayLike<number>): [number, number] {
  let mn = Infinity, mx = -Infinity;
  for (let i = 0; i < x.length; i++) { mn = Math.min(mn, x[i]); mx = Math.max(mx, x[i]); }
  return [mn, f(mx - mn)];
}
/** numpy/torch round half to even */
function roundHalfEven(y: number): number {
  const fl = Math.floor(y), d = y - fl;
  if (d > 0.5) return fl + 1;
  if (d < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}
function refUniformQuantize(x: ArrayLike<number>, bits: number, zp: number, range: number, noise?: (i: number) => number): number[] {
  const qmax = 2 ** bits - 1;
  const scale = Math.max(f(range / qmax), f(1e-8));
  return Array.from(x, (v, i) => {
    let y = f(f(v - zp) / scale);
    if (noise) y = f(y + noise(i));
    y = roundHalfEven(Math.min(Math.max(y, 0), qmax));
    return f(f(y * scale) + zp);
  });
}

const mm = (text: string) => parseFormat(text) as MinmaxFormat;

describe('CPU semantics vs the reference', () => {
  const r = seededRandom(2024);
  const data = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());

  test('minmax_qparams = [min, max − min] of the whole tensor, signed zeros and one-sided data included', () => {
    for (const x of [data(1000, -3, 5), data(7, 0.5, 2), data(33, -9, -1), Float32Array.of(-0, 0, 0), Float32Array.of(4.25)])
      expect(bitsOf(minmaxQparams(x))).toEqual(bitsOf(refQparams(x)));
  });

  test('quantize with given qparams: nearest and stochastic, inside and outside the range, range 0, width 0', () => {
    const x = data(257, -4, 4);
    for (const bits of [2, 3, 8]) {
      for (const [zp, range] of [[-1.5, 2.75], [f(-4.1), f(8.3)], [0.3, 0], [0, 0]]) {
        const got = quantizeMinmaxWith(x, [zp, range], mm(`minmax<${bits},tensor>`), false);
        expect(bitsOf(got)).toEqual(bitsOf(refUniformQuantize(x, bits, f(zp), f(range))));
      }
      const rng = { seed: 77, step: 5, tensorId: 12 };
      const u = randomBitsArray(77, 5, 12, x.length);
      const got = quantizeMinmaxWith(x, [-2, 3], mm(`minmax<${bits},tensor>`), true, rng);
      // torch uniform_(−0.5, 0.5) stands for the top 24 random bits as U(−½, ½)
      expect(bitsOf(got)).toEqual(bitsOf(refUniformQuantize(x, bits, -2, 3, (i) => (u[i] >>> 8) / 2 ** 24 - 0.5)));
    }
    expect(bitsOf(quantizeMinmaxWith(x, [-2, 3], mm('minmax<0,tensor>'), false))).toEqual(bitsOf(x));
    // a scheduled width comes from the step
    const sched = quantizeMinmaxWith(x, [-2, 3], mm('minmax<8,tensor,fwd>'), false, { seed: 0, step: 0, tensorId: 0, bits: { fwd: 3, bwd: 8 } });
    expect(bitsOf(sched)).toEqual(bitsOf(refUniformQuantize(x, 3, -2, 3)));
    expect(() => quantizeMinmaxWith(x, [0, 1], mm('minmax<4,channel>'), false)).toThrow('per-tensor formats only');
  });

  test('with the tensor\'s own qparams it is the per-tensor minmax quantizer, bit for bit', () => {
    for (const bits of [2, 4, 8]) {
      const x = data(500, -1, 3);
      const fmt = mm(`minmax<${bits},tensor>`);
      expect(bitsOf(quantizeMinmaxWith(x, minmaxQparams(x), fmt, false))).toEqual(bitsOf(quantize(x, [500], fmt, 'nearest')));
      const rng = { seed: 3, step: 9, tensorId: 4 };
      expect(bitsOf(quantizeMinmaxWith(x, minmaxQparams(x), fmt, true, rng))).toEqual(bitsOf(quantize(x, [500], fmt, 'stochastic', rng)));
    }
  });

  test('running update: running.mul_(0.9).add_(batch·(1 − 0.9)) in f32', () => {
    const run = data(2, -1, 1), batch = data(2, -3, 3), out = new Float32Array(2);
    minmaxRunningUpdate(run, batch, 0.1, out);
    expect(bitsOf(out)).toEqual(bitsOf([0, 1].map((i) => f(f(run[i] * f(0.9)) + f(batch[i] * f(1 - 0.9))))));
  });
});

// ---- in the compiled graphs ----
const SGD = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const CPT = 'W=minmax<8,channel> A=minmax<8,tensor> E=minmax<8,tensor>:stochastic ; schedule fwd=cyclic(3,8,periods=4) bwd=const(8)';
const compile = (spec: string, fuse = true): Module =>
  runPasses(frontEnd('models/lenet5.ts', 4), { batch: 4, optimizer: SGD, precision: parsePolicy(spec), fuse, verifyEach: true });
const graph = (m: Module, name: string): Graph => m.graphs.find((g) => g.name === name)!;
const stateName = (g: Graph, id: number) => (g.nodes[id].op === 'state' ? g.nodes[id].attrs.name : g.nodes[id].op);

describe('placement', () => {
  const m = compile(CPT);
  test('a [2] zero-initialised buffer per conv, updated by the train graph from the batch qparams of the conv input', () => {
    const decls = stateDecls(m).filter((d) => d.name.endsWith('.act_range'));
    expect(decls.map((d) => [d.name, d.kind, d.shape, d.init])).toEqual([
      ['conv0.act_range', 'buffer', [2], 'zeros'], ['conv1.act_range', 'buffer', [2], 'zeros']]);
    const train = graph(m, 'train');
    const upd = train.updates.filter((u) => u.name.endsWith('.act_range'));
    expect(upd.map((u) => u.name)).toEqual(['conv0.act_range', 'conv1.act_range']);
    for (const u of upd) {
      const n = train.nodes[u.node];
      expect([n.op, n.attrs.momentum, n.attrs.fmt]).toEqual(['minmax_running_update', 0.1, { kind: 'minmax', bits: 8, per: 'tensor', sched: 'fwd' }]);
      expect([stateName(train, n.inputs[0]), train.nodes[n.inputs[1]].op]).toEqual([u.name, 'minmax_qparams']);
    }
    // the quantities measured are the conv inputs: conv0's is the image
    expect(train.nodes[train.nodes[train.nodes[upd[0].node].inputs[1]].inputs[0]].attrs.name).toBe('x');
  });
  test('the eval graph quantizes each conv input with its buffer, and updates nothing', () => {
    const ev = graph(m, 'eval');
    const convs = ev.nodes.filter((n) => n.op === 'conv2d');
    expect(convs.map((c) => {
      const a = ev.nodes[c.inputs[0]];
      return [a.op, stateName(ev, a.inputs[1]), (a.attrs.fmt as Format), a.attrs.rounding];
    })).toEqual(['conv0', 'conv1'].map((l) => ['minmax_quantize', `${l}.act_range`, { kind: 'minmax', bits: 8, per: 'tensor', sched: 'fwd' }, 'nearest']));
    expect(ev.updates).toEqual([]);
    expect(ev.nodes.some((n) => n.op === 'minmax_qparams')).toBe(false);
  });
  test('A not per tensor, or not minmax: no buffers (batch statistics, as before)', () => {
    for (const spec of ['W=minmax<8,channel> A=bfp<8>', 'W=minmax<8,channel>'])
      expect(stateDecls(compile(spec)).some((d) => d.name.endsWith('.act_range'))).toBe(false);
  });
  test('IR text: print ∘ parse is the identity', () => {
    const text = printModule(m);
    expect(printModule(parseModule(text, 'test.lpir'))).toBe(text);
  });
});

describe('seeds.md §2.4: after one training step from zero buffers, running_range = 0.1·range₁', () => {
  const m = compile(CPT);
  const train = graph(m, 'train');
  const r = seededRandom(5);
  const x = Float32Array.from({ length: 4 * 784 }, () => r() * 2 - 0.4);
  const feeds = { x, y: Int32Array.of(1, 2, 3, 4), lr: Float32Array.of(0.05) };

  test('both convs, scheduled width 3 (step 0 of cyclic(3, 8))', () => {
    const state = initState(m, 1);
    expect([...state.get('conv0.act_range')!, ...state.get('conv1.act_range')!]).toEqual([0, 0, 0, 0]);
    const res = runGraph(train, feeds, state, { seed: 1, step: 0, bits: { fwd: 3, bwd: 8 } });
    for (const u of train.updates.filter((k) => k.name.endsWith('.act_range'))) {
      const input = res.values[train.nodes[train.nodes[u.node].inputs[1]].inputs[0]];
      const [zp1, range1] = refQparams(input);
      expect(range1).toBeGreaterThan(0);
      expect(bitsOf(res.updates.get(u.name)!)).toEqual(bitsOf([f(zp1 * f(0.1)), f(range1 * f(0.1))]));
    }
    // conv0 measures the image itself
    const [zp, range] = refQparams(x);
    expect(bitsOf(res.updates.get('conv0.act_range')!)).toEqual(bitsOf([f(zp * f(0.1)), f(range * f(0.1))]));
  });

  test('a second step: r₂ = 0.9·r₁ + 0.1·b₂ (the image batch is fixed, so b₂ = b₁ for conv0)', () => {
    const state = initState(m, 1);
    const r1 = runGraph(train, feeds, state, { seed: 1, step: 0, bits: { fwd: 3, bwd: 8 } }).updates.get('conv0.act_range')!;
    state.set('conv0.act_range', Float32Array.from(r1));
    const r2 = runGraph(train, feeds, state, { seed: 1, step: 1, bits: { fwd: 3, bwd: 8 } }).updates.get('conv0.act_range')!;
    const b = refQparams(x);
    expect(bitsOf(r2)).toEqual(bitsOf([0, 1].map((i) => f(f(r1[i] * f(0.9)) + f(b[i] * f(0.1))))));
  });

  test('width 0 (full precision, CPT skips the quantizer): the buffers stay as they are', () => {
    const state = initState(m, 1);
    state.set('conv0.act_range', Float32Array.of(0.25, 1.5));
    const res = runGraph(train, feeds, state, { seed: 1, step: 0, bits: { fwd: 0, bwd: 8 } });
    expect([...res.updates.get('conv0.act_range')!]).toEqual([0.25, 1.5]);
    expect([...res.updates.get('conv1.act_range')!]).toEqual([0, 0]);
  });
});

test('evaluation quantizes with the running buffers, not the batch', () => {
  const m = compile(CPT);
  const ev = graph(m, 'eval');
  const r = seededRandom(8);
  const x = Float32Array.from({ length: 4 * 784 }, () => r() * 3 - 1);
  const state = initState(m, 2);
  const running = Float32Array.of(-0.5, 1.25); // narrower than the batch: values clamp
  state.set('conv0.act_range', running);
  const res = runGraph(ev, { x, y: Int32Array.of(0, 1, 2, 3) }, state, { bits: { fwd: 4, bwd: 8 } });
  const conv0 = ev.nodes.find((n) => n.op === 'conv2d')!;
  const xq = res.values[conv0.inputs[0]];
  expect(bitsOf(xq)).toEqual(bitsOf(refUniformQuantize(x, 4, -0.5, 1.25)));
  expect(Math.min(...xq)).toBe(-0.5);
  expect(Math.max(...xq)).toBe(0.75);
});

test('SWA: the averaged model is evaluated without quantizers and re-estimates only BN buffers', () => {
  const m = withSwa(compile(CPT));
  const ev = graph(m, 'swa_eval');
  expect(ev.nodes.some((n) => n.op === 'minmax_quantize' || n.op === 'quantize')).toBe(false);
  expect(ev.nodes.some((n) => n.op === 'state' && String(n.attrs.name).endsWith('act_range'))).toBe(false);
  expect(m.graphs.some((g) => g.name === 'swa_bn')).toBe(false); // lenet5 has no BN
});

test('checkpoints carry the buffers under their state_dict names', () => {
  const names = tensorNames(stateDecls(compile(CPT))).map((t) => [t.name, t.shape]);
  expect(names).toEqual(expect.arrayContaining([['conv0.act_range', [2]], ['conv1.act_range', [2]]]));
});
