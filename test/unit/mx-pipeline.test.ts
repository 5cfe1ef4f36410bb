/**
 * MX through the precision policy, the quantize/optimizer passes and fusion on the CPU interpreter: every role in MX,
 * fused and unfused graphs give identical bits; stochastic MX rounding is unbiased (microxcaling's dither_stats
 * values, 20,000 draws each, fixed seed), stays on the two neighbouring grid points and is reproducible from its key.
 */
import { readFileSync } from 'fs';
import path from 'path';
import { Module } from '../../ir/graph.js';
import { MxElem, formatToString } from '../../ir/format.js';
import { verifyModule } from '../../ir/verify.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { quantize } from '../../ir/quant/quantize.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { fuseGraph, fuseQuantizers, fusionStats } from '../../passes/fuse.js';
import { saturation } from '../../ir/quant/range.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { inputFeeds, rand } from './helpers.js';
import { bits, feedsFor, moduleOf, testGraph } from './graph-builder.js';

test.each([
  ['sgd', 'W=mx<e4m3> A=mx<e2m1,block=16> E=mx<e5m2> G=mx<int8> M=mx<e3m2> ACC=mx<int8,block=8,axis=0>'],
  ['adam', 'W=mx<e4m3> A=mx<int4> E=mx<e5m2> G=mx<e2m3> M=mx<e4m3> V=mx<e5m2,block=64> ACC=mx<int8>'],
])('lenet5 with MX in every role (%s): fused graphs verify and compute the same bits as unfused ones', (opt, spec) => {
  const policy = parsePolicy(spec);
  const optimizer = opt === 'sgd' ? { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 } : { kind: 'adam' as const, lr: 0.01, betas: [0.9, 0.999] as [number, number], eps: 1e-8, wd: 0 };
  const m = runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer, precision: policy, fuse: false });
  // every role of the spec placed an MX quantizer (E on the backward side of A's quantize nodes, then its own; a
  // packed W or M, V is rounded by the compression of its update: passes/pack-state.ts)
  const roles = new Set(m.graphs.flatMap((g) => g.nodes.filter((n) => n.op === 'quantize' || (n.op === 'format_compress' && n.attrs.role)).map((n) => String(n.attrs.role))));
  expect([...roles].sort()).toEqual(Object.keys(policy.roles).sort());
  const f = fuseQuantizers(m);
  verifyModule(f);
  const stats = fusionStats(m);
  expect(stats.fused).toBeGreaterThan(10);
  const mxNodes = (mm: Module) => mm.graphs.flatMap((g) => g.nodes.filter((n) => (n.op === 'quantize' ? n.attrs.fmt : n.epi?.q?.fmt) && formatToString((n.op === 'quantize' ? n.attrs.fmt : n.epi?.q?.fmt) as never).startsWith('mx<')));
  expect(mxNodes(m).length).toBeGreaterThan(20);
  expect(mxNodes(f).filter((n) => n.op !== 'quantize').length).toBe(stats.fused);
  const state = initState(m, 7);
  for (const [i, g] of m.graphs.entries()) {
    const feeds = inputFeeds(g, rand(11 + i));
    const ra = runGraph(g, feeds, state, { seed: 5, step: 3 }), rb = runGraph(f.graphs[i], feeds, state, { seed: 5, step: 3 });
    for (const k of Object.keys(ra.outputs)) expect([k, bits(rb.outputs[k])]).toEqual([k, bits(ra.outputs[k])]);
    for (const [k, v] of ra.updates) expect([k, bits(rb.updates.get(k)!)]).toEqual([k, bits(v)]);
    if (g.name === 'train') expect(ra.updates.size).toBeGreaterThan(0);
  }
});

