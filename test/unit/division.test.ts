/**
 * DIVISION (research/seeds.md §4): the compress/decompress ops' CPU semantics against a float64 reference written
 * here from the description (average pool, bf16 round-to-nearest-even, PyTorch's nearest upsample, per-(b,c)
 * min/scale, stochastic floor), the seeds' worked example, the ReLU mask and max-pool argmax against the ops they
 * replace, the compress pass's placement, and the memory planner's saved-activation bytes against word counts
 * computed here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { getOp } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { randomBits } from '../../ir/quant/rng.js';
import { planModuleMemory } from '../../passes/memory.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { rand, relErr } from './helpers.js';

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const DIV = parsePolicy('save=division(block=8,bits=2)');

// ---------- the float64 reference ----------
/** bf16 by rounding the value to 8 significant bits, ties to even (float64 arithmetic, not bit tricks). */
function bf16Ref(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.floor(Math.log2(Math.abs(x)));
  const ulp = 2 ** (Math.max(e, -126) - 7);
  const m = x / ulp, f = Math.floor(m), d = m - f;
  const r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  return r * ulp;
}
interface Ref { L: number[]; mn: number[]; scale: number[]; y: number[]; k: number; h: number; w: number }
/** DIVISION's compression in float64 (statistics rounded where DIVISION stores them: L and min/scale in bf16). */
function compressRef(x: Float32Array, [B, C, H, W]: number[], block: number, bits: number): Ref {
  const k = H >= block ? block : H, h = Math.floor(H / k), w = Math.floor(W / k);
  const L: number[] = [];
  for (let bc = 0; bc < B * C; bc++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    let s = 0;
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) s += x[(bc * H + i * k + a) * W + j * k + b];
    L.push(bf16Ref(Math.fround(s / (k * k))));
  }
  const src = (d: number, n: number, N: number) => Math.min(Math.floor(d * Math.fround(n / N)), n - 1);
  const mn: number[] = [], scale: number[] = [], y: number[] = [];
  for (let bc = 0; bc < B * C; bc++) {
    const R: number[] = [];
    for (let yy = 0; yy < H; yy++) for (let xx = 0; xx < W; xx++)
      R.push(x[(bc * H + yy) * W + xx] - L[(bc * h + src(yy, h, H)) * w + src(xx, w, W)]);
    const lo = Math.min(...R), hi = Math.max(...R), s = (2 ** bits - 1) / (hi - lo + 2e-6);
    mn.push(lo); scale.push(s);
    for (const r of R) y.push((r - lo) * s);
  }
  return { L, mn, scale, y, k, h, w };
}

function cpuOp(op: string, ins: { data: Float32Array | Float64Array; shape: number[]; dtype?: 'f32' | 'u32' }[], attrs: Record<string, unknown>, tensorId = 7, seed = 1, step = 0): Float32Array {
  const g = emptyGraph('t');
  const b = new Builder(g);
  const ids = ins.map((x, i) => b.add('input', [], { name: `x${i}`, kind: 'data', shape: x.shape, dtype: 'f32' }));
  if (ins.some((x) => x.dtype === 'u32')) ids.forEach((id, i) => { if (ins[i].dtype === 'u32') g.nodes[id].type = { ...g.nodes[id].type, dtype: 'u32' }; });
  const id = b.add(op, ids, attrs as never);
  const n = g.nodes[id];
  const out = new Float32Array(numel(n.type.shape));
  getOp(op).cpu(ins.map((x) => x.data instanceof Float32Array ? x.data : Float32Array.from(x.data)), out,
    { attrs: n.attrs, inTypes: ids.map((i) => g.nodes[i].type), type: n.type, epi: n.epi, rng: { seed, step, tensorId } });
  return out;
}
const words = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const asWords = (w: Float32Array, n: number) => ({ data: w, shape: [n], dtype: 'u32' as const });
const u16 = (w: Uint32Array, i: number) => (w[i >> 1] >>> ((i & 1) * 16)) & 0xffff;
const bf = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0];

/** Dyadic data (multiples of 2^-8 in [−4, 4)): the f32 sums of the pooling are exact, as in float64. */
function dyadic(n: number, r: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.floor((r() * 2 - 1) * 1024) / 256);
}

