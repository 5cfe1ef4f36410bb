/** CPT's quantizer as the minmax format: research/seeds.md §2.4 vectors, properties, scheduled widths, the spec text. */
import { formatToString, parseFormat } from '../../ir/format.js';
import { quantize } from '../../ir/quant/quantize.js';
import { fromOrderedKey, minmaxStats, orderedKey } from '../../ir/quant/minmax.js';
import { rand as seededRandom } from './helpers.js';

const q = (x: number[], shape: number[], text: string, rounding: 'nearest' | 'stochastic' = 'nearest', rng?: { seed: number; step: number; tensorId: number; bits?: { fwd: number; bwd: number } }) =>
  [...quantize(Float32Array.from(x), shape, parseFormat(text), rounding, rng)];
const f32 = (xs: number[]) => xs.map(Math.fround);
/** seeds.md prints values to 7 significant digits: equal to that precision. */
const near7 = (got: number[], want: number[]) => {
  expect(got).toHaveLength(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThanOrEqual(5e-7 * Math.max(1e-1, Math.abs(want[i]))));
};

describe('seeds.md §2.4 (CPT modules/quantize.py)', () => {
  test('per tensor, 2 and 3 bits (0.5 is a tie 1.5 → 2, zero is not representable)', () => {
    expect(q([0, 0.1, 0.5, 1.0], [4], 'minmax<2,tensor>')).toEqual(f32([0, 0, 0.6666667, 1.0]));
    expect(q([-2, -1, 0, 1, 2], [5], 'minmax<2,tensor>')).toEqual(f32([-2, -0.6666666, 0.66666675, 0.66666675, 2]));
    expect(q([-1, -0.2, 0, 0.3, 0.55, 3], [6], 'minmax<3,tensor>')).toEqual(f32([-1, -0.4285714, 0.1428572, 0.1428572, 0.71428585, 3]));
  });
  test('per output channel, 2 and 8 bits; an all-equal row comes back exactly', () => {
    const w = [-0.5, 0.1, 0.3, 0.2, 0.2, 0.2];
    near7(q(w, [2, 3], 'minmax<2,channel>'), [-0.5, 0.0333334, 0.3000001, 0.2, 0.2, 0.2]);
    near7(q(w, [2, 3], 'minmax<8,channel>'), [-0.5, 0.0992157, 0.3, 0.2, 0.2, 0.2]);
    expect(q(w, [2, 3], 'minmax<8,channel>').slice(3)).toEqual(f32([0.2, 0.2, 0.2]));
  });
  test('bits = 0 is full precision', () => {
    expect(q([0.123, -4.5, 7], [3], 'minmax<0,tensor>')).toEqual(f32([0.123, -4.5, 7]));
  });
});

test('order-preserving keys: min and max of signed floats by unsigned max', () => {
  const r = seededRandom(7);
  const x = Float32Array.from({ length: 1000 }, () => (r() - 0.5) * 10 ** Math.floor(r() * 6 - 3));
  x[3] = -0; x[4] = 0;
  const s = minmaxStats(x, [1000], { kind: 'minmax', bits: 4, per: 'tensor' });
  const f = new Float32Array(new Uint32Array([fromOrderedKey(s[0]), fromOrderedKey(s[1])]).buffer);
  expect(f[0]).toBe(Math.max(...x));
  expect(-f[1]).toBe(Math.min(...x));
  for (const v of [1.5, -1.5, 0, -0, Infinity, -Infinity]) {
    const u = new Uint32Array(Float32Array.from([v]).buffer)[0];
    expect(fromOrderedKey(orderedKey(u))).toBe(u);
  }
});

test('stochastic: unbiased, P(up) = fractional part of the level', () => {
  // levels of minmax<2> on [0, 3]: 0, 1, 2, 3 — x = 1.3 sits 0.3 above level 1
  const n = 20000, x = new Array(n).fill(1.3);
  x[0] = 0; x[1] = 3;
  const out = q(x, [n], 'minmax<2,tensor>', 'stochastic', { seed: 11, step: 5, tensorId: 2 });
  const body = out.slice(2);
  expect(new Set(body)).toEqual(new Set([1, 2]));
  const mean = body.reduce((a, b) => a + b, 0) / body.length;
  const se = Math.sqrt(0.3 * 0.7 / body.length);
  expect(Math.abs(mean - 1.3)).toBeLessThan(4 * se);
});

test('a scheduled width comes from the step; without one, from the format', () => {
  const x = [0, 0.1, 0.5, 1.0];
  expect(q(x, [4], 'minmax<8,tensor,fwd>', 'nearest', { seed: 0, step: 0, tensorId: 0, bits: { fwd: 2, bwd: 8 } }))
    .toEqual(q(x, [4], 'minmax<2,tensor>'));
  expect(q(x, [4], 'minmax<8,tensor,bwd>', 'nearest', { seed: 0, step: 0, tensorId: 0, bits: { fwd: 2, bwd: 0 } })).toEqual(f32(x));
  expect(q(x, [4], 'minmax<3,tensor,fwd>')).toEqual(q(x, [4], 'minmax<3,tensor>'));
});

test('format text: canonical print, parse errors with the allowed range', () => {
  for (const t of ['minmax<8,tensor>', 'minmax<4,channel>', 'minmax<3,tensor,fwd>', 'minmax<8,channel,bwd>', 'minmax<0,tensor>'])
    expect(formatToString(parseFormat(t))).toBe(t);
  expect(formatToString(parseFormat('minmax<6>'))).toBe('minmax<6,tensor>');
  expect(() => parseFormat('minmax<17,tensor>')).toThrow('minmax: bits must satisfy 0 <= bits <= 16 (got 17)');
  expect(() => parseFormat('minmax<8,row>')).toThrow("minmax: unexpected 'row'; expected 'tensor' or 'channel'");
  expect(() => parseFormat('minmax<8,tensor,up>')).toThrow("expected 'fwd' or 'bwd'");
});
