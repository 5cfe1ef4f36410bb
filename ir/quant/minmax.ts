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
import { blockLayout } from './layout.js';

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

/** The scale of a block with range `range` (f32) at `bits`: max(range / (2^bits − 1), 1e-8) in f32. */
export function minmaxScale(range: number, bits: number): number {
  return Math.max(f32(f32(range) / (2 ** bits - 1)), MINMAX_MIN_SCALE);
}

/** (min, max) of block b from its stats, as f32. */
function blockMinMax(stats: Uint32Array, axisLen: number, b: number): { mn: number; mx: number } {
  return { mx: fromBits(fromOrderedKey(stats[b])), mn: -fromBits(fromOrderedKey(stats[axisLen + b])) };
}

/** (zero point, scale) of block b from its stats, as f32. */
export function minmaxParams(stats: Uint32Array, axisLen: number, b: number, bits: number): { zp: number; scale: number } {
  const { mn, mx } = blockMinMax(stats, axisLen, b);
  return { zp: mn, scale: minmaxScale(f32(mx - mn), bits) };
}

/**
 * CPT's `calculate_qparams` of a whole tensor (QuantMeasure: per-sample min/max, then `extreme` over the batch =
 * the global min and max): [zero_point, range] = [min, f32(max − min)], from the same order-preserving keys as the
 * quantizer, so these are exactly the (zp, range) a per-tensor minmax quantizer of `x` uses.
 */
export function minmaxQparams(x: ArrayLike<number>): Float32Array {
  const { mn, mx } = blockMinMax(minmaxStats(x, [x.length], { kind: 'minmax', bits: 0, per: 'tensor' }), 1, 0);
  return Float32Array.of(mn, f32(mx - mn));
}

/**
 * QuantMeasure's running buffers: r ← r·(1 − momentum) + batch·momentum per element, as PyTorch's
 * `running.mul_(0.9).add_(batch * (1 − 0.9))` computes it in f32 (CPT's momentum 0.9 is our keep, 1 − momentum).
 */
export function minmaxRunningUpdate(r: ArrayLike<number>, batch: ArrayLike<number>, momentum: number, out: { [i: number]: number; length: number }): void {
  const keep = f32(1 - momentum), mom = f32(momentum);
  for (let i = 0; i < out.length; i++) out[i] = f32(f32(r[i] * keep) + f32(batch[i] * mom));
}

/** rounding of one element (shared by the batch-statistics and the given-qparams quantizers). */
function quantizeElements(
  x: ArrayLike<number>, out: Float32Array, bits: number, param: (i: number) => { zp: number; scale: number }, r: Uint32Array | null,
): void {
  const qmax = 2 ** bits - 1;
  for (let i = 0; i < x.length; i++) {
    const { zp, scale } = param(i);
    let y = f32(f32(x[i] - zp) / scale);
    // U(−½, ½) from the top 24 bits: exact in f32
    if (r) y = f32(y + ((r[i] >>> 8) * 2 ** -24 - 0.5));
    const q = rint(Math.min(Math.max(y, 0), qmax));
    out[i] = f32(f32(q * scale) + zp);
  }
}

function rngBits(stochastic: boolean, n: number, rng?: RngKey): Uint32Array | null {
  if (stochastic && !rng) throw new Error('quantize: stochastic rounding needs an rng key {seed, step, tensorId}');
  return stochastic ? randomBitsArray(rng!.seed >>> 0, rng!.step >>> 0, rng!.tensorId >>> 0, n) : null;
}

/**
 * CPT's eval-mode activation quantizer: `x` quantized per tensor with given qparams [zero_point, range] (the
 * QuantMeasure running buffers) instead of its own min/max — the same arithmetic as quantizeMinmax with
 * zp = qparams[0] and scale = max(qparams[1] / (2^bits − 1), 1e-8); values outside [zp, zp + range] clamp to the
 * end levels. Width from `f` (scheduled: from the step); bits = 0 is the identity.
 */
export function quantizeMinmaxWith(x: ArrayLike<number>, qparams: ArrayLike<number>, f: MinmaxFormat, stochastic: boolean, rng?: RngKey): Float32Array {
  if (f.per !== 'tensor') throw new Error(`quantize with given qparams: per-tensor formats only (got ${f.per})`);
  const bits = minmaxBits(f, rng);
  if (bits === 0) return Float32Array.from(x);
  const p = { zp: f32(qparams[0]), scale: minmaxScale(f32(qparams[1]), bits) };
  const out = new Float32Array(x.length);
  quantizeElements(x, out, bits, () => p, rngBits(stochastic, x.length, rng));
  return out;
}

export function quantizeMinmax(x: Float32Array, shape: readonly number[], f: MinmaxFormat, stochastic: boolean, rng?: RngKey): Float32Array {
  const bits = minmaxBits(f, rng);
  if (bits === 0) return x.slice();
  const { axisLen, inner } = blockLayout(shape, minmaxAxis(f));
  const stats = minmaxStats(x, shape, f);
  const params = Array.from({ length: axisLen }, (_, b) => minmaxParams(stats, axisLen, b, bits));
  const r = rngBits(stochastic, x.length, rng);
  const out = new Float32Array(x.length);
  quantizeElements(x, out, bits, (i) => params[axisLen === 1 ? 0 : Math.floor(i / inner) % axisLen], r);
  return out;
}
