/**
 * save=mx<…> (ir/quant/mx-pack.ts): packed MX codes (element order) + one scale byte per block restore exactly the MX quantizer's
 * values (integer −0 too: the unused code −2^(bits−1) holds it), the codes are OCP's (known bit patterns), the word count is passes/memory.ts's
 * packed-bytes figure, the compress pass saves conv/BN/linear inputs that way, the memory plan and `lpc mem` count
 * the packed words, and a CPU training step runs through them.
 */
import { execFileSync } from 'node:child_process';
import { Format, MX_ELEMS, MxElem, parseFormat } from '../../ir/format.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import { mxPackedBytes } from '../../ir/quant/mx.js';
import { mxDecode, mxEncode, mxPack, mxPackWords, mxUnpack } from '../../ir/quant/mx-pack.js';
import { saveFormatError } from '../../ir/quant/save.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { planModuleMemory } from '../../passes/memory.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { rand, relErr } from './helpers.js';

type Mx = Extract<Format, { kind: 'mx' }>;
const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];
const ELEMS = Object.keys(MX_ELEMS) as MxElem[];

function data(n: number, seed: number): Float32Array {
  const r = rand(seed);
  const x = Float32Array.from({ length: n }, () => (r() - 0.5) * 2 ** Math.floor(r() * 30 - 15));
  const u = new Uint32Array(x.buffer);
  u[1] = 0x80000000; u[2] = 0; u[3] = 5; u[n - 1] = 0x7fc00000; u[Math.floor(n / 2)] = 0xff800000;
  x[4] = -1e-30; // rounds to −0 inside its block
  return x;
}

test('pack → unpack restores quantize(x, mx, nearest) bit for bit, −0 included', () => {
  const cases: [number[], Partial<Mx>][] = [[[3, 40], {}], [[2, 20, 3, 3], { block: 16 }], [[64], { block: 8 }], [[5, 7], { axis: 0, block: 32 }], [[3, 11], { block: 2 }]];
  for (const elem of ELEMS)
    for (const [shape, o] of cases) {
      const f = { kind: 'mx', elem, block: 32, ...o } as Mx;
      const x = data(numel(shape), 7), want = new Uint32Array(quantize(x, shape, f, 'nearest').buffer);
      const words = mxPack(x, shape, f);
      expect(words.length).toBe(mxPackWords(f, shape).words);
      expect(words.length * 4).toBe(mxPackedBytes(f, shape));
      const out = new Float32Array(numel(shape));
      mxUnpack(words, shape, f, out);
      const got = new Uint32Array(out.buffer), bad: string[] = [];
      for (let i = 0; i < got.length; i++) {
        const w = want[i];
        const nan = (v: number) => (v & 0x7fffffff) > 0x7f800000;
        if (got[i] !== w && !(nan(got[i]) && nan(w))) bad.push(`[${i}] ${got[i].toString(16)} != ${w.toString(16)}`);
      }
      expect([elem, shape, bad.slice(0, 3)]).toEqual([elem, shape, []]);
    }
});

test('codes are OCP\'s: known bit patterns at scale 1 (byte 127), decode inverts encode', () => {
  const code = (v: number, e: MxElem) => mxEncode(bitsOf(v), 127, e);
  expect([448, -(2 ** -9), 1, -0, 2 ** -6].map((v) => code(v, 'e4m3'))).toEqual([0x7e, 0x81, 0x38, 0x80, 0x08]);
  expect([57344, 2 ** -16, 1.5].map((v) => code(v, 'e5m2'))).toEqual([0x7b, 0x01, 0x3e]);
  expect([28, 0.0625].map((v) => code(v, 'e3m2'))).toEqual([0x1f, 0x01]);
  expect([7.5, -0.125].map((v) => code(v, 'e2m3'))).toEqual([0x1f, 0x21]);
  expect([6, 0.5, -0, -3].map((v) => code(v, 'e2m1'))).toEqual([0x7, 0x1, 0x8, 0xd]);
  expect([127 / 64, -127 / 64, 2 ** -6].map((v) => code(v, 'int8'))).toEqual([0x7f, 0x81, 0x01]);
  expect([1.75, -1.75].map((v) => code(v, 'int4'))).toEqual([0x7, 0x9]);
  // integers: −0 (a negative rounded to zero) takes the code −2^(bits−1), which the symmetric grid never produces
  expect([-0, 0].map((v) => code(v, 'int8'))).toEqual([0x80, 0]);
  expect([mxDecode(0x80, 127, 'int8'), mxDecode(0x8, 127, 'int4')]).toEqual([0x80000000, 0x80000000]);
  for (const e of ELEMS)
    for (let c = 0; c < 1 << MX_ELEMS[e].bits; c++) {
      const y = mxDecode(c, 120, e); // scale 2^−7
      expect([e, c, mxEncode(y, 120, e)]).toEqual([e, c, c]);
    }
  expect(mxDecode(0x7e, 127 + 119, 'e4m3')).toBe(bitsOf(448 * 2 ** 119)); // lpc's largest E4M3 scale: E = 127
  expect(mxDecode(0x12, 255, 'e4m3')).toBe(0x7fc00000);
});

