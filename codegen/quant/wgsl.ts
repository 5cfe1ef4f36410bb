/**
 * WGSL for the quantizers: a transcription of ir/quant/bits.ts and ir/quant/rng.ts using only u32/i32 operations,
 * so kernels agree bit for bit with the CPU reference whatever the device does with f32 subnormals, NaN/Inf or
 * signed zeros. Bit widths are function arguments (u32), so a kernel can pass uniforms and one pipeline serves every
 * width (cyclic precision); the constant-literal defaults exist for kernels that bake them.
 *
 * bfp is two steps on every backend: a max-|x| reduction per block (the bfp kernels' block-max pass, CPU: blockMaxAbsBits) writing
 * u32 bit patterns, then the elementwise quantizer that takes the element's block max bits as an argument.
 */
import { Format, MX_ELEMS, Rounding } from '../../ir/format.js';
import { FIXED_NOCLAMP, FIXED_STOCHASTIC, FIXED_SYM } from '../../ir/quant/bits.js';
import { MX_NEAREST, MX_STOCHASTIC, mxElemWord, mxScaleMode } from '../../ir/quant/mx.js';

/** Named WGSL function sources; a module includes each at most once (see mergeWgslDecls). */
export const WGSL_QUANT_CHUNKS: Readonly<Record<string, string>> = {
  lpc_pcg4d: `
// pcg4d (Jarzynski & Olano 2020) plus a final xorshift; identical to ir/quant/rng.ts
fn lpc_pcg4d(v0: vec4<u32>) -> vec4<u32> {
  var v = v0 * 1664525u + 1013904223u;
  v.x += v.y * v.w; v.y += v.z * v.x; v.z += v.x * v.y; v.w += v.y * v.z;
  v ^= v >> vec4<u32>(16u);
  v.x += v.y * v.w; v.y += v.z * v.x; v.z += v.x * v.y; v.w += v.y * v.z;
  v ^= v >> vec4<u32>(16u);
  return v;
}`,
  lpc_random_bits: `
// element index takes word (index & 3) of the hash of counter index >> 2
fn lpc_random_bits(seed: u32, step: u32, tid: u32, index: u32) -> u32 {
  var h = lpc_pcg4d(vec4<u32>(seed, step, tid, index >> 2u));
  return h[index & 3u];
}`,
  lpc_rne_shr: `
// round half to even of sig / 2^sh (sig < 2^25); selects, not branches (the lanes of a SIMD CPU driver diverge)
fn lpc_rne_shr(sig: u32, sh: u32) -> u32 {
  let s = min(sh, 31u);
  let q = sig >> s;
  let rem = sig & ((1u << s) - 1u);
  let half = (1u << s) >> 1u;
  return select(q, q + 1u, half != 0u && (rem > half || (rem == half && (q & 1u) == 1u)));
}`,
  lpc_encode_mag: `
// bits of q * 2^k for 1 <= q <= 2^24 (exactly representable): q converts to f32 exactly, then the exponent moves
// by k (a CPU driver has no vector count-leading-zeros; this was a third of a bfp rounding pass on lavapipe)
fn lpc_encode_mag(q: u32, k: i32) -> u32 {
  let fb = bitcast<u32>(f32(i32(q)));
  let field = i32(fb >> 23u) + k;
  return select(q << u32(k + 149), fb + (bitcast<u32>(k) << 23u), field >= 1);
}`,
  lpc_round_mask: `
// low-bit mask of a bit rounding that keeps m mantissa bits; m >= 23 drops none (QPyTorch: 1 << -1 bug)
fn lpc_round_mask(m: u32) -> u32 {
  return (1u << select(23u - m, 0u, m >= 23u)) - 1u;
}
// nearest adds half of the dropped range (ties away from zero in magnitude), stochastic adds random low bits
fn lpc_round_add(mask: u32, stochastic: bool, r: u32) -> u32 {
  return select((mask + 1u) >> 1u, r & mask, stochastic);
}`,
  lpc_qbits_float: `
fn lpc_qbits_float(u: u32, e: u32, man: u32, stochastic: bool, r: u32) -> u32 {
  let mask = lpc_round_mask(man);
  let add = lpc_round_add(mask, stochastic, r);
  let emin = 2 - (1 << (e - 1u));
  let emax = 1 << (e - 1u);
  let sign = u & 0x80000000u;
  let ef = (u >> 23u) & 0xffu;
  if (i32(ef) < emin + 127) {
    let mf = u & 0x7fffffu;
    let sig = select(mf | 0x800000u, mf, ef == 0u);
    let a = lpc_rne_shr(sig, u32(emin + 127 - i32(max(ef, 1u))));
    let q = (a + add) & ~mask;
    if (q == 0u) { return 0u; }
    return sign | lpc_encode_mag(q, emin - 23);
  }
  let uq = (u + add) & ~mask;
  if (uq != 0u && ((uq & 0x7fffffffu) >> 23u) > u32(127 + emax)) {
    return sign | (u32(127 + emax) << 23u) | (0x7fffffu & ~mask);
  }
  return uq;
}
fn lpc_q_float(x: f32, e: u32, man: u32, stochastic: bool, r: u32) -> f32 {
  return bitcast<f32>(lpc_qbits_float(bitcast<u32>(x), e, man, stochastic, r));
}`,
  lpc_qbits_bfp: `
fn lpc_bfp_max_man(wl: u32) -> u32 {
  if (wl < 2u) { return 0u; }
  return (((1u << (wl - 2u)) - 1u) << (25u - wl)) & 0x7fffffu;
}
// maxbits: bit pattern of max|x| over the element's block (only its exponent field is used)
fn lpc_qbits_bfp(u: u32, maxbits: u32, wl: u32, stochastic: bool, r: u32) -> u32 {
  let mask = lpc_round_mask(wl);
  let add = lpc_round_add(mask, stochastic, r);
  let ef = (maxbits >> 23u) & 0xffu;
  if (ef == 255u) { return 0x7fc00000u; }
  if (ef == 0u) {
    var tq = (select(u, 0u, u == 0x80000000u) + add) & ~mask;
    if (((tq >> 23u) & 0xffu) > 0u) { tq = (tq & 0x80000000u) | lpc_bfp_max_man(wl); }
    return tq;
  }
  let ex = (u >> 23u) & 0xffu;
  let mf = u & 0x7fffffu;
  let sig = select(mf | 0x800000u, mf, ex == 0u);
  let sh = i32(ef) + 2 - i32(max(ex, 1u));
  let xm = lpc_rne_shr(sig, u32(max(sh, 0)));
  let t = select(0xc00000u + xm, 0xc00000u - xm, (u & 0x80000000u) != 0u);
  let q = i32((t + add) & ~mask) - 0xc00000;
  let qs = select(0u, 0x80000000u, q < 0);
  let qm = u32(abs(q));
  let enc = select(qs | lpc_encode_mag(qm, i32(ef) - 148), 0u, qm == 0u);
  return select(enc, qs | (ef << 23u) | lpc_bfp_max_man(wl), qm >= 0x400000u);
}
fn lpc_q_bfp(x: f32, maxbits: u32, wl: u32, stochastic: bool, r: u32) -> f32 {
  return bitcast<f32>(lpc_qbits_bfp(bitcast<u32>(x), maxbits, wl, stochastic, r));
}`,
  lpc_qbits_fixed: `
// mode: 1 stochastic, 2 noclamp, 4 symmetric (ir/quant/bits.ts FIXED_*)
fn lpc_qbits_fixed(u: u32, wl: u32, fl: u32, mode: u32, r: u32) -> u32 {
  let ef = (u >> 23u) & 0xffu;
  let mf = u & 0x7fffffu;
  if (ef == 255u && mf != 0u) { return u | 0x400000u; }
  let sign = u & 0x80000000u;
  let stochastic = (mode & 1u) != 0u;
  let clamp = (mode & 2u) == 0u;
  let kmax = (1u << (wl - 1u)) - 1u;
  let lim = select(kmax, kmax + 1u, sign != 0u && (mode & 4u) == 0u);
  if (ef + fl >= 255u) {
    if (!clamp) { return sign | 0x7f800000u; }
    if (lim == 0u) { return 0u; }
    return sign | lpc_encode_mag(lim, -i32(fl));
  }
  let sig = select(mf | 0x800000u, mf, ef == 0u);
  let sh = 150 - i32(max(ef, 1u)) - i32(fl);
  if (sh < 0 && !clamp) { return u; }
  var k: u32;
  var negz = false;
  if (sh <= 0) {
    k = select(sig << u32(-sh), 0xffffffffu, sh < -7);
    if (sh == 0 && !stochastic && (sig & 1u) == 1u) { k = select(sig + 1u, sig - 1u, sign != 0u); }
  } else if (!stochastic) {
    k = lpc_rne_shr(sig, u32(sh));
    if (sh == 24 && sig == 0x800001u && sign == 0u) { k = 0u; }
    if (sign != 0u) {
      if (sh < 26) { negz = sig != 0u; } else if (sh < 50) { negz = sig > (1u << u32(sh - 26)); }
    }
  } else {
    var ip = 0u;
    if (sh < 32) { ip = sig >> u32(sh); }
    var frac24 = 0u;
    if (sh <= 24) { frac24 = (sig & ((1u << u32(sh)) - 1u)) << u32(24 - sh); }
    else if (sh < 48) { frac24 = sig >> u32(sh - 24); }
    k = ip + ((frac24 + (r >> 8u)) >> 24u);
    negz = sign != 0u;
  }
  if (clamp && k > lim) { k = lim; }
  if (k == 0u) { return select(0u, 0x80000000u, negz); }
  return sign | lpc_encode_mag(k, -i32(fl));
}
fn lpc_q_fixed(x: f32, wl: u32, fl: u32, mode: u32, r: u32) -> f32 {
  return bitcast<f32>(lpc_qbits_fixed(bitcast<u32>(x), wl, fl, mode, r));
}`,
  lpc_qbits_mx: `
// floor(log2 |x|) of a positive finite |x| bit pattern; a subnormal's through its exact f32 conversion (no clz)
fn lpc_floor_log2(a: u32) -> i32 {
  let ef = a >> 23u;
  return select(i32(bitcast<u32>(f32(i32(a))) >> 23u) - 276, i32(ef) - 127, ef != 0u);
}
// the E8M0 byte of a block from its max |x| bits (ir/quant/mx.ts mxScaleByte); 255: NaN block
fn lpc_mx_scale(maxbits: u32, emax: u32) -> u32 {
  let m = maxbits & 0x7fffffffu;
  if (m >= 0x7f800000u) { return 255u; }
  let s = select(lpc_floor_log2(m), -126, m == 0u) - i32(emax);
  return select(u32(max(s, -127) + 127), 255u, s > 127);
}
// the E8M0 byte under scale mode smode (1 ceil, 2 even, 3 rceil; 0 floor = lpc_mx_scale) given the element word
// (ir/quant/mx.ts mxScaleByteMode); a subnormal max's significand through its exact f32 conversion
fn lpc_mx_scale_m(maxbits: u32, word: u32, smode: u32) -> u32 {
  let m = maxbits & 0x7fffffffu;
  let emax = (word >> 8u) & 255u;
  if (smode == 0u || m == 0u || m >= 0x7f800000u) { return lpc_mx_scale(m, emax); }
  let f = (word >> 4u) & 15u;
  let sig = select((bitcast<u32>(f32(i32(m))) & 0x7fffffu) | 0x800000u, (m & 0x7fffffu) | 0x800000u, m >= 0x800000u);
  var up = false;
  if (smode == 1u) { up = sig != 0x800000u; }
  else if (smode == 2u) { up = sig + (1u << (22u - f)) >= 0x1000000u; }
  else { up = sig > ((word >> 16u) << (23u - f)); }
  let s = lpc_floor_log2(m) + select(0, 1, up) - i32(emax);
  return select(u32(max(s, -127) + 127), 255u, s > 127);
}
// MXINT's word at width bits clamped to 2 … hi (a scheduled width; ir/quant/mx.ts mxIntWord)
fn lpc_mx_int_word(bits: u32, hi: u32) -> u32 {
  let b = clamp(bits, 2u, hi);
  return ((b - 2u) << 4u) | (((1u << (b - 1u)) - 1u) << 16u);
}
// word: ebits | f << 4 | emax << 8 | maxK << 16; mode: 0 nearest, 1 even, 2 floor, 3 stochastic (ir/quant/mx.ts)
fn lpc_qbits_mx(u: u32, sbyte: u32, word: u32, mode: u32, r: u32) -> u32 {
  if (sbyte == 255u) { return 0x7fc00000u; }
  let s = i32(sbyte) - 127;
  let ebits = word & 15u;
  let f = i32((word >> 4u) & 15u);
  let emax = i32((word >> 8u) & 255u);
  let maxk = word >> 16u;
  let a = u & 0x7fffffffu;
  let sign = u & 0x80000000u;
  let ef = a >> 23u;
  let eu = i32(max(ef, 1u));
  let sig = select(a, (a & 0x7fffffu) | 0x800000u, ef != 0u);
  let d = s - eu;
  if (a == 0u || d >= 24 || (d >= 0 && sig <= (1u << u32(d)))) { return 0u; }
  let emin = 2 - (1 << (max(ebits, 1u) - 1u));
  let pe = select(0, max(lpc_floor_log2(a) - s, emin), ebits != 0u);
  let sh = 150 + s + pe - f - eu;
  let shc = u32(clamp(sh, 1, 31));
  var k: u32;
  if (mode == 3u) {
    var frac24 = 0u;
    if (sh <= 24) { frac24 = (sig & ((1u << shc) - 1u)) << u32(24 - sh); }
    else if (sh < 48) { frac24 = sig >> u32(sh - 24); }
    k = select(0u, sig >> shc, sh < 32) + ((frac24 + (r >> 8u)) >> 24u);
  } else if (mode == 2u) {
    k = select(0u, sig >> shc, sh < 32);
  } else {
    k = select(select(0u, (sig + (1u << (shc - 1u))) >> shc, sh < 26), lpc_rne_shr(sig, u32(max(sh, 0))), mode == 1u);
    if (sh == 25 && sig == 0xffffffu) { k = 1u; }
  }
  if (pe == emax && k > maxk) { k = maxk; }
  if (k == 0u) { return sign; }
  let e = s + pe - f;
  if (i32(bitcast<u32>(f32(i32(k))) >> 23u) + e >= 255) { return sign | 0x7f800000u; }
  return sign | lpc_encode_mag(k, e);
}
fn lpc_q_mx(x: f32, sbyte: u32, word: u32, mode: u32, r: u32) -> f32 {
  return bitcast<f32>(lpc_qbits_mx(bitcast<u32>(x), sbyte, word, mode, r));
}`,
};