interface Dither { elem_format: string; x: number; lo: number; hi: number; expected: number }
const dither = (JSON.parse(readFileSync(path.resolve(process.cwd(), 'test/fixtures/golden/mx.json'), 'utf8')) as { dither_stats: { entries: Dither[] } }).dither_stats.entries;
const ELEM: Record<string, MxElem> = { fp8_e4m3: 'e4m3', fp4_e2m1: 'e2m1', int8: 'int8' };
const EMAX: Partial<Record<MxElem, number>> = { e4m3: 8, e5m2: 15, e3m2: 4, e2m3: 2, e2m1: 2, int8: 0, int4: 0 };

test('stochastic MX rounding: unbiased on the reference\'s dither values, two outcomes, reproducible from the key', () => {
  const DRAWS = 20000;
  expect(dither.length).toBe(11);
  for (const [n, d] of dither.entries()) {
    const elem = ELEM[d.elem_format];
    // rows [2^emax, x] (blocks of 2): scale 1, as the reference's statistics
    const fmt = { kind: 'mx', elem, block: 2 } as const;
    const x = new Float32Array(DRAWS * 2);
    for (let i = 0; i < DRAWS; i++) { x[i * 2] = 2 ** EMAX[elem]!; x[i * 2 + 1] = d.x; }
    const key = { seed: 1234, step: 5, tensorId: 9 };
    const q = quantize(x, [DRAWS, 2], fmt, 'stochastic', key);
    let away = 0, outside = 0;
    for (let i = 0; i < DRAWS; i++) {
      const v = q[i * 2 + 1];
      if (v === Math.fround(d.hi)) away++;
      else if (v !== Math.fround(d.lo)) outside++;
    }
    expect([d.x, outside]).toEqual([d.x, 0]);
    const p = d.expected, z = (away / DRAWS - p) / Math.sqrt((p * (1 - p)) / DRAWS);
    expect([d.elem_format, d.x, Math.abs(z) < 4]).toEqual([d.elem_format, d.x, true]);
    if (n > 0) continue;
    // the same key gives the same bits, another step other bits
    const same = (a: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(q.buffer));
    expect([same(quantize(x, [DRAWS, 2], fmt, 'stochastic', key)), same(quantize(x, [DRAWS, 2], fmt, 'stochastic', { ...key, step: 6 }))]).toEqual([true, false]);
  }
});

test('stochastic MX rounding is unbiased across a whole block, including subnormal elements and the saturation binade', () => {
  // E[q(x)] = x for every element not saturated: mean error over 4000 draws per element within 4 standard errors
  const r = rand(17);
  const row = Float32Array.from({ length: 32 }, (_, i) => (i === 0 ? 440 : (r() - 0.5) * 2 ** (Math.floor(r() * 16) - 8)));
  const DRAWS = 4000;
  const x = new Float32Array(DRAWS * 32);
  for (let i = 0; i < DRAWS; i++) x.set(row, i * 32);
  const q = quantize(x, [DRAWS, 32], { kind: 'mx', elem: 'e4m3', block: 32 }, 'stochastic', { seed: 3, step: 1, tensorId: 2 });
  for (let j = 1; j < 32; j++) {
    let sum = 0, sq = 0;
    for (let i = 0; i < DRAWS; i++) { const e = q[i * 32 + j] - row[j]; sum += e; sq += e * e; }
    const mean = sum / DRAWS, se = Math.sqrt(Math.max(sq / DRAWS - mean * mean, 0) / DRAWS);
    expect([j, row[j], se === 0 ? mean === 0 : Math.abs(mean) < 4 * se]).toEqual([j, row[j], true]);
  }
});

