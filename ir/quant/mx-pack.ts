/**
 * MX tensors stored packed (`save=mx<…>`: saved activations; golden/MX.md §8), the CPU semantics of format_compress /
 * format_decompress with an MX format (codegen/kernels/mx-pack.ts is the same algorithm in WGSL):
 *
 * - the codes in the tensor's own (row-major) order, element i at bit i·bits of the code words — 32 elements fill
 *   exactly `bits` words, so element i = 32g + e sits in word g·bits + ⌊e·bits/32⌋ (a 6-bit code may straddle two
 *   words); no padding, so a partial block (3 input channels of an image along the channel axis) costs its own codes;
 * - then the scale bytes in block order (ir/quant/mx.ts mxBlockOf), four per word, byte b at bits (b mod 4)·8 of
 *   word codeWords + ⌊b/4⌋. (golden/MX.md §8 suggests blocks stored full size; that would spend 32 codes on a block
 *   of 3 channels.)
 *
 * Codes (the reference's, OCP's): FP elements sign | exponent (bias 2^(ebits−1) − 1, 0 = subnormal) | f mantissa
 * bits; integers two's complement k, except that the code −2^(bits−1) (−128, −8), which the symmetric quantizer never
 * produces, holds −0 (a negative that rounds to zero): packed storage is lossless, so a packed weight or momentum
 * buffer (passes/pack-state.ts) holds the same bits as an f32 one. Restored values are exactly
 * quantize(x, mx, nearest) (NaN blocks: scale byte 255).
 */
import { Format, MX_ELEMS, MxElem } from '../format.js';
import { SIGN, encodeMag } from './bits.js';
import { MX_NEAREST, floorLog2Bits, mxBlockOf, mxElemWord, mxLayoutOf, mxScaleBytesOf, qMxBits } from './mx.js';

type MxFormat = Extract<Format, { kind: 'mx' }>;

/** u32 words of a packed MX tensor: the codes of every element, then the scale bytes. */
export function mxPackWords(f: MxFormat, shape: readonly number[]): { words: number; codeWords: number } {
  const L = mxLayoutOf(f, shape), n = L.outer * L.len * L.inner;
  const codeWords = Math.ceil((n * MX_ELEMS[f.elem].bits) / 32);
  return { words: codeWords + Math.ceil(L.blocks / 4), codeWords };
}

/** Word and bit of element i's code: 32 elements per `bits` words. */
function codeAt(i: number, bits: number): { w: number; sh: number } {
  const e = i % 32, bit = e * bits;
  return { w: Math.floor(i / 32) * bits + (bit >>> 5), sh: bit & 31 };
}

/** The code of a quantized element y (f32 bits, on its block's grid) given the block's scale byte. */
export function mxEncode(y: number, sbyte: number, elem: MxElem): number {
  const { ebits, f, bits } = MX_ELEMS[elem];
  const a = y & 0x7fffffff, neg = (y & SIGN) !== 0;
  if (sbyte === 255 || a === 0) return neg ? 1 << (bits - 1) : 0; // integers: −0 as the unused code −2^(bits−1)
  const s = sbyte - 127, ef = a >>> 23, eu = ef === 0 ? 1 : ef;
  const sig = ef === 0 ? a : (a & 0x7fffff) | 0x800000;
  if (ebits === 0) {
    const k = sig >>> (150 + s - f - eu); // |y| = k·2^(s−f) exactly
    return (neg ? -k : k) & ((1 << bits) - 1);
  }
  const bias = (1 << (ebits - 1)) - 1;
  const pe = Math.max(floorLog2Bits(a) - s, 1 - bias);
  const k = sig >>> (150 + s + pe - f - eu); // < 2^(f+1); ≥ 2^f unless subnormal
  const code = k >= 1 << f ? ((pe + bias) << f) | (k - (1 << f)) : k;
  return (neg ? 1 << (bits - 1) : 0) | code;
}

/** The f32 bits of a code given its block's scale byte. */
export function mxDecode(c: number, sbyte: number, elem: MxElem): number {
  if (sbyte === 255) return 0x7fc00000;
  const { ebits, f, bits } = MX_ELEMS[elem];
  const s = sbyte - 127;
  if (ebits === 0) {
    const k = (c << (32 - bits)) >> (32 - bits);
    if (k === -(1 << (bits - 1))) return SIGN; // −0 (see the file comment)
    return k === 0 ? 0 : ((k < 0 ? SIGN : 0) | encodeMag(Math.abs(k), s - f)) >>> 0;
  }
  const sign = (c >>> (bits - 1)) & 1 ? SIGN : 0;
  const E = (c >>> f) & ((1 << ebits) - 1), M = c & ((1 << f) - 1), bias = (1 << (ebits - 1)) - 1;
  const k = E === 0 ? M : M | (1 << f), pe = E === 0 ? 1 - bias : E - bias;
  return k === 0 ? sign : (sign | encodeMag(k, s + pe - f)) >>> 0;
}

/** x (row-major, `shape`) → the packed words (nearest rounding). */
export function mxPack(x: Float32Array, shape: readonly number[], f: MxFormat): Uint32Array {
  const L = mxLayoutOf(f, shape), { bits } = MX_ELEMS[f.elem], { words, codeWords } = mxPackWords(f, shape);
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const sb = mxScaleBytesOf(u, L, { ...f, sched: undefined }), word = mxElemWord(f.elem); // its scale mode; a scheduled MXINT at its written width
  const out = new Uint32Array(words);
  for (let i = 0; i < u.length; i++) {
    const b = mxBlockOf(i, L), c = mxEncode(qMxBits(u[i], sb[b], word, MX_NEAREST, 0), sb[b], f.elem);
    const { w, sh } = codeAt(i, bits);
    out[w] |= c << sh;
    if (sh + bits > 32) out[w + 1] |= c >>> (32 - sh);
  }
  for (let b = 0; b < L.blocks; b++) out[codeWords + (b >>> 2)] |= sb[b] << ((b & 3) * 8);
  return out;
}

/** Packed words → the quantized f32 values. */
export function mxUnpack(words: Uint32Array, shape: readonly number[], f: MxFormat, out: { [i: number]: number; length: number }): void {
  const L = mxLayoutOf(f, shape), { bits } = MX_ELEMS[f.elem], { codeWords } = mxPackWords(f, shape);
  const mask = (1 << bits) - 1, v = new Float32Array(1), vb = new Uint32Array(v.buffer);
  for (let i = 0; i < out.length; i++) {
    const b = mxBlockOf(i, L), { w, sh } = codeAt(i, bits);
    let c = words[w] >>> sh;
    if (sh + bits > 32) c |= words[w + 1] << (32 - sh);
    vb[0] = mxDecode(c & mask, (words[codeWords + (b >>> 2)] >>> ((b & 3) * 8)) & 0xff, f.elem);
    out[i] = v[0];
  }
}
