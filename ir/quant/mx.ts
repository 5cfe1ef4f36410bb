/**
 * OCP Microscaling (MX) quantizers, the CPU spec (codegen/quant/wgsl.ts `lpc_qbits_mx` transcribes them line by line).
 * Semantics are microxcaling's `_quantize_mx` (golden/MX.md, commit 7bc41952) with one deliberate difference, the
 * OCP spec's exact shared exponent (docs/numerics.md "MX"):
 *
 * 1. Blocks: `block` consecutive elements along one axis, every other index apart; a partial last block behaves as
 *    the reference's zero padding does (padding cannot change a block's max).
 * 2. Scale (E8M0 byte): the block's max |x| m (bit patterns, NaN above Inf); Inf/NaN → byte 255 (the whole block
 *    NaN); m = 0 → E = −126; else E = floor(log2 m) exactly (the library's float32 log2 rounds up within 44 ulps
 *    below a power of two); s = E − emax clamped to ≥ −127.
 * 3. Elements: a = x/2^s (f32: rounds only below 2^−126; a = ±0 gives +0); float elements on the grid 2^(pe−f),
 *    pe = max(floor(log2|a|), emin), integers on 2^−f; k rounded (nearest: ties away, plus the half-step trap of the
 *    library's f32 t + 0.5), saturated to max_norm, sign restored (a nonzero x rounding to 0 gives −0 if negative),
 *    times 2^s (exact).
 */
import { Format, MX_ELEMS, MxElem, MxScale, mxInt, Rounding } from '../format.js';
import { encodeMag, rneShr, SIGN } from './bits.js';
import { randomBitsArray, RngKey, StepBits } from './rng.js';

type MxFormat = Extract<Format, { kind: 'mx' }>;

const QNAN = 0x7fc00000;

/** Rounding modes of qMxBits (also the WGSL `mode`): the reference's nearest (ties away), even, floor (toward 0), and
 *  lpc's stochastic. The precision spec reaches nearest and stochastic; even and floor reproduce golden vectors. */
export const MX_NEAREST = 0;
export const MX_EVEN = 1;
export const MX_FLOOR = 2;
export const MX_STOCHASTIC = 3;

/** An element format in one u32 (a uniform): ebits | f << 4 | emax << 8 | maxK << 16. */
export function mxElemWord(e: MxElem): number {
  const p = MX_ELEMS[e];
  return p.ebits | (p.f << 4) | (p.emax << 8) | (p.maxK << 16);
}

/** The word of MXINT at width `bits` clamped to 2 … hi (codegen/quant/wgsl.ts lpc_mx_int_word: a scheduled width). */
export function mxIntWord(bits: number, hi: number): number {
  const p = mxInt(Math.min(Math.max(bits, 2), hi));
  return (p.f << 4) | (p.maxK << 16);
}

/** The element word in force: a scheduled MXINT's width comes from the step (its own when no schedule runs). */
export function mxWordAt(f: MxFormat, bits?: StepBits): number {
  if (!f.sched) return mxElemWord(f.elem);
  const B = MX_ELEMS[f.elem].bits;
  return mxIntWord(bits ? bits[f.sched] : B, B);
}

/** Scale modes (torchao's ScaleCalculationMode; the WGSL `smode`): floor is the OCP spec's and the default. */
export const MX_SCALE_FLOOR = 0;
export const MX_SCALE_CEIL = 1;
export const MX_SCALE_EVEN = 2;
export const MX_SCALE_RCEIL = 3;
export const mxScaleMode = (s: MxScale | undefined): number => ({ floor: 0, ceil: 1, even: 2, rceil: 3 })[s ?? 'floor'];

/** floor(log2 |x|) of a positive finite |x| bit pattern, exactly (f32 subnormals included). */
export function floorLog2Bits(a: number): number {
  const ef = a >>> 23;
  return ef !== 0 ? ef - 127 : 31 - Math.clz32(a) - 149;
}

/**
 * The E8M0 byte s + 127 of a block whose max |x| bit pattern is `maxBits`; 255 (NaN) for Inf/NaN. With the exact
 * floor E ≤ 127, so s > 127 (the reference's NaN for a max within 44 ulps of FLT_MAX with integer elements) cannot
 * happen here.
 */
export function mxScaleByte(maxBits: number, emax: number): number {
  const m = maxBits & 0x7fffffff;
  if (m >= 0x7f800000) return 255;
  const s = (m === 0 ? -126 : floorLog2Bits(m)) - emax;
  return s > 127 ? 255 : Math.max(s, -127) + 127;
}

