/**
 * CPT over MX and torchao's scale modes, on the CPU spec (ir/quant/mx.ts): MXINT at every width 2…8 against a float64
 * model of MX.md's rules, a scheduled mx<intB,fwd> equal to mx<intB> at the step's width, the four scale modes
 * against the closed forms of MX.md §6 (computed independently in float64), canonical text, placement of the
 * scheduled roles, and the bad inputs (an MX float under a schedule, a width out of range, an unknown scale mode).
 */
import { Format, MX_ELEMS, MxElem, MxScale, formatToString, mxInt, parseFormat } from '../../ir/format.js';
import { parsePolicy, parsePolicyDiagnostics, printPolicy } from '../../ir/precision/index.js';
import { quantize } from '../../ir/quant/quantize.js';
import { mxElemWord, mxScaleByteMode, mxScaleMode } from '../../ir/quant/mx.js';
import { randomBitsArray } from '../../ir/quant/rng.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState } from '../../runtime/train/init.js';
import { Builder, emptyGraph } from '../../ir/graph.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { saturation } from '../../ir/quant/range.js';
import { gridAfter } from '../../ir/quant/grid.js';
import { spawnSync } from 'node:child_process';
import { rand } from './helpers.js';

const errs = (text: string) => parsePolicyDiagnostics(text).errors.map((e) => `${e.line}:${e.col}: ${e.message}`);
const fmtMsg = (s: string) => { try { return formatToString(parseFormat(s)); } catch (e) { return (e as Error).message; } };
const bitsOf = (x: Float32Array) => Array.from(new Uint32Array(x.buffer));
const f32 = Math.fround;

/** Exact floor(log2 m) of a positive number (float64 powers of two are exact). */
function floorLog2(m: number): number {
  let E = Math.floor(Math.log2(m));
  while (2 ** E > m) E--;
  while (2 ** (E + 1) <= m) E++;
  return E;
}

/** MX.md §2–§3 for MXINT-B in float64, one block along the last axis of `x` (finite values, block maxima ≥ 2^−100):
 *  s = floor(log2 max) (emax 0), t = |v|/2^(s−f), nearest = ties away, stochastic = floor(t + j/2^24), j = r >>> 8. */
function refMxInt(x: Float32Array, block: number, B: number, r?: Uint32Array): Float32Array {
  const f = B - 2, maxK = 2 ** (B - 1) - 1, out = new Float32Array(x.length);
  for (let b0 = 0; b0 < x.length; b0 += block) {
    const idx = Array.from({ length: Math.min(block, x.length - b0) }, (_, k) => b0 + k);
    const m = Math.max(...idx.map((i) => Math.abs(x[i])));
    if (m === 0) continue; // +0 everywhere
    const q = 2 ** (floorLog2(m) - f);
    for (const i of idx) {
      const t = Math.abs(x[i]) / q;
      const k = Math.min(maxK, r ? Math.floor(t + (r[i] >>> 8) / 2 ** 24) : Math.floor(t + 0.5));
      out[i] = x[i] === 0 ? 0 : x[i] < 0 ? -(k * q) : k * q; // a negative rounding to 0 gives −0
    }
  }
  return out;
}

const data = (n: number, seed: number) => {
  const r = rand(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 2 ** Math.floor(r() * 30 - 15));
};

test('MXINT at every width 2…8: the library\'s int8/int4/int2 rule, and every element against the float64 model', () => {
  expect([mxInt(8), mxInt(4)]).toEqual([MX_ELEMS.int8, MX_ELEMS.int4]);
  expect(mxInt(2)).toEqual({ ebits: 0, f: 0, emax: 0, maxK: 1, bits: 2 }); // MX.md §3: int2 is ±1, 0
  const x = data(4 * 96, 1), key = { seed: 5, step: 3, tensorId: 9 };
  const r = randomBitsArray(key.seed, key.step, key.tensorId, x.length);
  for (let B = 2; B <= 8; B++) {
    const fmt = parseFormat(`mx<int${B}>`);
    expect([B, bitsOf(quantize(x, [4, 96], fmt, 'nearest'))]).toEqual([B, bitsOf(refMxInt(x, 32, B))]);
    expect([B, bitsOf(quantize(x, [4, 96], fmt, 'stochastic', key))]).toEqual([B, bitsOf(refMxInt(x, 32, B, r))]);
  }
});