describe('division_compress / division_decompress vs the float64 reference', () => {
  test.each([
    [[2, 3, 32, 32], 8, 2], [[2, 2, 28, 28], 8, 2], [[1, 3, 7, 7], 8, 2], [[3, 2, 16, 12], 4, 4], [[2, 2, 8, 8], 8, 1], [[1, 2, 9, 20], 8, 8],
  ])('%j block %i bits %i', (shape, block, bits) => {
    const r = rand(shape.reduce((a, b) => a * 31 + b, block * 7 + bits));
    const n = numel(shape), [B, C, H, W] = shape;
    const x = dyadic(n, r);
    const ref = compressRef(x, shape, block, bits);
    const wf = cpuOp('division_compress', [{ data: x, shape }], { block, bits }, 7, 3, 5);
    const w = words(wf);
    // word count: B·C stats words, then per plane two bf16 per word and 32/bits codes per word, every plane
    // starting on a new word
    const HW = H * W, hw = ref.h * ref.w, lfcPer = Math.ceil(hw / 2), hfcPer = Math.ceil((HW * bits) / 32);
    const lfcOff = B * C, hfcOff = lfcOff + B * C * lfcPer;
    expect(w.length).toBe(hfcOff + B * C * hfcPer);
    const lfcAt = (p: number) => bf(u16(w, 2 * (lfcOff + Math.floor(p / hw) * lfcPer) + (p % hw)));
    const code = (i: number) => {
      const bc = Math.floor(i / HW), bit = (i % HW) * bits;
      return (w[hfcOff + bc * hfcPer + Math.floor(bit / 32)] >>> (bit % 32)) & (2 ** bits - 1);
    };
    for (let p = 0; p < ref.L.length; p++) expect(lfcAt(p)).toBe(ref.L[p]);
    for (let bc = 0; bc < B * C; bc++) {
      expect(bf(w[bc] >>> 16)).toBe(bf16Ref(ref.mn[bc]));
      expect(Math.abs(bf(w[bc] & 0xffff) - bf16Ref(ref.scale[bc]))).toBeLessThanOrEqual(Math.abs(bf16Ref(ref.scale[bc])) * 2 ** -8);
    }
    // codes: ⌊y + j·2^-24⌋ with j the generator's top 24 bits, where float64 and f32 cannot disagree on the floor
    let checked = 0;
    for (let i = 0; i < n; i++) {
      const q = code(i);
      const j = randomBits(3, 5, 7, i) >>> 8;
      const v = ref.y[i] + j / 2 ** 24;
      expect([Math.floor(ref.y[i]), Math.floor(ref.y[i]) + 1]).toContain(q);
      if (Math.abs(v - Math.round(v)) > 1e-4) { expect(q).toBe(Math.min(Math.floor(v), 2 ** bits - 1)); checked++; }
    }
    expect(checked).toBeGreaterThan(n * 0.9);
    // decompress: U + q / bf16(scale) + bf16(min)
    const out = cpuOp('division_decompress', [asWords(wf, w.length)], { block, bits, shape });
    const src = (d: number, m: number, M: number) => Math.min(Math.floor(d * Math.fround(m / M)), m - 1);
    let errSum = 0;
    for (let bc = 0; bc < B * C; bc++) for (let yy = 0; yy < H; yy++) for (let xx = 0; xx < W; xx++) {
      const i = (bc * H + yy) * W + xx;
      const q = code(i);
      const U = ref.L[(bc * ref.h + src(yy, ref.h, H)) * ref.w + src(xx, ref.w, W)];
      const e = U + (q / bf(w[bc] & 0xffff) + bf(w[bc] >>> 16));
      expect(Math.abs(out[i] - e)).toBeLessThanOrEqual(4e-7 * (Math.abs(e) + 4));
      errSum += out[i] - x[i];
    }
    // stochastic rounding: the mean error is small against one quantization step (range / (2^bits − 1))
    const step = Math.max(...ref.mn.map((m, bc) => (2 ** bits - 1) / ref.scale[bc]));
    expect(Math.abs(errSum / n)).toBeLessThan(step * 0.05 + 0.02 * step);
  });

  test('seeds.md §4.6: block 2 on 0…15', () => {
    const x = Float32Array.from({ length: 16 }, (_, i) => i);
    const counts = [0, 0, 0, 0];
    let w!: Uint32Array;
    const seeds = 400;
    for (let s = 0; s < seeds; s++) {
      w = words(cpuOp('division_compress', [{ data: x, shape: [1, 1, 4, 4] }], { block: 2, bits: 2 }, 1, s));
      for (const [k, i] of [[0, 0], [1, 1], [2, 4], [3, 5]]) counts[k] += (w[3] >>> (2 * i)) & 3; // positions with y = 0, .6, 2.4, 3
    }
    expect([0, 1, 2, 3].map((p) => bf(u16(w, 2 + p)))).toEqual([2.5, 4.5, 10.5, 12.5]);
    expect(bf(w[0] >>> 16)).toBe(-2.5);
    expect(bf(w[0] & 0xffff)).toBe(0.6015625); // 3 / (5 + 2e-6) = 0.5999998 stored as bf16
    // P(round up) = frac(y): y = 0 → 0, 0.6 → 0.6, 2.4 → 2 + 0.4, 3.0 (just below) → 3
    expect(counts[0]).toBe(0);
    expect(counts[1] / seeds).toBeGreaterThan(0.53); expect(counts[1] / seeds).toBeLessThan(0.67);
    expect(counts[2] / seeds - 2).toBeGreaterThan(0.33); expect(counts[2] / seeds - 2).toBeLessThan(0.47);
    expect(counts[3] / seeds).toBeGreaterThan(2.95);
    // reconstruction with the bf16 scale: q = 1 at offset −2.5 → 1/0.6015625 − 2.5 + U
    const out = cpuOp('division_decompress', [asWords(new Float32Array(w.buffer), w.length)], { block: 2, bits: 2, shape: [1, 1, 4, 4] });
    const q1 = (w[3] >>> 2) & 3;
    expect(out[1]).toBe(Math.fround(2.5 + Math.fround(Math.fround(q1 / 0.6015625) - 2.5)));
    if (q1 === 1) expect(out[1]).toBeCloseTo(1.6623377, 6);
  });

  test('28×28 with k = 8: 3×3 pooled map from the top-left 24×24, nearest rows 0–9, 10–18, 19–27', () => {
    // each pooled block gets its own constant: the reconstruction shows which block each position maps to
    const x = new Float32Array(28 * 28);
    for (let y = 0; y < 28; y++) for (let xx = 0; xx < 28; xx++) x[y * 28 + xx] = y < 24 && xx < 24 ? 16 * Math.floor(y / 8) + 2 * Math.floor(xx / 8) : 0;
    const w = words(cpuOp('division_compress', [{ data: x, shape: [1, 1, 28, 28] }], { block: 8, bits: 2 }));
    expect(w.length).toBe(1 + Math.ceil(9 / 2) + Math.ceil((784 * 2) / 32));
    expect(Array.from({ length: 9 }, (_, p) => bf(u16(w, 2 + p)))).toEqual([0, 2, 4, 16, 18, 20, 32, 34, 36]);
    const rowBlock = (y: number) => (y <= 9 ? 0 : y <= 18 ? 1 : 2);
    const U = compressRef(x, [1, 1, 28, 28], 8, 2);
    expect(U.L).toEqual([0, 2, 4, 16, 18, 20, 32, 34, 36]);
    for (const y of [0, 9, 10, 18, 19, 27]) expect(Math.min(Math.floor(y * Math.fround(3 / 28)), 2)).toBe(rowBlock(y));
  });

  test('a constant channel: every code 0, reconstruction bf16(c) + bf16 of the residual', () => {
    const c = 1.2345678;
    const x = new Float32Array(64).fill(c);
    const wf = cpuOp('division_compress', [{ data: x, shape: [1, 1, 8, 8] }], { block: 8, bits: 2 });
    const w = words(wf);
    for (let i = 2; i < w.length; i++) expect(w[i]).toBe(0);
    const out = cpuOp('division_decompress', [asWords(wf, w.length)], { block: 8, bits: 2, shape: [1, 1, 8, 8] });
    const expected = Math.fround(bf16Ref(Math.fround(c)) + bf16Ref(Math.fround(c) - bf16Ref(Math.fround(c))));
    expect(new Set(out)).toEqual(new Set([expected]));
    expect(Math.abs(expected - c)).toBeLessThan(1e-4);
  });

  test('uncompressible shapes are refused by the op and skipped by the pass', () => {
    expect(() => cpuOp('division_compress', [{ data: new Float32Array(8), shape: [2, 4, 1, 1] }], { block: 8, bits: 2 })).toThrow(/not compressible/);
    expect(() => cpuOp('division_compress', [{ data: new Float32Array(8), shape: [2, 4] }], { block: 8, bits: 2 })).toThrow(/not compressible/);
  });
});

