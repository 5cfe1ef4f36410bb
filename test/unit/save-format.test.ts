/**
 * save=fp16|bf16|float<e,m>|fixed<wl,fl> (ir/quant/save.ts, passes/compress.ts): the packed codes and restored
 * values against a float64 reference written here from QPyTorch's rounding rules and the IEEE-754 layout (known
 * binary16/bfloat16 bit patterns included), the pass's placement, the memory planner's packed bytes, `lpc mem`, and
 * a CPU training step through the saved format.
 */
import { execFileSync } from 'node:child_process';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Builder, emptyGraph } from '../../ir/graph.js';
import { Format, parseFormat } from '../../ir/format.js';
import { getOp } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { planModuleMemory } from '../../passes/memory.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { saveFormatError } from '../../ir/quant/save.js';
import { rand, relErr } from './helpers.js';

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const f32 = (x: number) => Math.fround(x);
const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];
const fromBits = (u: number) => new Float32Array(new Uint32Array([u >>> 0]).buffer)[0];

// ---------- float64 reference ----------
/** Round half to even of a ≥ 0. */
const rne = (a: number) => { const f = Math.floor(a), d = a - f; return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1; };
/** QPyTorch float_quantize nearest: ties away from zero; below the normal range the f32 sum x + 2^emin is rounded
 *  (RNE, to 2^(emin−23)) first; saturation to ±max for exp ≤ 7; −0 → +0. */
function floatRef(x: number, e: number, m: number): number {
  if (Number.isNaN(x)) return e <= 7 ? NaN : NaN;
  const bias = 2 ** (e - 1) - 1, emin = 1 - bias, max = 2 ** (2 ** e - 1 - bias) * (2 - 2 ** -m);
  const s = x < 0 ? -1 : 1;
  let a = Math.abs(x);
  if (a === Infinity) return e <= 7 ? s * max : s * Infinity;
  if (a < 2 ** emin) a = rne(a / 2 ** (emin - 23)) * 2 ** (emin - 23);
  const ex = Math.max(Math.floor(Math.log2(a)), emin);
  const ulp = 2 ** (ex - m);
  let v = a === 0 ? 0 : Math.floor(a / ulp + 0.5) * ulp;
  if (e <= 7 && v > max) v = max;
  if (e === 8 && v >= 2 ** 128) v = Infinity;
  return v === 0 ? 0 : s * v;
}
/** The IEEE-754-layout code of a format value v (sign, biased exponent, mantissa), from its value. */
function floatCode(v: number, e: number, m: number): number {
  const n = 1 + e + m, bias = 2 ** (e - 1) - 1, emin = 1 - bias;
  const sign = v < 0 || Object.is(v, -0) ? 2 ** (n - 1) : 0, a = Math.abs(v);
  if (a === 0) return sign;
  if (a === Infinity) return sign + (2 ** e - 1) * 2 ** m;
  if (a < 2 ** emin) return sign + a / 2 ** (emin - m);
  const E = Math.floor(Math.log2(a));
  return sign + (E + bias) * 2 ** m + (a / 2 ** E - 1) * 2 ** m;
}
/** QPyTorch fixed_point_quantize nearest with clamp: k = RNE(x·2^fl) clamped to [−2^(wl−1) (or −kmax with sym), kmax]. */
function fixedRefK(x: number, wl: number, fl: number, sym = false): number {
  const kmax = 2 ** (wl - 1) - 1, kmin = sym ? -kmax : -kmax - 1;
  const y = x * 2 ** fl, k = y < 0 ? -rne(-y) : rne(y);
  return Math.min(kmax, Math.max(kmin, k));
}