/** CPT's minmax quantizer (ir/quant/minmax.ts): each step one f32 operation in the CPU reference's order. */
const MINMAX_CHUNKS = {
  lpc_minmax_key: `
// f32 bits <-> u32 keys whose unsigned order is the float order (block min/max by atomicMax)
fn lpc_key(u: u32) -> u32 { return select(u | 0x80000000u, ~u, (u & 0x80000000u) != 0u); }
fn lpc_from_key(k: u32) -> u32 { return select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u); }`,
  lpc_q_minmax: `
// kmax = max key(x), kneg = max key(-x) over the block; bits = 0 is the identity
fn lpc_q_minmax(x: f32, kmax: u32, kneg: u32, bits: u32, stochastic: bool, r: u32) -> f32 {
  if (bits == 0u) { return x; }
  let mx = bitcast<f32>(lpc_from_key(kmax));
  let mn = -bitcast<f32>(lpc_from_key(kneg));
  return lpc_q_minmax_zr(x, mn, mx - mn, bits, stochastic, r);
}`,
  lpc_q_minmax_zr: `
// given zero point and range (CPT's qparams: a block's min and max - min, or QuantMeasure's running buffers)
fn lpc_q_minmax_zr(x: f32, zp: f32, range: f32, bits: u32, stochastic: bool, r: u32) -> f32 {
  if (bits == 0u) { return x; }
  let qmax = f32((1u << bits) - 1u);
  let scale = max(range / qmax, 1e-8f);
  var y = (x - zp) / scale;
  if (stochastic) { y = y + (ldexp(f32(r >> 8u), -24) - 0.5); }
  let q = round(clamp(y, 0.0, qmax));
  let qs = q * scale;
  return qs + zp;
}`,
};
Object.assign(WGSL_QUANT_CHUNKS as Record<string, string>, MINMAX_CHUNKS);

