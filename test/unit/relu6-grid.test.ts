/**
 * The grid claims of ir/quant/grid.ts, as properties of the CPU quantizer (ir/quant/quantize.ts): for every format
 * × rounding it claims, quantizing relu / relu6 / relu_bwd / relu6_bwd of quantized values again — nearest and
 * stochastic, other random bits — gives back the same bits (so drop-identity-quantizer may remove that quantizer and
 * fold-qpost-relu may apply the op after the first one alone); for every format it leaves out, a counterexample is
 * found among the same values (so the claim is not merely conservative). The one difference a claim allows is the
 * sign of a zero: a backward passes a −0 error (fixed point rounds small negatives to −0) that a quantizer writes as
 * +0, as drop-identity-quantizer has always allowed for relu_bwd; equal values, and MX formats are not claimed for
 * the backwards because of it. Seeded data: random magnitudes from 2^−6 to
 * 2^8 (most blocks clamp at 6), values at 6 and around it, and the E4M3 block that saturates when its max falls.
 */
import { Format, Rounding, formatToString } from '../../ir/format.js';
import { gridAfter, relu6KeepsGrid } from '../../ir/quant/grid.js';
import { quantize } from '../../ir/quant/quantize.js';
import { getOp } from '../../ir/ops/index.js';
import { rand } from './helpers.js';

const SHAPE = [3, 8, 2, 2]; // 96 elements: bfp axis 0 / 1 blocks, MX blocks along channels (block 4 or 8)
const N = SHAPE.reduce((a, b) => a * b, 1);
const ROUNDINGS: Rounding[] = ['nearest', 'stochastic'];

const FORMATS: Format[] = [
  ...[[8, 4], [4, 1], [3, 1], [6, 5], [12, 2], [8, 0]].flatMap(([wl, fl]): Format[] => [
    { kind: 'fixed', wl, fl }, { kind: 'fixed', wl, fl, sym: true }, { kind: 'fixed', wl, fl, noclamp: true }]),
  ...[[1, 1], [2, 1], [3, 1], [4, 3], [5, 2], [2, 3], [8, 7], [5, 10]].map(([exp, man]): Format => ({ kind: 'float', exp, man })),
  ...[1, 2, 3, 4, 5, 8, 12].flatMap((wl): Format[] => [{ kind: 'bfp', wl, axis: 'tensor' }, { kind: 'bfp', wl, axis: 0 }, { kind: 'bfp', wl, axis: 1 }]),
  ...(['e4m3', 'e5m2', 'e3m2', 'e2m3', 'e2m1', 'int8', 'int5', 'int4', 'int3', 'int2'] as const).flatMap((elem): Format[] => [
    { kind: 'mx', elem, block: 4 }, { kind: 'mx', elem, block: 8, axis: 3 }]),
  // torchao's scale modes (issue 30): E4M3 keeps its grid under ceil and rceil, int3 loses relu6's under ceil
  ...(['e4m3', 'e2m1', 'int3', 'int2'] as const).flatMap((elem) => (['ceil', 'even', 'rceil'] as const)
    .map((scale): Format => ({ kind: 'mx', elem, block: 4, scale }))),
  { kind: 'minmax', bits: 4, per: 'tensor' }, { kind: 'minmax', bits: 8, per: 'channel' },
];

/** The data cases: [value, other operand (y of the backwards)], seeded. */
function cases(seed: number): { v: Float32Array; y: Float32Array }[] {
  const r = rand(seed);
  const out: { v: Float32Array; y: Float32Array }[] = [];
  const ys = () => Float32Array.from({ length: N }, () => [-1, 0, 0.5, 3, 5.99, 6, 6.5, 9][Math.floor(r() * 8)]);
  for (let t = 0; t < 150; t++) {
    const scale = 2 ** (Math.floor(r() * 15) - 6);
    out.push({ v: Float32Array.from({ length: N }, () => (2 * r() - 1) * scale * (r() < 0.1 ? 8 : 1)), y: ys() });
  }
  // around 6, and exactly on it
  out.push({ v: Float32Array.from({ length: N }, (_, i) => [6, 5.9, 6.1, 7, 8, -6, 12, 4][i % 8]), y: ys() });
  // E4M3 blocks (4 consecutive channels): max |x| 256 by a negative; without it the max is 240 and the scale halves
  out.push({ v: Float32Array.from({ length: N }, (_, i) => [-256, 240, 1, 2][Math.floor(i / 4) % 4] / 32), y: ys() });
  // negatives far below a block's smallest step (E5M2's subnormals reach 2^−16 of the max's scale): rounded to −0
  out.push({ v: Float32Array.from({ length: N }, (_, i) => [1, -1e-12, 0.5, -3e-13][(i + Math.floor(i / 4)) % 4]), y: ys() });
  return out;
}

