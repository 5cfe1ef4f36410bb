/**
 * CPT's quantizer (research/seeds.md §2.2) as the `minmax<bits,tensor|channel>` format: per block (the tensor, or
 * each index of axis 0) zero point = min, range = max − min, scale = max(range / (2^bits − 1), 1e-8),
 * y = (x − zp) / scale, stochastic: y + U(−½, ½), then clamp to [0, 2^bits − 1], round half to even, and de-quantize
 * q·scale + zp. Every step is one f32 operation, in this order, as PyTorch computes it and as WGSL does.
 *
 * The block min and max are reduced as order-preserving u32 keys so the WGSL reduction (atomicMax) and this one
 * agree bit for bit: stats[b] = max key(x), stats[K + b] = max key(−x) over block b (0 when the block is empty).
 */
import { Format } from '../format.js';
import { randomBitsArray, RngKey } from './rng.js';
import { blockLayout } from './quantize.js';

export type MinmaxFormat = Extract<Format, { kind: 'minmax' }>;

const f32 = Math.fround;
const fbuf = new Float32Array(1), ubuf = new Uint32Array(fbuf.buffer);
const bitsOf = (x: number) => { fbuf[0] = x; return ubuf[0]; };
const fromBits = (u: number) => { ubuf[0] = u; return fbuf[0]; };

/** f32 bit pattern → u32 whose unsigned order is the float order (−Inf lowest, +Inf highest). */
export const orderedKey = (u: number) => ((u & 0x80000000) ? ~u : (u | 0x80000000)) >>> 0;
export const fromOrderedKey = (k: number) => ((k & 0x80000000) ? (k & 0x7fffffff) : ~k) >>> 0;

/** The f32 value 1e-8 that bounds the scale from below (PyTorch's clamp in float32). */
export const MINMAX_MIN_SCALE = f32(1e-8);

export const minmaxAxis = (f: MinmaxFormat): number | 'tensor' => (f.per === 'channel' ? 0 : 'tensor');

/** The width in force: a scheduled format's comes from the step (its static bits when no schedule runs). */
export function minmaxBits(f: MinmaxFormat, rng?: RngKey): number {
  return f.sched && rng?.bits ? rng.bits[f.sched] : f.bits;
}

export function minmaxStats(x: ArrayLike<number>, shape: readonly number[], f: MinmaxFormat): Uint32Array {
  const { axisLen, inner } = blockLayout(shape, minmaxAxis(f));
  const s = new Uint32Array(2 * axisLen);
  for (let i = 0; i < x.length; i++) {
    const b = axisLen === 1 ? 0 : Math.floor(i / inner) % axisLen;
    const k = orderedKey(bitsOf(x[i])), kn = orderedKey(bitsOf(-x[i]));
    if (k > s[b]) s[b] = k;
    if (kn > s[axisLen + b]) s[axisLen + b] = kn;
  }
  return s;
}

/** round half to even of a value already in [0, 2^16): what WGSL's round() does. */
function rint(y: number): number {
  const r = Math.round(y);
  return r - y === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** (zero point, scale) of block b from its stats, as f32. */
export function minmaxParams(stats: Uint32Array, axisLen: number, b: number, bits: number): { zp: number; scale: number } {
  const mx = fromBits(fromOrderedKey(stats[b])), mn = -fromBits(fromOrderedKey(stats[axisLen + b]));
  const qmax = 2 ** bits - 1;
  return { zp: mn, scale: Math.max(f32(f32(mx - mn) / qmax), MINMAX_MIN_SCALE) };
}

export function quantizeMinmax(x: Float32Array, shape: readonly number[], f: MinmaxFormat, stochastic: boolean, rng?: RngKey): Float32Array {
  const bits = minmaxBits(f, rng);
  if (bits === 0) return x.slice();
  const { axisLen, inner } = blockLayout(shape, minmaxAxis(f));
  const stats = minmaxStats(x, shape, f);
  const params = Array.from({ length: axisLen }, (_, b) => minmaxParams(stats, axisLen, b, bits));
  if (stochastic && !rng) throw new Error('quantize: stochastic rounding needs an rng key {seed, step, tensorId}');
  const r = stochastic ? randomBitsArray(rng!.seed >>> 0, rng!.step >>> 0, rng!.tensorId >>> 0, x.length) : null;
  const qmax = 2 ** bits - 1;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const { zp, scale } = params[axisLen === 1 ? 0 : Math.floor(i / inner) % axisLen];
    let y = f32(f32(x[i] - zp) / scale);
    // U(−½, ½) from the top 24 bits: exact in f32
    if (r) y = f32(y + ((r[i] >>> 8) * 2 ** -24 - 0.5));
    const q = rint(Math.min(Math.max(y, 0), qmax));
    out[i] = f32(f32(q * scale) + zp);
  }
  return out;
}
