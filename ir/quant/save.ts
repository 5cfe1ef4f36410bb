/**
 * Saved activations in a narrow number format (`save=fp16`, `save=bf16`, `save=float<e,m>`, `save=fixed<wl,fl>` in
 * the precision spec; passes/compress.ts): the value is rounded with the format's quantizer (ir/quant/bits.ts,
 * QPyTorch's semantics, round to nearest) and its code stored packed in u32 words — 4 per word for formats of at
 * most 8 bits, 2 per word for at most 16 (element i at word ⌊i/per⌋, bits (i mod per)·slot … +slot−1, slot = 32/per).
 * Decompression gives back exactly the quantized f32 value. These are the CPU semantics of format_compress /
 * format_decompress (ir/ops/compress.ts); codegen/kernels/compress.ts is the same integer algorithm in WGSL.
 *
 * Codes (n = 1 + e + m bits for float<e,m>, wl bits for fixed<wl,fl>):
 * - float<e,m>: the IEEE-754 layout — sign, e-bit biased exponent (bias 2^(e−1)−1), m-bit mantissa, exponent 0 for
 *   zero and subnormals. As in QPyTorch there are no Inf/NaN codes for e ≤ 7: the all-ones exponent holds finite
 *   numbers (fp16 = float<5,10> reaches 131008, not IEEE half's 65504 + Inf) and the quantizer saturates (NaN
 *   becomes ±max). So `save=fp16` codes are IEEE binary16 bits for |x| < 65536 and differ above. For e = 8 the code is
 *   the top n bits of the f32 pattern — `save=bf16` stores exactly torch's bfloat16 bits of the rounded value
 *   (Inf and NaN included; a NaN keeps a quiet NaN).
 * - fixed<wl,fl> (clamped; `sym` allowed, `noclamp` not — an unclamped value has no wl-bit code): the integer
 *   k = x̂·2^fl in wl-bit two's complement; NaN (which QPyTorch's fixed quantizer propagates) is stored as 0.
 */
import type { Format } from '../format.js';
import { FIXED_SYM, encodeMag, qFixedBits, qFloatBits } from './bits.js';

/** Bits of one element's code. */
export function saveFormatBits(fmt: Format): number {
  return fmt.kind === 'float' ? 1 + fmt.exp + fmt.man : fmt.kind === 'fixed' ? fmt.wl : 32;
}

/** Why a format cannot store saved activations, or undefined when it can. */
export function saveFormatError(fmt: Format): string | undefined {
  if (fmt.kind === 'mx') return undefined; // packed by ./mx-pack.ts
  if (fmt.kind !== 'float' && fmt.kind !== 'fixed') return `save=… takes a float or fixed format (fp16, bf16, float<e,m>, fixed<wl,fl>) or mx<…>, not ${fmt.kind}`;
  if (fmt.kind === 'fixed' && fmt.noclamp) return 'save=fixed<…> must clamp (an unclamped value has no wl-bit code); drop noclamp';
  if (fmt.kind === 'float' && fmt.exp > 8) return `save=float<${fmt.exp},${fmt.man}>: at most 8 exponent bits`;
  if (saveFormatBits(fmt) > 16) return `save=…: a ${saveFormatBits(fmt)}-bit format saves nothing packed in u32 words; use at most 16 bits`;
  return undefined;
}

/** Storage slot per element (8 or 16 bits) and codes per u32 word. */
export function saveSlot(fmt: Format): { slot: 8 | 16; per: 4 | 2 } {
  return saveFormatBits(fmt) <= 8 ? { slot: 8, per: 4 } : { slot: 16, per: 2 };
}

/** u32 words holding n elements. */
export function saveWords(fmt: Format, n: number): number {
  return Math.ceil(n / saveSlot(fmt).per);
}

function check(fmt: Format): void {
  const e = saveFormatError(fmt);
  if (e) throw new Error(e);
}

/** The format's rounding of f32 bits u (nearest), as bits. */
export function saveQuantizeBits(u: number, fmt: Format): number {
  if (fmt.kind === 'float') return qFloatBits(u, fmt.exp, fmt.man, false, 0);
  if (fmt.kind === 'fixed') return qFixedBits(u, fmt.wl, fmt.fl, fmt.sym ? FIXED_SYM : 0, 0);
  throw new Error(`save: ${fmt.kind} is not a save format`);
}