describe('ReLU mask and max-pool argmax', () => {
  test('relu_bwd through the 1-bit mask equals relu_bwd on x (x = 0 gives 0)', () => {
    const r = rand(11), n = 1000;
    const x = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : r() * 2 - 1));
    const dy = Float32Array.from({ length: n }, () => r() * 2 - 1);
    const m = cpuOp('mask_compress', [{ data: x, shape: [10, 100] }], {});
    expect(m.length).toBe(Math.ceil(n / 32));
    const mask = cpuOp('mask_decompress', [asWords(m, m.length)], { shape: [10, 100] });
    const viaMask = cpuOp('relu_bwd', [{ data: dy, shape: [10, 100] }, { data: mask, shape: [10, 100] }], {});
    const direct = Float32Array.from(dy, (d, i) => (x[i] > 0 ? d : 0));
    expect(Array.from(viaMask)).toEqual(Array.from(direct));
  });

  test('relu6_bwd through the mask with upper = 6 equals relu6_bwd on y = relu6(x) (y = 0 and y = 6 give 0)', () => {
    const r = rand(12), n = 1000, shape = [10, 100];
    // x: exact 0 and 6, values inside, below 0 and above 6 (clamped to 6 by relu6)
    const x = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : i % 11 === 0 ? 6 : r() * 10 - 2));
    const y = Float32Array.from(x, (v) => Math.min(Math.max(v, 0), 6));
    const dy = Float32Array.from({ length: n }, () => r() * 2 - 1);
    const m = cpuOp('mask_compress', [{ data: y, shape }], { upper: 6 });
    expect(m.length).toBe(Math.ceil(n / 32));
    const mask = cpuOp('mask_decompress', [asWords(m, m.length)], { shape });
    const viaMask = cpuOp('relu6_bwd', [{ data: dy, shape }, { data: mask, shape }], {});
    const direct = Float32Array.from(dy, (d, i) => (x[i] > 0 && x[i] < 6 ? d : 0));
    expect(Array.from(viaMask)).toEqual(Array.from(direct));
    expect(direct.filter((d) => d === 0).length).toBeGreaterThan(n / 10); // both sides of the window are exercised
    // without upper the mask is ReLU's: y = 6 passes
    const relu = cpuOp('mask_decompress', [asWords(cpuOp('mask_compress', [{ data: y, shape }], {}), m.length)], { shape });
    expect(Array.from(relu)).toEqual(Array.from(y, (v) => (v > 0 ? 1 : 0)));
  });

  test.each([[2, 2, [3, 2, 9, 8], 0], [3, 2, [2, 3, 9, 11], 0], [3, 1, [1, 2, 6, 7], 0],
    [3, 2, [2, 3, 9, 11], 1], [3, 2, [2, 2, 8, 8], 1], [2, 2, [1, 2, 7, 7], 1], [5, 1, [1, 2, 6, 7], 2]])('maxpool k=%i stride=%i %j pad %i: argmax route equals maxpool_bwd (ties: first max)', (k, stride, shape, pad) => {
    const r = rand(k * 10 + stride + 100 * pad);
    // many ties; all negative when padded, so a padding that competed as 0 would win
    const x = Float32Array.from({ length: numel(shape) }, () => Math.floor(r() * 4) - (pad ? 5 : 0));
    const OH = Math.floor((shape[2] + 2 * pad - k) / stride) + 1, OW = Math.floor((shape[3] + 2 * pad - k) / stride) + 1;
    const oshape = [shape[0], shape[1], OH, OW];
    const dy = Float32Array.from({ length: numel(oshape) }, () => r() * 2 - 1);
    const p = pad ? { pad } : {};
    const idx = cpuOp('argmax_compress', [{ data: x, shape }], { k, stride, ...p });
    expect(idx.length).toBe(Math.ceil(numel(oshape) / 4));
    const a = cpuOp('maxpool_bwd_argmax', [{ data: dy, shape: oshape }, asWords(idx, idx.length)], { k, stride, in_shape: shape, ...p });
    const b = cpuOp('maxpool_bwd', [{ data: dy, shape: oshape }, { data: x, shape }], { k, stride, ...p });
    expect(Array.from(a)).toEqual(Array.from(b));
  });
});