/** The WGSL functions each format's quantizer calls (with the rng's for stochastic rounding). */
export const DEPS: Record<string, string[]> = {
  minmax: ['lpc_minmax_key', 'lpc_q_minmax_zr', 'lpc_q_minmax'],
  fixed: ['lpc_encode_mag', 'lpc_rne_shr', 'lpc_qbits_fixed'],
  float: ['lpc_encode_mag', 'lpc_rne_shr', 'lpc_round_mask', 'lpc_qbits_float'],
  bfp: ['lpc_encode_mag', 'lpc_rne_shr', 'lpc_round_mask', 'lpc_qbits_bfp'],
  mx: ['lpc_encode_mag', 'lpc_rne_shr', 'lpc_qbits_mx'],
  rng: ['lpc_pcg4d', 'lpc_random_bits'],
};

/** WGSL expressions (u32) a call site passes; omitted widths default to the format's values as literals. */
export interface WgslQuantArgs {
  wl?: string; fl?: string; exp?: string; man?: string;
  /** fixed only: overrides the mode word (FIXED_* flags) */
  mode?: string;
  /** stochastic: the rng key words (typically uniforms) */
  seed?: string; step?: string; tensorId?: string;
  /** stochastic: the element's random word when the caller already hashed its counter (lpc_random_bits' value) */
  randomWord?: (index: string) => string;
  /** bfp: bit pattern of the element's block max|x| (e.g. `blockMax[lpc_block_index(i, …)]`) */
  maxAbsBits?: string;
  /** minmax: the width (u32; a uniform for scheduled formats) and the block's keys max key(x), max key(−x) */
  bits?: string; minmaxKeys?: [string, string];
  /** mx: the element's block scale byte (lpc_mx_scale of the block's max |x| bits) and the element word (mxElemWord) */
  mxScale?: string; mxElem?: string;
}

