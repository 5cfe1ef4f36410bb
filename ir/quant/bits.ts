/**
 * The quantizers on binary32 bit patterns, written with 32-bit integer operations only. This is the living spec: the
 * WGSL in codegen/quant/wgsl.ts is a line-by-line transcription, so both backends agree bit for bit without relying
 * on how a GPU treats f32 subnormals (WGSL may flush them), NaN/Inf (WGSL may assume they are absent), signed zeros or
 * rounding modes. Every function reproduces QPyTorch's float computation exactly (docs/numerics.md derives each
 * integer form and lists where lpc deliberately differs).
 *
 * Conventions: `u` is the input's bit pattern, results are bit patterns (u32 as a JS number >= 0); `r` is 32 random
 * bits from ir/quant/rng.ts, ignored in nearest mode.
 */

export const SIGN = 0x80000000;
const QNAN = 0x7fc00000;

/** Round-half-to-even of sig / 2^sh, for 0 <= sig < 2^25 and sh >= 0. */
export function rneShr(sig: number, sh: number): number {
  if (sh === 0) return sig;
  if (sh >= 26) return 0; // sig < 2^25 is below half of 2^26
  const q = sig >>> sh;
  const rem = sig & ((1 << sh) - 1);
  const half = 1 << (sh - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

/** Bits of the positive value q·2^k, 1 <= q <= 2^24, exact (callers guarantee it is representable). */
export function encodeMag(q: number, k: number): number {
  const p = 31 - Math.clz32(q);
  const field = p + k + 127;
  if (field >= 1) {
    const mant = p <= 23 ? q << (23 - p) : q >>> (p - 23);
    return ((field << 23) | (mant & 0x7fffff)) >>> 0;
  }
  return (q << (k + 149)) >>> 0; // an f32 subnormal; k + 149 >= 0 for every caller
}

/** Mantissa low-bit mask and addend of QPyTorch's round_bitwise keeping `m` mantissa bits (m >= 23: none dropped). */
function roundAdd(m: number, stochastic: boolean, r: number): [mask: number, add: number] {
  const d = m >= 23 ? 0 : 23 - m; // lpc: d = 0 is the identity (QPyTorch: 1 << -1, a sign flip on x86)
  const mask = (1 << d) - 1;
  const add = stochastic ? r & mask : d === 0 ? 0 : 1 << (d - 1);
  return [mask, add];
}

/**
 * QPyTorch float_quantize(x, exp, man): bias 2^(exp-1)-1, subnormals, saturation to ±max for exp <= 7 (no inf/NaN
 * codes), ties away from zero, -0 -> +0. Below the normal range QPyTorch computes ((x + s) rounded) - s with
 * s = ±2^emin; here A = RNE(|x| / 2^(emin-23)) is that f32 addition and Q the rounded subnormal mantissa.
 */
export function qFloatBits(u: number, exp: number, man: number, stochastic: boolean, r: number): number {
  const [mask, add] = roundAdd(man, stochastic, r);
  const emin = 2 - (1 << (exp - 1));
  const emax = 1 << (exp - 1);
  const sign = (u & SIGN) >>> 0;
  const ef = (u >>> 23) & 0xff;
  if (ef < emin + 127) {
    const mf = u & 0x7fffff;
    const eu = ef === 0 ? 1 : ef;
    const sig = ef === 0 ? mf : mf | 0x800000;
    const a = rneShr(sig, emin + 127 - eu);
    const q = (a + add) & ~mask;
    if (q === 0) return 0;
    return (sign | encodeMag(q, emin - 23)) >>> 0;
  }
  const uq = ((u + add) & ~mask) >>> 0; // the carry may run into the exponent (next binade) or, for NaN, the sign
  if (uq !== 0 && ((uq & 0x7fffffff) >>> 23) > 127 + emax)
    return (sign | ((127 + emax) << 23) | (0x7fffff & ~mask)) >>> 0;
  return uq;
}

/** Bits 2^E·(2 − 2^(2−wl)) mantissa part: the top wl−2 mantissa bits set (QPyTorch clip_max_exponent). */
export function bfpMaxMan(wl: number): number {
  return wl < 2 ? 0 : (((1 << (wl - 2)) - 1) << (25 - wl)) & 0x7fffff;
}

/**
 * QPyTorch block_quantize for one element given `maxBits`, the bit pattern of max|x| over its block (only the
 * exponent field is used). QPyTorch adds base = 6·2^E (E = floor(log2 max)), bit-rounds the sum to wl mantissa
 * bits, subtracts base and clips to ±(2^(E+1) − 2^(E+2−wl)). In integers: the sum is T = 3·2^22 + RNE(x / 2^(E−21))
 * in units of 2^(E−21). Nearest rounds ties toward +∞ in x (sum is positive).
 */
export function qBfpBits(u: number, maxBits: number, wl: number, stochastic: boolean, r: number): number {
  const [mask, add] = roundAdd(wl, stochastic, r);
  const ef = (maxBits >>> 23) & 0xff;
  if (ef === 255) return QNAN; // Inf/NaN in the block: base = inf, every element becomes NaN (as QPyTorch)
  if (ef === 0) {
    // max is 0 or an f32 subnormal: base = 0, so x itself (-0 + 0 = +0) is bit-rounded and clipped to exponent 0
    const t = u === SIGN ? 0 : u;
    let tq = ((t + add) & ~mask) >>> 0;
    if (((tq >>> 23) & 0xff) > 0) tq = ((tq & SIGN) | bfpMaxMan(wl)) >>> 0;
    return tq;
  }
  const ex = (u >>> 23) & 0xff;
  const mf = u & 0x7fffff;
  const sig = ex === 0 ? mf : mf | 0x800000;
  const sh = ef + 2 - (ex === 0 ? 1 : ex); // >= 2 when |x| <= max
  const xm = rneShr(sig, sh < 0 ? 0 : sh);
  const neg = (u & SIGN) !== 0;
  const t = neg ? 0xc00000 - xm : 0xc00000 + xm;
  const tq = (t + add) & ~mask;
  const q = tq - 0xc00000;
  const qs = q < 0 ? SIGN : 0;
  const qm = q < 0 ? -q : q;
  if (qm >= 0x400000) return (qs | (ef << 23) | bfpMaxMan(wl)) >>> 0;
  if (qm === 0) return 0;
  return (qs | encodeMag(qm, ef - 148)) >>> 0;
}

/** Flags of qFixedBits (also the WGSL `mode` argument). */
export const FIXED_STOCHASTIC = 1;
export const FIXED_NOCLAMP = 2;
export const FIXED_SYM = 4;

/**
 * QPyTorch fixed_point_quantize(x, wl, fl, clamp, symmetric) on the CPU: k = nearbyint(f32(x·2^fl + 0.5) − 0.5)
 * (round half to even, plus three f32 artefacts reproduced here: odd |y| in [2^23, 2^24) moves up by one,
 * y = 0.5 + 2^−24 gives 0, and y in [−2^−26, 0] gives +0), clamp after rounding, NaN propagates, ±Inf and x·2^fl overflow clamp
 * (or give ±Inf without clamp). Stochastic (lpc's own, as QPyTorch's CPU stream cannot be reproduced):
 * |k| = floor(|y| + j·2^−24), j = r >>> 8 — unbiased, P(up) = frac(|y|) to 2^−24; the sign of x is kept.
 */
export function qFixedBits(u: number, wl: number, fl: number, mode: number, r: number): number {
  const ef = (u >>> 23) & 0xff;
  const mf = u & 0x7fffff;
  if (ef === 255 && mf !== 0) return (u | 0x400000) >>> 0;
  const sign = (u & SIGN) >>> 0;
  const stochastic = (mode & FIXED_STOCHASTIC) !== 0;
  const clamp = (mode & FIXED_NOCLAMP) === 0;
  const kmax = (1 << (wl - 1)) - 1;
  const lim = sign !== 0 && (mode & FIXED_SYM) === 0 ? kmax + 1 : kmax;
  if (ef + fl >= 255) {
    // y = x·2^fl overflows f32 (or x = ±Inf): clamps to the range end, or stays ±Inf
    if (!clamp) return (sign | 0x7f800000) >>> 0;
    return lim === 0 ? 0 : (sign | encodeMag(lim, -fl)) >>> 0;
  }
  const sig = ef === 0 ? mf : mf | 0x800000;
  const sh = 150 - (ef === 0 ? 1 : ef) - fl; // |y| = sig / 2^sh
  if (sh < 0 && !clamp) return u; // |y| >= 2^24 is an integer: unchanged
  let k: number;
  let negZero = false;
  if (sh <= 0) {
    k = sh < -7 ? 0xffffffff : sig << -sh; // saturates: anything >= 2^24 clamps
    if (sh === 0 && !stochastic && (sig & 1) === 1) k = sign !== 0 ? sig - 1 : sig + 1; // f32 (y + 0.5) tie
  } else if (!stochastic) {
    k = rneShr(sig, sh);
    if (sh === 24 && sig === 0x800001 && sign === 0) k = 0; // y = 0.5 + 2^-24: f32(y + 0.5) ties down to 1.0
    // +0 unless f32(y + 0.5) < 0.5, i.e. y < −2^−26
    negZero = sign !== 0 && (sh < 26 ? sig !== 0 : sh < 50 && sig > 1 << (sh - 26));
  } else {
    const ip = sh >= 32 ? 0 : sig >>> sh;
    const frac24 = sh <= 24 ? (sig & ((1 << sh) - 1)) << (24 - sh) : sh < 48 ? sig >>> (sh - 24) : 0;
    k = ip + ((frac24 + (r >>> 8)) >>> 24);
    negZero = sign !== 0;
  }
  if (clamp && k > lim) k = lim;
  if (k === 0) return negZero ? SIGN : 0;
  return (sign | encodeMag(k, -fl)) >>> 0;
}