function cpuOp(op: string, x: Float32Array, shape: number[], attrs: Record<string, unknown>, dtype: 'f32' | 'u32' = 'f32'): Float32Array {
  const g = emptyGraph('t');
  const b = new Builder(g);
  const id0 = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
  if (dtype === 'u32') g.nodes[id0].type = { ...g.nodes[id0].type, dtype: 'u32' };
  const id = b.add(op, [id0], attrs as never);
  const n = g.nodes[id];
  const out = new Float32Array(numel(n.type.shape));
  getOp(op).cpu([x], out, { attrs: n.attrs, inTypes: [g.nodes[id0].type], type: n.type, epi: n.epi, rng: { seed: 0, step: 0, tensorId: id } });
  return out;
}
const words = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Wide-range data: normal values at many scales, values near the format's subnormals and its max, ties, zeros. */
function data(n: number, r: () => number, fmt: Format): Float32Array {
  const top = fmt.kind === 'float' ? 2 ** (2 ** fmt.exp - 1 - (2 ** (fmt.exp - 1) - 1)) * 2 : fmt.kind === 'fixed' ? 2 ** (fmt.wl - 1 - fmt.fl) * 1.5 : 1;
  const low = fmt.kind === 'float' ? 2 ** (2 - 2 ** (fmt.exp - 1) - fmt.man) : fmt.kind === 'fixed' ? 2 ** -fmt.fl : 1;
  return Float32Array.from({ length: n }, (_, i) => {
    const s = r() < 0.5 ? -1 : 1, k = i % 5;
    if (k === 0) return s * f32(Math.exp(Math.log(low / 4) + r() * Math.log((top * 2) / (low / 4))));
    if (k === 1) return s * f32(low * Math.floor(r() * 64) / 4);     // subnormal range, exact quarter-steps (ties)
    if (k === 2) return s * f32(top * (0.4 + r() * 0.7));            // around saturation
    if (k === 3) return r() < 0.2 ? 0 : s * f32(r() * 4);
    return s * f32((r() * 2 - 1) * 10);
  });
}

const FORMATS = ['fp16', 'bf16', 'e4m3', 'e5m2', 'float<3,4>', 'float<8,3>', 'float<6,9>', 'fixed<8,4>', 'fixed<8,3,sym>', 'fixed<16,10>', 'fixed<5,1>'];