export interface WgslQuantizer {
  /** function names this quantizer needs; merge several with mergeWgslDecls */
  chunks: string[];
  /** the WGSL source of those functions */
  decls: string;
  /** an f32 expression quantizing f32 `expr`; `index` is the u32 flat element index (the RNG counter) */
  call(expr: string, index: string, args?: WgslQuantArgs): string;
}

/** WGSL source for the union of the quantizers' functions, each once. */
export function mergeWgslDecls(...qs: { chunks: string[] }[]): string {
  const names = [...new Set(qs.flatMap((q) => q.chunks))];
  return names.map((n) => WGSL_QUANT_CHUNKS[n]).join('\n');
}

const lit = (n: number) => `${n >>> 0}u`;

type MxFmt = Extract<Format, { kind: 'mx' }>;
/** The element word of an MX format: a literal, or a scheduled MXINT's from the step uniform's width (usesStep). */
export function mxWordWgsl(f: MxFmt): string {
  return f.sched ? `lpc_mx_int_word(stepu.bits_${f.sched}, ${lit(MX_ELEMS[f.elem].bits)})` : lit(mxElemWord(f.elem));
}
/** The scale byte of a block whose max |x| bits are `m` (its scale mode; floor through lpc_mx_scale). */
export function mxScaleWgsl(f: MxFmt, m: string): string {
  const smode = mxScaleMode(f.scale);
  return smode === 0 ? `lpc_mx_scale(${m}, ${lit(MX_ELEMS[f.elem].emax)})` : `lpc_mx_scale_m(${m}, ${mxWordWgsl(f)}, ${lit(smode)})`;
}