// ---------- the pass and the planner ----------
function compile(file: string, batch: number, spec?: string) {
  return runPasses(frontEnd(file, batch), { batch, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {}, verifyEach: true });
}
const train = (m: ReturnType<typeof compile>): Graph => m.graphs.find((g) => g.name === 'train')!;

/** DIVISION's word count for a saved [B,C,H,W] value, computed here from §4.1. */
function divisionWords([B, C, H, W]: number[], block = 8, bits = 2): number {
  const k = H >= block ? block : H;
  // per plane: a stats word, the bf16 low-frequency values two per word, the codes 32/bits per word
  return B * C * (1 + Math.ceil((Math.floor(H / k) * Math.floor(W / k)) / 2) + Math.ceil((H * W * bits) / 32));
}

describe('compress pass', () => {
  test('resbn fixture: which backward reads go through which packed form', () => {
    const g = train(compile('test/fixtures/resbn.ts', 4, 'save=division(block=8,bits=2)'));
    const ops = (name: string) => g.nodes.filter((n) => n.op === name);
    // every conv's x, every BN's x (shared when the same value), every ReLU's x, the max-pool's x
    for (const n of ops('conv2d_bwd_weight')) expect(g.nodes[n.inputs[1]].op).toBe('division_decompress');
    for (const n of [...ops('bn_bwd_x'), ...ops('bn_bwd_sums')]) expect(g.nodes[n.inputs[1]].op).toBe('division_decompress');
    for (const n of ops('relu_bwd')) expect(g.nodes[n.inputs[1]].op).toBe('mask_decompress');
    expect(ops('maxpool_bwd')).toEqual([]);
    expect(ops('maxpool_bwd_argmax').length).toBe(1);
    // the linear layer's input stays f32
    for (const n of ops('matmul')) expect(g.nodes[n.inputs[1]].op).not.toMatch(/decompress/);
    // words as computed here
    for (const n of ops('division_compress')) expect(n.type.shape).toEqual([divisionWords(g.nodes[n.inputs[0]].type.shape)]);
  });

  test('MobileNetV2: every ReLU6 is saved as a 1-bit mask (0 < y < 6); no f32 ReLU6 output stays saved', () => {
    const m = runPasses(frontEnd('models/mobilenetv2.ts', 2, { input: [3, 32, 32] }), { batch: 2, optimizer: sgd, precision: DIV, log: () => {} });
    const g = train(m);
    // torchvision's MobileNetV2: stem, 16 expansion layers, 17 depthwise convs and the last conv end in ReLU6 (at
    // 32×32 every map is at least 2×2, so each also feeds a DIVISION-compressed conv input; on 1-row maps the f32
    // value stays saved for the conv and a mask would only add bytes)
    const masks = g.nodes.filter((n) => n.op === 'mask_compress');
    expect(masks.filter((n) => n.attrs.upper === 6)).toHaveLength(1 + 16 + 17 + 1);
    const plan = planModuleMemory(m).graphs.find((p) => p.graph === 'train')!;
    const saved = plan.buffers.filter((b) => b.class === 'saved_activations' && b.scratch === undefined).map((b) => g.nodes[b.node]);
    for (const n of saved) expect([n.op, n.epi?.post ? 'post' : '']).not.toEqual(['bn_apply', 'post']);
    for (const n of saved) expect(n.op).not.toBe('relu6');
    // a relu6_bwd left as a node reads a decompressed mask (folded ones read it as a post-op operand: the plan above)
    for (const n of g.nodes) if (n.op === 'relu6_bwd') expect(g.nodes[n.inputs[1]].op).toBe('mask_decompress');
  });

  test('without save=division nothing changes; the eval graph never changes', () => {
    const a = compile('models/lenet5.ts', 8), b = compile('models/lenet5.ts', 8, 'save=division(block=8,bits=2)');
    expect(train(a).nodes.some((n) => /compress/.test(n.op))).toBe(false);
    expect(b.graphs.find((g) => g.name === 'eval')).toEqual(a.graphs.find((g) => g.name === 'eval'));
  });

  test('CPU training step through compressed activations: the error shrinks to f32 as the residual gets bits', () => {
    const batch = 4;
    const mf = compile('test/fixtures/resbn.ts', batch);
    const r = rand(5);
    const x = Float32Array.from({ length: batch * 3 * 28 * 28 }, () => r() * 2 - 1);
    const y = Int32Array.from({ length: batch }, () => Math.floor(r() * 10));
    const state = initState(mf, 0);
    const feeds = { x, y, lr: new Float32Array([0.05]) };
    const a = runGraph(train(mf), feeds, state, { seed: 1, step: 0 });
    const worst: number[] = [];
    for (const bits of [2, 8]) {
      const b = runGraph(train(compile('test/fixtures/resbn.ts', batch, `save=division(block=8,bits=${bits})`)), feeds, state, { seed: 1, step: 0 });
      expect(b.outputs.loss[0]).toBe(a.outputs.loss[0]); // the forward is untouched
      let e = 0;
      for (const [name, v] of a.updates) {
        const w0 = state.get(name)!;
        const da = Float64Array.from(v, (t, i) => t - w0[i]), db = Float64Array.from(b.updates.get(name)!, (t, i) => t - w0[i]);
        expect(db.every(Number.isFinite)).toBe(true);
        e = Math.max(e, relErr(db, da));
      }
      worst.push(e);
    }
    // 2 bits on random data at initialisation: a noisy but finite gradient; 8 bits: within a few percent
    expect(worst[1]).toBeLessThan(0.1);
    expect(worst[1]).toBeLessThan(worst[0] / 5);
  }, 60000);
});