test('a scheduled mx<intB,fwd|bwd> is mx<intb> at the step\'s width b (capped at B), nearest and stochastic', () => {
  const x = data(3 * 70, 2), shape = [3, 70];
  for (const rounding of ['nearest', 'stochastic'] as const)
    for (let b = 2; b <= 8; b++) {
      const key = { seed: 1, step: b, tensorId: 4, bits: { fwd: b, bwd: 10 - b } };
      const want = bitsOf(quantize(x, shape, parseFormat(`mx<int${b}>`), rounding, key));
      expect([rounding, b, bitsOf(quantize(x, shape, parseFormat('mx<int8,fwd>'), rounding, key))]).toEqual([rounding, b, want]);
      const back = bitsOf(quantize(x, shape, parseFormat(`mx<int${10 - b}>`), rounding, key));
      expect([rounding, b, bitsOf(quantize(x, shape, parseFormat('mx<int8,bwd>'), rounding, key))]).toEqual([rounding, b, back]);
    }
  // the written width is the most a schedule gives (WGSL clamps the same way); no schedule running: the written width
  const key = { seed: 1, step: 0, tensorId: 4 };
  expect(bitsOf(quantize(x, shape, parseFormat('mx<int4,fwd>'), 'nearest', { ...key, bits: { fwd: 8, bwd: 8 } })))
    .toEqual(bitsOf(quantize(x, shape, parseFormat('mx<int4>'), 'nearest', key)));
  expect(bitsOf(quantize(x, shape, parseFormat('mx<int6,fwd>'), 'nearest', key))).toEqual(bitsOf(quantize(x, shape, parseFormat('mx<int6>'), 'nearest', key)));
  // --quant-stats' saturation counts at the step's width too (int2 saturates far more than int8)
  const sat = (f: string, bits?: { fwd: number; bwd: number }) => { const s = saturation(x, shape, parseFormat(f), undefined, bits); return x.filter((_, i) => s(i)).length; };
  expect(sat('mx<int8,fwd>', { fwd: 2, bwd: 8 })).toBe(sat('mx<int2>'));
  expect(sat('mx<int2>')).toBeGreaterThan(sat('mx<int8>'));
});

/** MX.md §6's closed forms in float64: the E8M0 byte of a block max `m` (a positive finite f32 value). */
function refScaleByte(m: number, elem: MxElem, mode: MxScale): number {
  const { emax, f, maxK } = MX_ELEMS[elem];
  const E0 = floorLog2(m);
  let s: number;
  if (mode === 'rceil') { // the smallest power of two 2^s with m·(1/max_pos) ≤ 2^s
    const maxPos = maxK * 2 ** (emax - f);
    s = E0 - emax - 2;
    while (maxPos * 2 ** s < m) s++;
  } else {
    let E = E0;
    if (mode === 'ceil') E = 2 ** E0 === m ? E0 : E0 + 1;
    if (mode === 'even') E = floorLog2(Math.floor(m / 2 ** (E0 - f) + 0.5) * 2 ** (E0 - f)); // mantissa to f bits, half up
    s = E - emax;
  }
  return s > 127 ? 255 : Math.max(s, -127) + 127;
}

test('scale modes floor, ceil, even, rceil: every element format against MX.md §6\'s closed forms', () => {
  const r = rand(3);
  const maxima: number[] = [0x7f7fffff, 0x00000001, 0x00400000, 0x007fffff];
  for (let ef = 1; ef < 255; ef += 3) maxima.push(ef << 23, (ef << 23) | 0x7fffff, (ef << 23) | Math.floor(r() * 0x800000));
  const elems = Object.keys(MX_ELEMS) as MxElem[];
  // the thresholds of each mode at a few binades: max_norm's significand, the half-up tie at f bits, and neighbours
  for (const ef of [1, 100, 127, 200, 254])
    for (const e of elems) {
      const { f, maxK } = MX_ELEMS[e];
      for (const sig of [maxK * 2 ** (23 - f), 2 ** 24 - 2 ** (22 - f)]) for (const d of [-1, 0, 1]) maxima.push((ef << 23) | ((sig + d) & 0x7fffff));
    }
  for (let i = 0; i < 300; i++) maxima.push(Math.floor(r() * 0x7f800000));
  const asF32 = (b: number) => new Float32Array(Uint32Array.of(b).buffer)[0];
  for (const e of elems)
    for (const mode of ['floor', 'ceil', 'even', 'rceil'] as MxScale[]) {
      const bad = maxima.filter((b) => mxScaleByteMode(b, mxElemWord(e), mxScaleMode(mode)) !== refScaleByte(asF32(b), e, mode));
      expect([e, mode, bad.slice(0, 4).map((b) => b.toString(16))]).toEqual([e, mode, []]);
    }
  // rceil: the block max never saturates; ceil and even are floor or one binade up
  for (const b of maxima) {
    const m = asF32(b), s = refScaleByte(m, 'e4m3', 'rceil') - 127;
    if (s > -127 && s < 127) expect(m / 2 ** s).toBeLessThanOrEqual(448);
  }
});