/** The quantizer for `fmt` with `rounding` as WGSL functions plus a call-site generator. */
export function wgslQuantFns(fmt: Format, rounding: Rounding): WgslQuantizer {
  if (fmt.kind === 'f32') return { chunks: [], decls: '', call: (e) => `(${e})` };
  const stoch = rounding === 'stochastic';
  const chunks = [...DEPS[fmt.kind], ...(stoch ? DEPS.rng : [])];
  const rbits = (index: string, a: WgslQuantArgs) => {
    if (!stoch) return '0u';
    if (a.randomWord) return a.randomWord(index);
    if (!a.seed || !a.step || !a.tensorId) throw new Error('stochastic WGSL quantizer needs seed, step and tensorId expressions');
    return `lpc_random_bits(${a.seed}, ${a.step}, ${a.tensorId}, ${index})`;
  };
  const call = (expr: string, index: string, a: WgslQuantArgs = {}): string => {
    switch (fmt.kind) {
      case 'fixed': {
        const mode = (stoch ? FIXED_STOCHASTIC : 0) | (fmt.noclamp ? FIXED_NOCLAMP : 0) | (fmt.sym ? FIXED_SYM : 0);
        return `lpc_q_fixed(${expr}, ${a.wl ?? lit(fmt.wl)}, ${a.fl ?? lit(fmt.fl)}, ${a.mode ?? lit(mode)}, ${rbits(index, a)})`;
      }
      case 'float':
        return `lpc_q_float(${expr}, ${a.exp ?? lit(fmt.exp)}, ${a.man ?? lit(fmt.man)}, ${stoch}, ${rbits(index, a)})`;
      case 'bfp':
        if (!a.maxAbsBits) throw new Error('bfp WGSL quantizer needs the block max bits expression (maxAbsBits)');
        return `lpc_q_bfp(${expr}, ${a.maxAbsBits}, ${a.wl ?? lit(fmt.wl)}, ${stoch}, ${rbits(index, a)})`;
      case 'minmax':
        if (!a.minmaxKeys) throw new Error('minmax WGSL quantizer needs the block key expressions (minmaxKeys)');
        return `lpc_q_minmax(${expr}, ${a.minmaxKeys[0]}, ${a.minmaxKeys[1]}, ${a.bits ?? lit(fmt.bits)}, ${stoch}, ${rbits(index, a)})`;
      case 'mx':
        if (!a.mxScale) throw new Error('mx WGSL quantizer needs the block scale byte expression (mxScale)');
        return `lpc_q_mx(${expr}, ${a.mxScale}, ${a.mxElem ?? mxWordWgsl(fmt)}, ${a.mode ?? lit(stoch ? MX_STOCHASTIC : MX_NEAREST)}, ${rbits(index, a)})`;
    }
  };
  return { chunks, decls: mergeWgslDecls({ chunks }), call };
}

/** WGSL expression: the block of flat index `i` for a BlockLayout held in u32 expressions (row-major). */
export function wgslBlockIndex(i: string, axisLen: string, inner: string): string {
  return `((${i} / ${inner}) % ${axisLen})`;
}