/**
 * The E8M0 byte under a scale mode (`word` the element's, for emax, f and maxK), from the block max m (bits) with E0 =
 * floor(log2 m) and sig its 24-bit significand: floor E = E0; ceil E0 + 1 unless m is a power of two; even: E0 of m
 * with its significand rounded half-up to the element's f fraction bits (torchao adds 2^(22−f) to the bit pattern);
 * rceil: the smallest E with m ≤ max_norm·2^(E−emax) (E0, or E0 + 1 when sig/2^23 > maxK/2^f), so the block max never
 * saturates. Then as mxScaleByte: s = E − emax, > 127 NaN, clamped to ≥ −127; zero blocks E = −126, Inf/NaN 255.
 */
export function mxScaleByteMode(maxBits: number, word: number, smode: number): number {
  const m = maxBits & 0x7fffffff;
  if (smode === MX_SCALE_FLOOR || m === 0 || m >= 0x7f800000) return mxScaleByte(m, (word >>> 8) & 255);
  const f = (word >>> 4) & 15, emax = (word >>> 8) & 255, maxK = word >>> 16;
  const sig = m >= 0x800000 ? (m & 0x7fffff) | 0x800000 : (m << (Math.clz32(m) - 8)) >>> 0;
  let E = floorLog2Bits(m);
  if (smode === MX_SCALE_CEIL) E += sig !== 0x800000 ? 1 : 0;
  else if (smode === MX_SCALE_EVEN) E += sig + (1 << (22 - f)) >= 1 << 24 ? 1 : 0;
  else E += sig > maxK * 2 ** (23 - f) ? 1 : 0;
  const s = E - emax;
  return s > 127 ? 255 : Math.max(s, -127) + 127;
}

/**
 * One element: `u` its bit pattern, `sbyte` its block's scale byte, `word` from mxElemWord, `r` 32 random bits
 * (stochastic only). |x| must not exceed its block's max. t = |x|/2^(s + pe − f) = sig/2^sh with sh ≥ 1, so every
 * rounding is an integer shift; stochastic is floor(t + j·2^−24), j the top 24 bits of r (as fixed point: P(up) =
 * frac(t) to 2^−24).
 */
export function qMxBits(u: number, sbyte: number, word: number, mode: number, r: number): number {
  if (sbyte === 255) return QNAN;
  const s = sbyte - 127;
  const ebits = word & 15, f = (word >>> 4) & 15, emax = (word >>> 8) & 255, maxK = word >>> 16;
  const a = u & 0x7fffffff;
  const sign = (u & SIGN) >>> 0;
  const ef = a >>> 23;
  const eu = ef === 0 ? 1 : ef;
  const sig = ef === 0 ? a : (a & 0x7fffff) | 0x800000;
  // f32(x / 2^s) is ±0 (→ +0) when |x| <= 2^(s−150), i.e. sig <= 2^(s − eu) (ties to even: to 0)
  const d = s - eu;
  if (a === 0 || d >= 24 || (d >= 0 && sig <= 1 << d)) return 0;
  const pe = ebits === 0 ? 0 : Math.max(floorLog2Bits(a) - s, 2 - (1 << (ebits - 1)));
  const sh = 150 + s + pe - f - eu;
  let k: number;
  if (mode === MX_STOCHASTIC) {
    const ip = sh >= 32 ? 0 : sig >>> sh;
    const frac24 = sh <= 24 ? (sig & ((1 << sh) - 1)) << (24 - sh) : sh < 48 ? sig >>> (sh - 24) : 0;
    k = ip + ((frac24 + (r >>> 8)) >>> 24);
  } else if (mode === MX_FLOOR) {
    k = sh >= 32 ? 0 : sig >>> sh;
  } else {
    k = mode === MX_EVEN ? rneShr(sig, sh) : sh >= 26 ? 0 : (sig + (1 << (sh - 1))) >>> sh;
    if (sh === 25 && sig === 0xffffff) k = 1; // the reference's f32(t + 0.5) = 1.0 for t = 0.5 − 2^−25
  }
  if (pe === emax && k > maxK) k = maxK; // saturate after rounding (never Inf)
  if (k === 0) return sign;
  const e = s + pe - f;
  if (31 - Math.clz32(k) + e + 127 >= 255) return (sign | 0x7f800000) >>> 0; // ≥ 2^128 (only with a larger s than lpc's)
  return (sign | encodeMag(k, e)) >>> 0;
}

/** The view of a tensor around the MX axis: [outer, len, inner], `nb` = ceil(len / block) blocks per line. */
export interface MxLayout { outer: number; len: number; inner: number; block: number; nb: number; blocks: number }

/** The axis an MX format quantizes along: its own, else the channel axis of a 4-D tensor (NCHW activations, OIHW
 *  weights: input channels, as the reference's Conv2d), else the last axis (the forward GEMM's reduction axis). */
export function mxAxis(f: MxFormat, shape: readonly number[]): number {
  return f.axis ?? (shape.length === 4 ? 1 : Math.max(0, shape.length - 1));
}