/** The code of an already quantized value (its f32 bits q). */
export function encodeSaved(q: number, fmt: Format): number {
  q >>>= 0;
  if (fmt.kind === 'fixed') {
    if ((q & 0x7fffffff) > 0x7f800000) return 0;
    const k = Math.fround(new Float32Array(new Uint32Array([q]).buffer)[0] * 2 ** fmt.fl); // exact: x̂ is a multiple of 2^−fl
    return k & ((1 << fmt.wl) - 1);
  }
  if (fmt.kind !== 'float') throw new Error(`save: ${fmt.kind} is not a save format`);
  const { exp: e, man: m } = fmt, n = 1 + e + m;
  if (e === 8) {
    const c = q >>> (23 - m);
    return (q & 0x7fffffff) > 0x7f800000 ? c | (1 << (m - 1)) : c; // NaN stays NaN (quiet bit; m ≥ 1)
  }
  const sign = (q >>> 31) << (n - 1);
  const fe = (q >>> 23) & 0xff, fm = q & 0x7fffff;
  if (fe === 0) return sign; // ±0 (format values with e ≤ 7 are never f32 subnormals)
  const bias = (1 << (e - 1)) - 1, emin = 1 - bias, u = fe - 127;
  if (u >= emin) return sign | ((u + bias) << m) | (fm >>> (23 - m));
  return sign | ((fm | 0x800000) >>> (23 - m + emin - u)); // subnormal in the format
}

/** The f32 bits of a code. */
export function decodeSaved(c: number, fmt: Format): number {
  if (fmt.kind === 'fixed') {
    const k = (c << (32 - fmt.wl)) >> (32 - fmt.wl); // sign-extend
    return new Uint32Array(new Float32Array([k * 2 ** -fmt.fl]).buffer)[0];
  }
  if (fmt.kind !== 'float') throw new Error(`save: ${fmt.kind} is not a save format`);
  const { exp: e, man: m } = fmt, n = 1 + e + m;
  if (e === 8) return (c << (23 - m)) >>> 0;
  const sign = ((c >>> (n - 1)) & 1) << 31;
  const E = (c >>> m) & ((1 << e) - 1), M = c & ((1 << m) - 1);
  const bias = (1 << (e - 1)) - 1;
  if (E === 0) return M === 0 ? sign >>> 0 : (sign | encodeMag(M, 1 - bias - m)) >>> 0;
  return (sign | ((E - bias + 127) << 23) | (M << (23 - m))) >>> 0;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** x (any shape, n elements) → packed codes. */
export function formatCompress(x: ArrayLike<number>, fmt: Format): Uint32Array {
  check(fmt);
  const { slot, per } = saveSlot(fmt), mask = slot === 8 ? 0xff : 0xffff;
  const out = new Uint32Array(saveWords(fmt, x.length));
  // f32 input: its exact bit patterns (a JS number would quiet a signalling NaN, which the kernels read as bits)
  const bits = x instanceof Float32Array ? new Uint32Array(x.buffer, x.byteOffset, x.length) : undefined;
  for (let i = 0; i < x.length; i++) {
    let u: number;
    if (bits) u = bits[i];
    else { f32[0] = x[i]; u = u32[0]; }
    const c = encodeSaved(saveQuantizeBits(u, fmt), fmt) & mask;
    out[Math.floor(i / per)] |= c << ((i % per) * slot);
  }
  return out;
}

/** Packed codes → the quantized f32 values (n of them). */
export function formatDecompress(words: Uint32Array, fmt: Format, n: number, out: { [i: number]: number }): void {
  check(fmt);
  const { slot, per } = saveSlot(fmt), mask = slot === 8 ? 0xff : 0xffff;
  for (let i = 0; i < n; i++) {
    u32[0] = decodeSaved((words[Math.floor(i / per)] >>> ((i % per) * slot)) & mask, fmt);
    out[i] = f32[0];
  }
}