test('scale modes on a tensor: quantize uses the mode\'s scale bytes (an example of each), zero and NaN blocks as floor', () => {
  // e4m3, one block [300, 7, −0.2]: floor s = 0 (300 → 288), ceil s = 1 (150 → 144 → 288), rceil s = 0 (300 ≤ 448);
  // int8: max 1.99 → floor s = 0 (1.99 → 127/64 saturated), rceil s = 1 (0.995 → 64/64 → 2)
  const q = (spec: string, xs: number[]) => Array.from(quantize(Float32Array.from(xs), [xs.length], parseFormat(spec), 'nearest'));
  expect(q('mx<e4m3>', [300, 7, -0.2])).toEqual([288, 7, f32(-0.203125)]);
  expect(q('mx<e4m3,scale=ceil>', [300, 7, -0.2])).toEqual([288, 7, f32(-0.203125)]);
  expect(q('mx<int8>', [1.99, 0.5])).toEqual([127 / 64, 0.5]);
  expect(q('mx<int8,scale=rceil>', [1.99, 0.5])).toEqual([2, 0.5]);
  expect(q('mx<int8,scale=ceil>', [1.99, 0.5])).toEqual([2, 0.5]);
  expect(q('mx<int8,scale=even>', [1.995, 0.5])).toEqual([2, 0.5]); // 1.995 rounds to 2 at 6 fraction bits (1.99 does not)
  expect(q('mx<int8,scale=even>', [1.99, 0.5])).toEqual([127 / 64, 0.5]);
  expect(q('mx<int8,scale=even>', [1.98, 0.5])).toEqual([f32(127 / 64), 0.5]);
  // one binade above floor's, a max within 2^−24 of 2^128 rescales to Inf (as microxcaling's E = 128 does); floor stays finite
  const FLT_MAX = new Float32Array(Uint32Array.of(0x7f7fffff).buffer)[0];
  expect(q('mx<e4m3>', [FLT_MAX])).toEqual([448 * 2 ** 119]);
  expect([q('mx<e4m3,scale=ceil>', [FLT_MAX]), q('mx<e4m3,scale=rceil>', [FLT_MAX])]).toEqual([[Infinity], [Infinity]]);
  for (const mode of ['ceil', 'even', 'rceil']) {
    expect(q(`mx<e2m1,scale=${mode}>`, [-0, 0])).toEqual([0, 0]);
    expect(q(`mx<e2m1,scale=${mode}>`, [1, NaN]).every(Number.isNaN)).toBe(true);
  }
});

test('fusion\'s grid claims for a scheduled MXINT: relu keeps it at every width, relu6 not (at width 2, 6 → 4)', () => {
  const f = parseFormat('mx<int8,fwd>'), x = data(2 * 64, 9), shape = [2, 64];
  expect([gridAfter('relu', {}, f), gridAfter('relu6', {}, f)]).toEqual([f, undefined]);
  const key = (b: number) => ({ seed: 1, step: b, tensorId: 2, bits: { fwd: b, bwd: 8 } });
  for (let b = 2; b <= 8; b++) {
    const r = quantize(x, shape, f, 'stochastic', key(b)).map((v) => Math.max(v, 0));
    expect([b, bitsOf(quantize(r, shape, f, 'nearest', key(b)))]).toEqual([b, bitsOf(r)]);
  }
  const q = quantize(Float32Array.of(8, 1), [2], f, 'nearest', key(2)).map((v) => Math.min(Math.max(v, 0), 6));
  expect(Array.from(quantize(q, [2], f, 'nearest', key(2)))).toEqual([4, 0]); // relu6(8) = 6 is not on int2's grid
});