test('fusion rules for MX: not through a view (blocks follow the shape), an E4M3 ReLU requantized', () => {
  const { g, add, q, input } = testGraph();
  const x = input('x', [4, 40]), y = input('y', [4, 40]);
  const fmt = { kind: 'mx', elem: 'e4m3', block: 32 } as const;
  const viewed = q(add('reshape', [add('mul', [x, y])], { shape: [160] }), fmt); // blocks of the view are not the producer's
  const qa = q(add('add', [x, y]), fmt); // fused into add
  const again = q(add('relu', [qa]), fmt); // relu of an MX value: requantized, not assumed on the grid
  g.outputs.push({ name: 'v', node: viewed }, { name: 'a', node: again });
  const { graph: f, stats } = fuseGraph(g);
  verifyModule(moduleOf(f));
  expect(stats).toEqual({ fused: 2, identities: 0, kept: 1, qpost: 0 });
  expect(f.nodes.filter((n) => n.epi?.q).map((n) => n.op)).toEqual(['add', 'relu']);
  const feeds = feedsFor(g, 3);
  const ra = runGraph(g, feeds, new Map(), { seed: 1, step: 0 }), rb = runGraph(f, feeds, new Map(), { seed: 1, step: 0 });
  for (const k of ['v', 'a']) expect([k, bits(rb.outputs[k])]).toEqual([k, bits(ra.outputs[k])]);
  // why relu is not on the grid: E4M3's 240·2^s (representable) becomes 480·2^(s−1) > 448 when the block max halves
  const z = Float32Array.from([300, 240, -1], (v) => v);
  const qz = quantize(z, [3], fmt, 'nearest'); // E = 8, s = 0: 300 → 288, 240 stays
  const r = Float32Array.from(qz, (v, i) => (i === 0 ? 0 : Math.max(v, 0))); // the maximum dropped: now 240
  expect([...quantize(r, [3], fmt, 'nearest')]).not.toEqual([...r]);
});

test('a ReLU of an MX value is on its grid for every element format but E4M3: its quantizer is dropped', () => {
  const r = rand(2024);
  // blocks of 32 along a channel axis of 40 (a partial block), magnitudes over 40 binades, a few exact zeros
  const shape = [3, 40, 2, 2], n = 3 * 40 * 4;
  for (const elem of ['e5m2', 'e3m2', 'e2m3', 'e2m1', 'int8', 'int4'] as MxElem[]) {
    const fmt = { kind: 'mx', elem, block: 32 } as const;
    for (let trial = 0; trial < 20; trial++) {
      const x = Float32Array.from({ length: n }, () => (r() < 0.05 ? 0 : (r() - 0.5) * 2 ** Math.floor(r() * 40 - 20)));
      for (const [r1, r2] of [['nearest', 'nearest'], ['stochastic', 'stochastic']] as const) {
        const y = Float32Array.from(quantize(x, shape, fmt, r1, { seed: trial, step: 1, tensorId: 2 }), (v) => (v > 0 ? v : 0));
        const what = `${elem} ${r1} trial ${trial}`;
        expect([what, bits(quantize(y, shape, fmt, r2, { seed: trial, step: 1, tensorId: 3 }))]).toEqual([what, bits(y)]);
      }
    }
    // in a graph: the relu's quantizer goes (it reads the add's rounded value)
    const { g, add, q, input } = testGraph();
    const a = input('a', [4, 40]), b = input('b', [4, 40]);
    g.outputs.push({ name: 'r', node: q(add('relu', [q(add('add', [a, b]), fmt)]), fmt) });
    const { graph: f, stats } = fuseGraph(g);
    expect([elem, stats.identities]).toEqual([elem, 1]);
    const feeds = feedsFor(g, 5);
    expect(bits(runGraph(f, feeds, new Map(), { seed: 1, step: 0 }).outputs.r)).toEqual(bits(runGraph(g, feeds, new Map(), { seed: 1, step: 0 }).outputs.r));
  }
});

test('--quant-stats saturation: |x| above max_norm·2^s of its block', () => {
  const sat = (x: number[], elem: MxElem) => { const f = saturation(Float32Array.from(x), [x.length], { kind: 'mx', elem, block: 32 }); return x.map((_, i) => f(i)); };
  expect(sat([500, 1, -449, 448], 'e4m3')).toEqual([true, false, true, false]); // E = 8, s = 0: max_norm 448
  expect(sat([1.99, -0.5, 1.984375], 'int8')).toEqual([true, false, false]); // 127/64
  expect(sat([NaN, 1e30], 'e2m1')).toEqual([false, false]); // a NaN block: never
});