test('every MX format can be saved; other block formats cannot', () => {
  for (const s of ['mx<e3m2,block=1>', 'mx<e2m1,axis=0>', 'mx<int8,block=64>']) expect(saveFormatError(parseFormat(s))).toBeUndefined();
  expect(saveFormatError(parseFormat('bfp<8>'))).toMatch(/float or fixed format .* or mx<…>, not bfp/);
});

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const compile = (file: string, batch: number, spec?: string) =>
  runPasses(frontEnd(file, batch), { batch, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
const train = (m: ReturnType<typeof compile>) => m.graphs.find((g) => g.name === 'train')!;

test('the compress pass and the memory plan: conv, BN and linear inputs saved as packed MX words', () => {
  const md = compile('test/fixtures/resbn.ts', 8, 'save=mx<e2m1>'), g = train(md);
  for (const n of g.nodes.filter((x) => ['bn_bwd_x', 'bn_bwd_sums', 'conv2d_bwd_weight'].includes(x.op)))
    expect(g.nodes[n.inputs[1]].op).toBe('format_decompress');
  const pd = planModuleMemory(md).graphs.find((p) => p.graph === 'train')!;
  const pf = planModuleMemory(compile('test/fixtures/resbn.ts', 8)).graphs.find((p) => p.graph === 'train')!;
  const fmt = parseFormat('mx<e2m1>') as Mx;
  const packed = g.nodes.filter((n) => n.op === 'format_compress').reduce((s, n) => s + mxPackedBytes(fmt, g.nodes[n.inputs[0]].type.shape), 0);
  const saved = pd.buffers.filter((b) => b.class === 'saved_activations' && g.nodes[b.node].op === 'format_compress');
  expect(saved.reduce((s, b) => s + b.bytes, 0)).toBe(packed);
  const f32Bytes = g.nodes.filter((n) => n.op === 'format_compress').reduce((s, n) => s + numel(g.nodes[n.inputs[0]].type.shape) * 4, 0);
  // 4 bits per element plus a byte per block: blocks along channels hold 3 (the image) to 16 elements here
  expect(packed).toBeLessThan(f32Bytes / 4);
  expect(pd.classes.saved_activations).toBeLessThan(pf.classes.saved_activations - f32Bytes + packed + 1);
});

test('lpc mem counts save=mx<…> (8/6/4 bits per element plus a byte per block)', () => {
  const mem = (...extra: string[]) => JSON.parse(execFileSync('node', ['bin/lpc.js', 'mem', 'models/lenet5.ts', '--batch', '64', '--json', ...extra], { encoding: 'utf8' }));
  const f = mem(), e8 = mem('--precision', 'save=mx<e4m3>'), e4 = mem('--precision', 'save=mx<e2m1>'), fp8 = mem('--precision', 'save=e4m3');
  expect(e8.saved_activations_bytes).toBeGreaterThan(fp8.saved_activations_bytes); // the scale bytes
  expect(e4.saved_activations_bytes).toBeLessThan(e8.saved_activations_bytes);
  expect(f.saved_activations_bytes / e4.saved_activations_bytes).toBeGreaterThan(4);
}, 60000);

test('a CPU training step through MX saved activations: forward unchanged, updates close to f32', () => {
  const batch = 4, mf = compile('test/fixtures/resbn.ts', batch), r = rand(3);
  const x = Float32Array.from({ length: batch * 3 * 28 * 28 }, () => r() * 2 - 1);
  const y = Int32Array.from({ length: batch }, () => Math.floor(r() * 10));
  const state = initState(mf, 0), feeds = { x, y, lr: new Float32Array([0.05]) };
  const a = runGraph(train(mf), feeds, state, { seed: 1, step: 0 });
  // E4M3 keeps 3 mantissa bits (up to 16% error in a weight gradient here), INT8 7
  for (const [spec, tol] of [['save=mx<e4m3>', 0.3], ['save=mx<int8>', 0.04]] as const) {
    const b = runGraph(train(compile('test/fixtures/resbn.ts', batch, spec)), feeds, state, { seed: 1, step: 0 });
    expect(b.outputs.loss[0]).toBe(a.outputs.loss[0]);
    for (const [name, v] of a.updates) {
      const w0 = state.get(name)!;
      const da = Float64Array.from(v, (t, i) => t - w0[i]), db = Float64Array.from(b.updates.get(name)!, (t, i) => t - w0[i]);
      expect({ spec, name, err: relErr(db, da) < tol }).toEqual({ spec, name, err: true });
    }
  }
}, 60000);