describe('format_compress / format_decompress vs the float64 reference', () => {
  test.each(FORMATS)('%s', (name) => {
    const fmt = parseFormat(name);
    const slot = (fmt.kind === 'float' ? 1 + fmt.exp + fmt.man : (fmt as { wl: number }).wl) <= 8 ? 8 : 16, per = 32 / slot;
    const r = rand(name.length * 977 + name.charCodeAt(0));
    const n = 3001;
    const x = data(n, r, fmt);
    x[0] = Infinity; x[1] = -Infinity; x[2] = NaN; x[3] = -0; x[4] = 0;
    const w = words(cpuOp('format_compress', x, [n], { fmt }));
    expect(w.length).toBe(Math.ceil(n / per));
    const out = cpuOp('format_decompress', new Float32Array(w.buffer, w.byteOffset, w.length), [w.length], { fmt, shape: [n] }, 'u32');
    for (let i = 0; i < n; i++) {
      const code = (w[Math.floor(i / per)] >>> ((i % per) * slot)) & (2 ** slot - 1);
      if (fmt.kind === 'float') {
        const v = floatRef(x[i], fmt.exp, fmt.man);
        if (Number.isNaN(v)) {
          // e ≤ 7: QPyTorch saturates NaN to ±max; e = 8 keeps a NaN
          if (fmt.exp <= 7) expect(Math.abs(out[i])).toBe(floatRef(Infinity, fmt.exp, fmt.man));
          else expect(out[i]).toBeNaN();
          continue;
        }
        expect({ i, x: x[i], out: out[i] }).toEqual({ i, x: x[i], out: v });
        expect({ i, x: x[i], code }).toEqual({ i, x: x[i], code: floatCode(v, fmt.exp, fmt.man) });
      } else if (fmt.kind === 'fixed') {
        if (Number.isNaN(x[i])) { expect(code).toBe(0); continue; }
        const k = fixedRefK(x[i], fmt.wl, fmt.fl, fmt.sym);
        expect({ i, x: x[i], out: out[i] }).toEqual({ i, x: x[i], out: k * 2 ** -fmt.fl + 0 }); // a zero is restored as +0
        expect({ i, x: x[i], code }).toEqual({ i, x: x[i], code: ((k % 2 ** fmt.wl) + 2 ** fmt.wl) % 2 ** fmt.wl });
      }
    }
  });

  test('known IEEE bit patterns: fp16 codes are binary16 below 65536, bf16 codes are torch bfloat16 bits', () => {
    const fp16 = parseFormat('fp16'), bf16 = parseFormat('bf16');
    const code = (fmt: Format, v: number) => words(cpuOp('format_compress', new Float32Array([v]), [1], { fmt }))[0] & 0xffff;
    const cases16: [number, number][] = [[1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [2 ** -24, 0x0001], [2 ** -14, 0x0400],
      [f32(0.1), 0x2e66], [f32(1 / 3), 0x3555], [0.5, 0x3800]];
    for (const [v, c] of cases16) expect([v, code(fp16, v).toString(16)]).toEqual([v, c.toString(16)]);
    // QPyTorch's float<5,10> has no Inf: the all-ones exponent holds finite values up to 131008
    expect(code(fp16, 70000)).toBe(0x7c46); // 2^16·(1 + 69.75/1024) → mantissa 70
    expect(code(fp16, 1e9)).toBe(0x7fff);
    const cases8: [number, number][] = [[1, 0x3f80], [f32(Math.PI), 0x4049], [-0.5, 0xbf00], [Infinity, 0x7f80], [2 ** -133, 0x0001]];
    for (const [v, c] of cases8) expect([v, code(bf16, v).toString(16)]).toEqual([v, c.toString(16)]);
    expect(code(bf16, NaN) & 0x7fc0).toBe(0x7fc0);
    // ties: away from zero (QPyTorch), not to even: 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7
    expect(code(bf16, 1 + 2 ** -8)).toBe(0x3f81);
    expect(fromBits(bitsOf(1)) ).toBe(1);
  });

  test('formats that cannot be saved are refused with a reason', () => {
    expect(saveFormatError(parseFormat('bfp<8>'))).toMatch(/float or fixed/);
    expect(saveFormatError(parseFormat('fixed<8,4,noclamp>'))).toMatch(/noclamp/);
    expect(saveFormatError(parseFormat('float<8,12>'))).toMatch(/at most 16 bits/);
    expect(saveFormatError(parseFormat('fixed<24,8>'))).toMatch(/at most 16 bits/);
    expect(() => compile('models/lenet5.ts', 4, 'save=bfp<8>')).toThrow(/float or fixed/);
  });
});

function compile(file: string, batch: number, spec?: string) {
  return runPasses(frontEnd(file, batch), { batch, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
}
const train = (m: ReturnType<typeof compile>) => m.graphs.find((g) => g.name === 'train')!;

describe('the compress pass with a save format', () => {
  test('LeNet-5: conv and linear inputs through format_decompress, ReLU masks, max-pool argmax; eval unchanged', () => {
    const m = compile('models/lenet5.ts', 8, 'save=bf16'), g = train(m);
    const ops = (op: string) => g.nodes.filter((n) => n.op === op);
    for (const n of ops('conv2d_bwd_weight')) expect(g.nodes[n.inputs[1]].op).toBe('format_decompress');
    const dw = ops('matmul').filter((n) => n.attrs.ta === true);
    expect(dw.length).toBe(3);
    for (const n of dw) expect(g.nodes[n.inputs[1]].op).toBe('format_decompress');
    for (const n of ops('matmul').filter((n) => n.attrs.ta !== true)) expect(g.nodes[n.inputs[1]].op).not.toMatch(/decompress/);
    for (const n of ops('relu_bwd')) expect(g.nodes[n.inputs[1]].op).toBe('mask_decompress');
    expect(ops('maxpool_bwd_argmax').length).toBe(2);
    expect(ops('format_compress').length).toBe(5);
    expect(m.graphs.find((x) => x.name === 'eval')).toEqual(compile('models/lenet5.ts', 8).graphs.find((x) => x.name === 'eval'));
  });

  test('residual BN net: every BN input and conv input saved in the format', () => {
    const g = train(compile('test/fixtures/resbn.ts', 4, 'save=fixed<8,4>'));
    for (const n of g.nodes.filter((x) => ['bn_bwd_x', 'bn_bwd_sums', 'conv2d_bwd_weight'].includes(x.op)))
      expect(g.nodes[n.inputs[1]].op).toBe('format_decompress');
  });

  test.each([['models/lenet5.ts', 16, 'save=bf16'], ['models/lenet5.ts', 16, 'save=e4m3'], ['test/fixtures/resbn.ts', 8, 'save=fp16']])('memory plan of %s batch %i %s: saved activations are the packed words', (file, batch, spec) => {
    const md = compile(file, batch, spec), g = train(md);
    const fmt = (parsePolicy(spec).save as { fmt: Format }).fmt;
    const per = (fmt.kind === 'float' ? 1 + fmt.exp + fmt.man : 8) <= 8 ? 4 : 2;
    const pd = planModuleMemory(md).graphs.find((p) => p.graph === 'train')!;
    const pf = planModuleMemory(compile(file, batch)).graphs.find((p) => p.graph === 'train')!;
    const packed = g.nodes.filter((n) => n.op === 'format_compress').reduce((s, n) => s + Math.ceil(numel(g.nodes[n.inputs[0]].type.shape) / per) * 4, 0);
    const saved = pd.buffers.filter((b) => b.class === 'saved_activations');
    expect(saved.filter((b) => g.nodes[b.node].op === 'format_compress').reduce((s, b) => s + b.bytes, 0)).toBe(packed);
    for (const b of saved) expect(g.nodes.some((n) => n.op === 'format_compress' && n.inputs[0] === b.node)).toBe(false);
    expect(pd.classes.saved_activations).toBeLessThan(pf.classes.saved_activations / (per === 4 ? 3 : 1.8));
  });

  test('lpc mem --precision save=bf16 shows the saving', () => {
    const mem = (...extra: string[]) => JSON.parse(execFileSync('node', ['bin/lpc.js', 'mem', 'models/lenet5.ts', '--batch', '64', '--json', ...extra], { encoding: 'utf8' }));
    const f = mem(), b = mem('--precision', 'save=bf16'), e = mem('--precision', 'save=e4m3');
    expect(f.saved_activations_bytes / b.saved_activations_bytes).toBeGreaterThan(3);
    expect(b.saved_activations_bytes).toBeGreaterThan(e.saved_activations_bytes);
    expect(b.live_peak_bytes).toBeLessThan(f.live_peak_bytes);
  }, 60000);

  test('a CPU training step through fp16/bf16/fixed saved activations: forward unchanged, updates close to f32', () => {
    const batch = 4, mf = compile('test/fixtures/resbn.ts', batch), r = rand(3);
    const x = Float32Array.from({ length: batch * 3 * 28 * 28 }, () => r() * 2 - 1);
    const y = Int32Array.from({ length: batch }, () => Math.floor(r() * 10));
    const state = initState(mf, 0), feeds = { x, y, lr: new Float32Array([0.05]) };
    const a = runGraph(train(mf), feeds, state, { seed: 1, step: 0 });
    for (const [spec, tol] of [['save=fp16', 5e-3], ['save=bf16', 3e-2], ['save=fixed<16,10>', 5e-3]] as const) {
      const b = runGraph(train(compile('test/fixtures/resbn.ts', batch, spec)), feeds, state, { seed: 1, step: 0 });
      expect(b.outputs.loss[0]).toBe(a.outputs.loss[0]);
      for (const [name, v] of a.updates) {
        const w0 = state.get(name)!;
        const da = Float64Array.from(v, (t, i) => t - w0[i]), db = Float64Array.from(b.updates.get(name)!, (t, i) => t - w0[i]);
        expect({ spec, name, ok: relErr(db, da) < tol }).toEqual({ spec, name, ok: true });
      }
    }
  }, 60000);
});