describe('memory plan: saved activations are the packed words', () => {
  test.each([['models/lenet5.ts', 16], ['test/fixtures/resbn.ts', 8]])('%s batch %i', (file, batch) => {
    const mf = compile(file, batch), md = compile(file, batch, 'save=division(block=8,bits=2)');
    const pf = planModuleMemory(mf).graphs.find((p) => p.graph === 'train')!;
    const pd = planModuleMemory(md).graphs.find((p) => p.graph === 'train')!;
    const g = train(md);
    // independent count: packed words of every compress node + the f32 values still read by backward
    const packed = g.nodes.filter((n) => /_compress$/.test(n.op)).reduce((s, n) => {
      const xs = g.nodes[n.inputs[0]].type.shape;
      const w = n.op === 'division_compress' ? divisionWords(xs) : n.op === 'mask_compress' ? Math.ceil(numel(xs) / 32)
        : Math.ceil(numel(getOp('maxpool').infer([g.nodes[n.inputs[0]].type], n.attrs).shape) / 4);
      return s + w * 4;
    }, 0);
    const savedBufs = pd.buffers.filter((b) => b.class === 'saved_activations');
    const packedInPlan = savedBufs.filter((b) => /_compress$/.test(g.nodes[b.node].op)).reduce((s, b) => s + b.bytes, 0);
    expect(packedInPlan).toBe(packed);
    // no f32 original of a compressed value is saved any more
    for (const b of savedBufs) expect(g.nodes.some((n) => /_compress$/.test(n.op) && n.inputs[0] === b.node)).toBe(false);
    // everything saved is live at once at the end of the forward
    expect(pd.classes.saved_activations).toBe(savedBufs.reduce((s, b) => s + b.bytes, 0));
    // (LeNet-5's linear inputs stay f32, as in DIVISION, and dominate what it saves: 6.6× at batch 16)
    expect(pf.classes.saved_activations / pd.classes.saved_activations).toBeGreaterThan(file.includes('lenet') ? 6 : 5);
  });

  // models/resnet18.ts comes from another line of work; the check runs once it is there
  (existsSync('models/resnet18.ts') ? test : test.skip)('lpc mem models/resnet18.ts --batch 128: saved activations ≥ 8× smaller with DIVISION', () => {
    const mem = (...extra: string[]) => JSON.parse(execFileSync('node', ['bin/lpc.js', 'mem', 'models/resnet18.ts', '--batch', '128', '--json', ...extra], { encoding: 'utf8' }));
    const f = mem(), d = mem('--precision', 'save=division(block=8,bits=2)');
    expect(f.saved_activations_bytes / d.saved_activations_bytes).toBeGreaterThanOrEqual(8);
    expect(d.live_peak_bytes).toBeLessThan(f.live_peak_bytes);
  }, 60000);
});