export function mxLayout(shape: readonly number[], axis: number, block: number): MxLayout {
  if (shape.length === 0 && axis === 0) return { outer: 1, len: 1, inner: 1, block, nb: 1, blocks: 1 };
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length)
    throw new Error(`mx axis ${axis} out of range for shape [${shape.join(',')}]`);
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  const len = shape[axis], nb = Math.ceil(len / block);
  return { outer, len, inner, block, nb, blocks: outer * nb * inner };
}

export function mxLayoutOf(f: MxFormat, shape: readonly number[]): MxLayout {
  return mxLayout(shape, mxAxis(f, shape), f.block);
}

/** Block of flat index i (row-major): (o·nb + ⌊l/block⌋)·inner + in. Scale bytes are stored in this order: the
 *  tensor's shape with the axis replaced by nb. */
export function mxBlockOf(i: number, L: MxLayout): number {
  const line = L.len * L.inner;
  const o = Math.floor(i / line), rest = i % line;
  return (o * L.nb + Math.floor(Math.floor(rest / L.inner) / L.block)) * L.inner + (rest % L.inner);
}

/** Scale bytes per block (step one): max |x| bits per block, then mxScaleByte (floor), or under another scale mode
 *  with the element word `sm.word`. */
export function mxScaleBytes(u: Uint32Array, L: MxLayout, emax: number, sm?: { word: number; mode: number }): Uint8Array {
  const maxBits = new Uint32Array(L.blocks);
  for (let i = 0; i < u.length; i++) {
    const b = mxBlockOf(i, L), a = u[i] & 0x7fffffff;
    if (a > maxBits[b]) maxBits[b] = a;
  }
  return Uint8Array.from(maxBits, (m) => (sm && sm.mode !== MX_SCALE_FLOOR ? mxScaleByteMode(m, sm.word, sm.mode) : mxScaleByte(m, emax)));
}

/** The scale bytes of a format (its scale mode; a scheduled width from `bits`). */
export function mxScaleBytesOf(u: Uint32Array, L: MxLayout, f: MxFormat, bits?: StepBits): Uint8Array {
  const word = mxWordAt(f, bits);
  return mxScaleBytes(u, L, (word >>> 8) & 255, { word, mode: mxScaleMode(f.scale) });
}

/**
 * MX quantization of x (row-major, `L` its layout) with an element format and a rounding mode (MX_*); `scales`
 * overrides the scale bytes (tests reproduce the reference's log2 with it). Stochastic bits: randomBits(seed, step,
 * tensorId, flat index), as every lpc quantizer.
 */
export function quantizeMxWith(
  x: Float32Array, L: MxLayout, elem: MxElem, mode: number, rng?: RngKey, scales?: Uint8Array,
): Float32Array {
  const word = mxElemWord(elem);
  return quantizeMxWord(x, L, word, mode, rng, scales ?? mxScaleBytes(new Uint32Array(x.buffer, x.byteOffset, x.length), L, MX_ELEMS[elem].emax));
}

/** quantizeMxWith given the element word and the scale bytes. */
export function quantizeMxWord(x: Float32Array, L: MxLayout, word: number, mode: number, rng: RngKey | undefined, sb: Uint8Array): Float32Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  let r: Uint32Array | null = null;
  if (mode === MX_STOCHASTIC) {
    if (!rng) throw new Error('quantize: stochastic rounding needs an rng key {seed, step, tensorId}');
    r = randomBitsArray(rng.seed >>> 0, rng.step >>> 0, rng.tensorId >>> 0, x.length);
  }
  const out = new Uint32Array(x.length);
  for (let i = 0; i < u.length; i++) out[i] = qMxBits(u[i], sb[mxBlockOf(i, L)], word, mode, r ? r[i] : 0);
  return new Float32Array(out.buffer);
}

/** The tensor quantizer behind quantize(): nearest or stochastic, the format's scale mode and (scheduled) width. */
export function quantizeMx(x: Float32Array, shape: readonly number[], fmt: MxFormat, rounding: Rounding, rng?: RngKey): Float32Array {
  const L = mxLayoutOf(fmt, shape);
  const sb = mxScaleBytesOf(new Uint32Array(x.buffer, x.byteOffset, x.length), L, fmt, rng?.bits);
  return quantizeMxWord(x, L, mxWordAt(fmt, rng?.bits), rounding === 'stochastic' ? MX_STOCHASTIC : MX_NEAREST, rng, sb);
}

/**
 * Bytes of an MX tensor stored packed (ir/quant/mx-pack.ts): 8, 6 or 4 bits per element in u32 words, then one scale
 * byte per block, four per word.
 */
export function mxPackedBytes(f: MxFormat, shape: readonly number[]): number {
  const L = mxLayoutOf(f, shape);
  return Math.ceil((L.outer * L.len * L.inner * MX_ELEMS[f.elem].bits) / 32) * 4 + Math.ceil(L.blocks / 4) * 4;
}
