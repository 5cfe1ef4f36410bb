/**
 * CPU quantizers over whole tensors: the reference every backend is tested against. Per-element semantics are in
 * ./bits.ts; bfp runs the same two steps as the WGSL kernels: a max-|x| reduction per block (as u32 bit patterns,
 * whose unsigned order equals the order of |x| and puts NaN above Inf), then the elementwise quantizer.
 */
import { Format, Rounding, validateFormat } from '../format.js';
import { randomBitsArray, RngKey } from './rng.js';
import { quantizeMinmax } from './minmax.js';
import { quantizeMx } from './mx.js';
import { blockLayout } from './layout.js';
import { FIXED_NOCLAMP, FIXED_STOCHASTIC, FIXED_SYM, qBfpBits, qFixedBits, qFloatBits } from './bits.js';

export { qBfpBits, qFixedBits, qFloatBits, FIXED_NOCLAMP, FIXED_STOCHASTIC, FIXED_SYM } from './bits.js';

/**
 * Bit patterns of max|x| per block: one for `tensor`, one per index along `axis` (QPyTorch block_quantize's
 * get_max_entry for dim = -1 and dim = axis). Step one of bfp quantization.
 */
export function blockMaxAbsBits(x: Float32Array, shape: readonly number[], axis: number | 'tensor'): Uint32Array {
  const { axisLen, inner } = blockLayout(shape, axis);
  checkSize(x, shape);
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint32Array(axisLen);
  for (let i = 0; i < u.length; i++) {
    const b = axisLen === 1 ? 0 : Math.floor(i / inner) % axisLen;
    const a = u[i] & 0x7fffffff;
    if (a > out[b]) out[b] = a;
  }
  return out;
}

function checkSize(x: Float32Array, shape: readonly number[]): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== x.length) throw new Error(`quantize: shape [${shape.join(',')}] has ${n} elements, data has ${x.length}`);
}

/**
 * Checks a format for quantize(). Like QPyTorch's low-level functions (and unlike its FixedPoint class), fl = 0 is
 * accepted: golden vectors exercise it.
 */
function checkFormat(fmt: Format): void {
  const f = fmt.kind === 'fixed' && fmt.fl === 0 ? { ...fmt, fl: 1 } : fmt;
  const err = validateFormat(f);
  if (err) throw new Error(`quantize: ${err}`);
}

function randomFor(n: number, rounding: Rounding, rng: RngKey | undefined): Uint32Array | null {
  if (rounding === 'nearest') return null;
  if (!rng) throw new Error('quantize: stochastic rounding needs an rng key {seed, step, tensorId}');
  return randomBitsArray(rng.seed >>> 0, rng.step >>> 0, rng.tensorId >>> 0, n);
}

/** Step two of bfp: quantize with precomputed block maxima (from blockMaxAbsBits or the WGSL reduction). */
export function quantizeBfpWithMax(
  x: Float32Array, shape: readonly number[], fmt: Extract<Format, { kind: 'bfp' }>, maxBits: Uint32Array,
  rounding: Rounding, rng?: RngKey,
): Float32Array {
  checkSize(x, shape);
  const { axisLen, inner } = blockLayout(shape, fmt.axis);
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint32Array(x.length);
  const r = randomFor(x.length, rounding, rng);
  for (let i = 0; i < u.length; i++) {
    const m = maxBits[axisLen === 1 ? 0 : Math.floor(i / inner) % axisLen];
    out[i] = qBfpBits(u[i], m, fmt.wl, r !== null, r ? r[i] : 0);
  }
  return new Float32Array(out.buffer);
}

/**
 * Quantizes `x` (row-major, `shape`) to `fmt`, returning a new array of exactly-f32 values. Nearest mode is
 * bit-exact with QPyTorch's CPU kernels (differences: docs/numerics.md). Stochastic mode draws bits from
 * randomBits(seed, step, tensorId, index), index = flat element index.
 */
export function quantize(
  x: Float32Array, shape: readonly number[], fmt: Format, rounding: Rounding, rng?: RngKey,
): Float32Array {
  checkSize(x, shape);
  checkFormat(fmt);
  if (fmt.kind === 'f32') return x.slice();
  if (fmt.kind === 'bfp') return quantizeBfpWithMax(x, shape, fmt, blockMaxAbsBits(x, shape, fmt.axis), rounding, rng);
  if (fmt.kind === 'minmax') return quantizeMinmax(x, shape, fmt, rounding === 'stochastic', rng);
  if (fmt.kind === 'mx') return quantizeMx(x, shape, fmt, rounding, rng);
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint32Array(x.length);
  const r = randomFor(x.length, rounding, rng);
  if (fmt.kind === 'float') {
    for (let i = 0; i < u.length; i++) out[i] = qFloatBits(u[i], fmt.exp, fmt.man, r !== null, r ? r[i] : 0);
  } else {
    const mode = (r ? FIXED_STOCHASTIC : 0) | (fmt.noclamp ? FIXED_NOCLAMP : 0) | (fmt.sym ? FIXED_SYM : 0);
    for (let i = 0; i < u.length; i++) out[i] = qFixedBits(u[i], fmt.wl, fmt.fl, mode, r ? r[i] : 0);
  }
  return new Float32Array(out.buffer);
}