const opCpu = (op: string) => getOp(op).ew!.cpu;
/** op applied to the quantized value q (y: the backwards' other operand). */
function apply(op: string, q: Float32Array, y: Float32Array): Float32Array {
  const f = opCpu(op);
  return Float32Array.from(q, (v, i) => f(op.endsWith('_bwd') ? [v, y[i]] : [v], {}));
}
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/**
 * The first element where requantizing op(Q(v)) moves it, or undefined when none does (over both roundings);
 * `lenient`: a −0 becoming +0 does not count.
 */
function counterexample(fmt: Format, op: string, seed: number, lenient: boolean): string | undefined {
  for (const [c, { v, y }] of cases(seed).entries())
    for (const rounding of ROUNDINGS) {
      const q = quantize(v, SHAPE, fmt, rounding, { seed: 11, step: c, tensorId: 3 });
      const o = apply(op, q, y);
      for (const again of ROUNDINGS) {
        const q2 = quantize(o, SHAPE, fmt, again, { seed: 12, step: c, tensorId: 5 });
        const a = bitsOf(o), b = bitsOf(q2);
        // the one difference a claim allows: −0 (passed by a backward) requantized to +0
        const i = a.findIndex((u, j) => u !== b[j] && !(lenient && u === 0x80000000 && b[j] === 0));
        if (i >= 0) return `case ${c}, ${rounding} then ${again}: [${i}] v=${v[i]} Q(v)=${q[i]} ${op}=${o[i]} requantized=${q2[i]}`;
      }
    }
  return undefined;
}

describe('relu6 and relu keep a format grid exactly where ir/quant/grid.ts claims it', () => {
  for (const op of ['relu', 'relu6', 'relu_bwd', 'relu6_bwd'])
    for (const fmt of FORMATS) {
      const claimed = !!gridAfter(op, {}, fmt);
      test(`${op} ${formatToString(fmt)}: ${claimed ? 'kept (requantizing is the identity)' : 'not kept (a counterexample)'}`, () => {
        const found = counterexample(fmt, op, 0x6e1d, claimed);
        if (claimed) expect(found ?? "none").toBe("none");
        else expect(found).toBeDefined();
      });
    }
});

test('relu6KeepsGrid: fixed and float always, bfp from 3 bits, MX but E4M3 (floor, even), int2 and int3 under ceil, never minmax', () => {
  const kept = FORMATS.filter(relu6KeepsGrid).map(formatToString);
  expect(kept.filter((s) => /^(bfp<[12],|minmax|mx<int2|mx<int3,block=4,scale=ceil>|mx<e4m3(,block=\d+)?(,axis=\d)?(,scale=even)?>)/.test(s))).toEqual([]);
  expect(kept).toEqual(expect.arrayContaining(['mx<e4m3,block=4,scale=ceil>', 'mx<e4m3,block=4,scale=rceil>', 'mx<int3,block=4>', 'mx<int3,block=4,scale=rceil>']));
  expect(kept).toEqual(expect.arrayContaining(['bfp<8,tensor>', 'bfp<3,axis=0>', 'fixed<8,4>', 'float<4,3>', 'mx<e5m2,block=4>', 'mx<e2m1,block=4>', 'mx<int4,block=4>']));
});

test('minmax: a 2×2 max pool of quantized values leaves the grid too (its min rises), so it is not claimed', () => {
  const fmt: Format = { kind: 'minmax', bits: 4, per: 'tensor' };
  expect(gridAfter('maxpool', { k: 2, stride: 2 }, fmt)).toBeUndefined();
  expect(gridAfter('reshape', {}, fmt)).toEqual(fmt);
  const pool = (q: Float32Array) => Float32Array.from({ length: N / 4 }, (_, o) => Math.max(q[4 * o], q[4 * o + 1], q[4 * o + 2], q[4 * o + 3]));
  const moved = cases(0x9001).some(({ v }) => {
    const p = pool(quantize(v, SHAPE, fmt, 'nearest'));
    return bitsOf(quantize(p, [3, 8, 1, 1], fmt, 'nearest')).some((u, i) => u !== bitsOf(p)[i]);
  });
  expect(moved).toBe(true);
});