test('canonical text: scale (floor omitted) and the scheduled width print and parse back', () => {
  for (const s of ['mx<int5>', 'mx<int2,block=16>', 'mx<e4m3,scale=ceil>', 'mx<int8,fwd>', 'mx<int6,block=16,axis=0,scale=rceil,bwd>'])
    expect(fmtMsg(s)).toBe(s);
  expect(fmtMsg('mx<e4m3,scale=floor>')).toBe('mx<e4m3>');
  expect(parseFormat('mx<e2m1,scale=even>')).toEqual({ kind: 'mx', elem: 'e2m1', block: 32, scale: 'even' });
  expect(fmtMsg('mx<bwd,int8>')).toBe("8: mx: unexpected option 'int8'; expected block=B, axis=k, scale=S or fwd|bwd (each at most once)");
  const p = parsePolicy('W=mx<int8> A=mx<int8,scale=ceil> E=mx<e5m2,scale=rceil>:stochastic ; schedule fwd=cyclic(3,8,periods=4) ; save=mx<e4m3,scale=even>');
  expect(printPolicy(p)).toBe('W=mx<int8> A=mx<int8,scale=ceil> E=mx<e5m2,scale=rceil>:stochastic ; schedule fwd=cyclic(3,8,periods=4) ; save=mx<e4m3,scale=even>');
  expect(parsePolicy(printPolicy(p))).toEqual(p);
  expect(printPolicy(parsePolicy('A=mx<e4m3,scale=floor>'))).toBe('A=mx<e4m3>');
});

test('IR text: scale modes and scheduled widths print and parse back (artifacts, sweeps)', () => {
  const g = emptyGraph('t'), b = new Builder(g);
  let x = b.add('input', [], { name: 'x', kind: 'data', shape: [2, 40], dtype: 'f32' });
  for (const f of ['mx<e4m3,scale=ceil>', 'mx<int6,block=8,scale=rceil>', 'mx<int8,fwd>', 'mx<int5,scale=ceil,bwd>'])
    x = b.add('quantize', [x], { fmt: parseFormat(f), rounding: 'nearest', role: 'A' });
  g.outputs.push({ name: 'y', node: x });
  const text = printModule({ version: 1, name: 'm', graphs: [g] });
  expect(text).toContain('mx<int5,scale=ceil,bwd>');
  expect(printModule(parseModule(text, 'test.lpir'))).toBe(text);
});

test('bad input: one line naming the place', () => {
  expect(fmtMsg('mx<int9>')).toBe("4: mx: unknown element format 'int9': integer elements take 2 to 8 bits (int2 … int8)");
  expect(fmtMsg('mx<int1>')).toBe("4: mx: unknown element format 'int1': integer elements take 2 to 8 bits (int2 … int8)");
  expect(fmtMsg('mx<e4m3,scale=up>')).toBe("9: mx: scale: unknown scale mode 'up'; expected floor, ceil, even, rceil");
  expect(fmtMsg('mx<e4m3,fwd>')).toBe("9: mx: unknown option 'fwd': a scheduled width needs integer elements (mx<int8,fwd>), not e4m3");
  expect(fmtMsg('mx<int8,scale=2>')).toMatch(/^9: mx: unexpected option 'scale=2'/);
  expect(errs('A=mx<e4m3,scale=round>')).toEqual(["1:11: mx: scale: unknown scale mode 'round'; expected floor, ceil, even, rceil"]);
  // a schedule over an MX float format is refused at the role; widths outside 2 … B at the schedule
  expect(errs('W=mx<int8> A=mx<e4m3> ; schedule fwd=cyclic(3,8)')).toEqual([
    "1:12: 'schedule fwd=…' varies MXINT element widths; A=mx<e4m3> has floating-point elements, which have no width to vary (use mx<int8>)"]);
  expect(errs('E=mx<e5m2> ; schedule bwd=const(8)')[0]).toMatch(/^1:1: 'schedule bwd=…' varies MXINT element widths; E=mx<e5m2>/);
  expect(errs('A=mx<int8>\n; schedule fwd=cyclic(1,8)')).toEqual(["2:12: 'fwd=cyclic(1,8,periods=32)' sets A=mx<int8>'s element width: it must satisfy 2 <= bits <= 8 (got 1)"]);
  expect(errs('W=mx<int4> ; schedule fwd=cyclic(3,8)')).toEqual(["1:23: 'fwd=cyclic(3,8,periods=32)' sets W=mx<int4>'s element width: it must satisfy 2 <= bits <= 4 (got 8)"]);
  expect(errs('A=mx<int8,scale=rceil> ; schedule fwd=cyclic(3,8)')).toEqual(["1:1: A=mx<int8,scale=rceil>: a scheduled MXINT width takes scale=floor or ceil (scale=rceil depends on the element width)"]);
  expect(errs('save=mx<int8,fwd>')).toEqual(["1:6: save=mx<int8,fwd>: a saved tensor keeps one width (no ,fwd)"]);
  // from the command line: one line, the flag and the place, non-zero exit
  const r = spawnSync(process.execPath, ['bin/lpc.js', 'compile', 'models/lenet5.ts', '-o', '/dev/null', '--precision', 'A=mx<e4m3> ; schedule fwd=cyclic(3,8)'], { encoding: 'utf8' });
  expect([r.status, r.stderr.split('\n').filter((l) => l.startsWith('lpc:'))]).toEqual([2, [
    "lpc: --precision:1:1: 'schedule fwd=…' varies MXINT element widths; A=mx<e4m3> has floating-point elements, which have no width to vary (use mx<int8>)"]]);
  // a schedule over minmax formats is as before; MXINT G/M are not driven and need no check
  expect(errs('W=minmax<8,channel> A=minmax<8,tensor> G=mx<int4> ; schedule fwd=cyclic(3,8)')).toEqual([]);
});

const SGD = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const SPEC = 'W=mx<int8> A=mx<int8> E=mx<int8>:stochastic G=mx<int8> ; schedule fwd=cyclic(3,8,periods=4) bwd=const(8)';

test('placement: A and OptimLP\'s W read the fwd width, E the bwd width; G keeps its own', () => {
  const m = runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer: SGD, precision: parsePolicy(SPEC), fuse: false });
  const train = m.graphs.find((g) => g.name === 'train')!;
  const by = (role: string) => new Set(train.nodes.filter((n) => n.op === 'quantize' && n.attrs.role === role)
    .map((n) => formatToString(n.attrs.fmt as Format)).filter((s) => s !== 'f32'));
  expect([by('A'), by('W'), by('G')]).toEqual([new Set(['mx<int8,fwd>']), new Set(['mx<int8,fwd>']), new Set(['mx<int8>'])]);
  const e = train.nodes.filter((n) => n.op === 'quantize' && (n.attrs.fmt as Format).kind === 'mx' && (n.attrs.fmt as { sched?: string }).sched === 'bwd');
  expect(e.length).toBeGreaterThan(0);
  expect(() => runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer: SGD, precision: parsePolicy('G=mx<int8> ; schedule fwd=const(4)'), fuse: false }))
    .toThrow("'schedule fwd=…' sets the width of minmax and mx<intB> formats, but neither W nor A is one");
});

test('one artifact, every width: the CPU step at widths 3 and 8 differs and equals the unscheduled mx<int3> / mx<int8> step', async () => {
  const compile = (spec: string) => runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer: SGD, precision: parsePolicy(spec) });
  const r = rand(7);
  const feeds = { x: Float32Array.from({ length: 2 * 784 }, () => r()), y: Int32Array.of(3, 8), lr: Float32Array.of(0.05) };
  const step = async (spec: string, bits?: { fwd: number; bwd: number }) => {
    const m = compile(spec), cpu = new CpuBackend(m);
    await cpu.setState(initState(m, 1));
    const o = await cpu.run('train', feeds, { seed: 2, step: 0, ...(bits ? { bits } : {}) }, ['loss']);
    return { loss: o.loss[0], state: await cpu.getState() };
  };
  const sched = 'W=mx<int8> A=mx<int8> E=mx<int8> ; schedule fwd=cyclic(3,8) bwd=const(8)';
  const [s3, s8, u3, u8] = await Promise.all([
    step(sched, { fwd: 3, bwd: 8 }), step(sched, { fwd: 8, bwd: 8 }), step('W=mx<int3> A=mx<int3> E=mx<int8>'), step('W=mx<int8> A=mx<int8> E=mx<int8>'),
  ]);
  expect(s3.loss).not.toBe(s8.loss);
  expect([s3.loss, s8.loss]).toEqual([u3.loss, u8.loss]);
  for (const [k, v] of u3.state) expect([k, Array.from(s3.state.get(k)!)]).toEqual([k, Array.from(v)]);
});
