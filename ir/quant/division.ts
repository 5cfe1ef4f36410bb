/**
 * DIVISION (research/seeds.md §4): saved activations stored as a low-frequency part (k×k average pool, bf16) plus a
 * Q-bit stochastically rounded high-frequency residual with a bf16 min and scale per (sample, channel); ReLU saves a
 * 1-bit mask and max pooling its argmax in 8 bits. Everything is packed into u32 words.
 *
 * These are the CPU semantics of the compress/decompress ops (ir/ops/compress.ts); codegen/kernels/compress.ts is the same
 * algorithm in WGSL. Every float step is one correctly rounded f32 operation (Math.fround after each JS operation;
 * the division is done in float64 and rounded once, which for f32 operands is the correctly rounded f32 quotient),
 * and the WGSL side computes quotients with integers (lpc_div_rn), uses no multiply whose result feeds an add (so no
 * FMA contraction can change a result), and rounds with integers, so both give the same bits.
 *
 * Packed layout of a compressed [B,C,H,W] tensor (u32 words), every (b,c) plane starting on a word of its own so
 * that one workgroup can compress or decompress a plane alone (codegen/kernels/compress.ts):
 *   [0, B·C)                          per plane bc: bf16(scale) in bits 0–15, bf16(min) in bits 16–31
 *   [lfcOff, hfcOff)                  the low-frequency part, bf16, lfcPer = ⌈h·w/2⌉ words per plane: value q of
 *                                     plane bc (q = i·w + j) at word lfcOff + bc·lfcPer + ⌊q/2⌋, low half if q even
 *   [hfcOff, words)                   the residual codes, Q bits each, hfcPer = ⌈H·W·Q/32⌉ words per plane: pixel
 *                                     p of plane bc at word hfcOff + bc·hfcPer + ⌊p·Q/32⌋, bit (p·Q) mod 32
 * with k = block if H ≥ block else H (decided from H only, as DIVISION), h = ⌊H/k⌋, w = ⌊W/k⌋.
 *
 * Stochastic rounding: q = min(⌊y + j·2^−24⌋, 2^Q − 1) with y = (R − min)·scale and j the top 24 bits of the
 * project's counter-based generator (seed, step, tensor id = the compress node, element index): P(round up) =
 * frac(y) to 2^−24, the distribution of DIVISION's rint(y + u − 0.5), u ∈ (0, 1]; computed exactly with integers.
 * The clamp only matters when f32 rounding makes y reach 2^Q − 1 + ε (DIVISION relies on the 2e-6 slack instead).
 */
import { randomBits, RngKey } from './rng.js';

export interface DivisionLayout {
  B: number; C: number; H: number; W: number;
  /** Square pooling window, pooled map h×w. */
  k: number; h: number; w: number;
  bits: number;
  lfcOff: number; hfcOff: number; words: number;
  /** Words per plane of the low-frequency part and of the codes. */
  lfcPer: number; hfcPer: number;
}

/** Word counts of the packed form, or undefined when DIVISION keeps the tensor uncompressed (not 4-D, H = 1, W < k). */
export function divisionLayout(shape: readonly number[], block: number, bits: number): DivisionLayout | undefined {
  if (shape.length !== 4) return undefined;
  const [B, C, H, W] = shape;
  if (H <= 1) return undefined;
  const k = H >= block ? block : H;
  if (W < k || 32 % bits !== 0) return undefined;
  const h = Math.floor(H / k), w = Math.floor(W / k);
  const lfcPer = Math.ceil((h * w) / 2), hfcPer = Math.ceil((H * W * bits) / 32);
  const lfcOff = B * C, hfcOff = lfcOff + B * C * lfcPer;
  return { B, C, H, W, k, h, w, bits, lfcOff, hfcOff, words: hfcOff + B * C * hfcPer, lfcPer, hfcPer };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fr = Math.fround;
export function f32Bits(x: number): number { f32[0] = x; return u32[0]; }
export function bitsF32(b: number): number { u32[0] = b >>> 0; return f32[0]; }

/** torch's float → bfloat16 (round to nearest even), as the 16 high bits. NaN keeps a quiet NaN. */
export function bf16RneBits(x: number): number {
  const u = f32Bits(x);
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return (((u + 0x7fff + ((u >>> 16) & 1)) >>> 0) >>> 16) & 0xffff;
}
export const bf16ToF32 = (b: number) => bitsF32((b & 0xffff) << 16);

/** The correctly rounded f32 quotient; results below the normal range are flushed to +0 (the WGSL does the same). */
export function divRn(a: number, b: number): number {
  const q = fr(fr(a) / fr(b));
  return Math.abs(q) < 2 ** -126 ? 0 : q;
}

/** −0 → +0 (WGSL min/max may return either zero; the stored min must not depend on that). */
const canon0 = (x: number) => (x === 0 ? 0 : x);

/** The stochastic floor of y ≥ 0 with 24 random bits j: ⌊y + j·2^−24⌋, exactly, from y's bit pattern. */
export function stochFloor(y: number, j: number): number {
  const u = f32Bits(y);
  if (u & 0x80000000 || u === 0) return 0;
  const e = (u >>> 23) & 0xff;
  if (e === 0xff) return 0xffffffff;
  const sig = (u & 0x7fffff) | (e ? 0x800000 : 0);
  const s = 150 - (e || 1); // fractional bits
  if (s <= 0) return 0xffffffff; // ≥ 2^23: clamped by the caller
  let I: number, F: number;
  if (s <= 24) { I = sig >>> s; F = ((sig & ((1 << s) - 1)) << (24 - s)) >>> 0; }
  else { I = 0; F = s - 24 < 24 ? sig >>> (s - 24) : 0; }
  return I + (F >= 0x1000000 - j ? 1 : 0);
}

/** PyTorch's legacy nearest index: min(⌊dst·(in/out)⌋, in − 1) with the scale and product in f32. */
export function nearestSrc(dst: number, scale: number, inSize: number): number {
  return Math.min(Math.floor(fr(dst * scale)), inSize - 1);
}

/** Low-frequency part U at every position, from the packed bf16 values. */
function upsample(L: Uint16Array, l: DivisionLayout): (bc: number, y: number, x: number) => number {
  const sh = fr(l.h / l.H), sw = fr(l.w / l.W);
  return (bc, y, x) => bf16ToF32(L[(bc * l.h + nearestSrc(y, sh, l.h)) * l.w + nearestSrc(x, sw, l.w)]);
}

export function divisionCompress(x: ArrayLike<number>, shape: number[], block: number, bits: number, rng: RngKey): Uint32Array {
  const l = divisionLayout(shape, block, bits);
  if (!l) throw new Error(`division_compress: [${shape.join(', ')}] is not compressible`);
  const { C, H, W, k, h, w, B } = l;
  const out = new Uint32Array(l.words);
  const L = new Uint16Array(B * C * h * w);
  for (let bc = 0; bc < B * C; bc++)
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
      let s = 0;
      for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) s = fr(s + fr(x[(bc * H + i * k + ky) * W + j * k + kx]));
      L[(bc * h + i) * w + j] = bf16RneBits(divRn(s, k * k));
    }
  const hw = h * w;
  for (let p = 0; p < L.length; p++) {
    const bc = Math.floor(p / hw), q = p - bc * hw;
    out[l.lfcOff + bc * l.lfcPer + (q >> 1)] |= L[p] << ((q & 1) * 16);
  }
  const U = upsample(L, l);
  const levels = 2 ** bits - 1, eps = fr(2e-6);
  const R = new Float32Array(H * W);
  for (let bc = 0; bc < B * C; bc++) {
    let mn = Infinity, mx = -Infinity;
    for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) {
      const r = fr(fr(x[(bc * H + y) * W + xx]) - U(bc, y, xx));
      R[y * W + xx] = r;
      mn = Math.min(mn, r); mx = Math.max(mx, r);
    }
    mn = canon0(mn);
    const scale = divRn(levels, fr(fr(mx - mn) + eps));
    out[bc] = (bf16RneBits(scale) | (bf16RneBits(mn) << 16)) >>> 0;
    for (let p = 0; p < H * W; p++) {
      const i = bc * H * W + p;
      const yv = fr(fr(R[p] - mn) * scale);
      const q = Math.min(stochFloor(yv, randomBits(rng.seed, rng.step, rng.tensorId, i) >>> 8), levels);
      out[l.hfcOff + bc * l.hfcPer + Math.floor((p * bits) / 32)] |= q << ((p * bits) % 32);
    }
  }
  return out;
}

export function divisionDecompress(words: Uint32Array, shape: number[], block: number, bits: number, out: { [i: number]: number }): void {
  const l = divisionLayout(shape, block, bits);
  if (!l) throw new Error(`division_decompress: [${shape.join(', ')}] is not compressible`);
  const { B, C, H, W } = l;
  const L = new Uint16Array(B * C * l.h * l.w);
  const hw = l.h * l.w;
  for (let p = 0; p < L.length; p++) {
    const bc = Math.floor(p / hw), q = p - bc * hw;
    L[p] = (words[l.lfcOff + bc * l.lfcPer + (q >> 1)] >>> ((q & 1) * 16)) & 0xffff;
  }
  const U = upsample(L, l);
  const mask = 2 ** bits - 1;
  for (let bc = 0; bc < B * C; bc++) {
    const scale = bf16ToF32(words[bc] & 0xffff), mn = bf16ToF32(words[bc] >>> 16);
    for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) {
      const p = y * W + xx;
      const q = (words[l.hfcOff + bc * l.hfcPer + Math.floor((p * bits) / 32)] >>> ((p * bits) % 32)) & mask;
      out[bc * H * W + p] = fr(U(bc, y, xx) + fr(divRn(q, scale) + mn));
    }
  }
}

/** 1-bit mask of x > 0, 32 per word (element i at word i/32, bit i mod 32). */
export function maskCompress(x: ArrayLike<number>, upper?: number): Uint32Array {
  const out = new Uint32Array(Math.ceil(x.length / 32));
  const hi = upper ?? Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > 0 && x[i] < hi) out[i >> 5] |= 1 << (i & 31);
  return out;
}

/**
 * Max-pool argmax (first maximum in row-major window order, as maxpool_bwd) as ky·k + kx, 8 bits, 4 per word. With
 * `pad`, ky and kx count in the padded window and only in-bounds elements compete (padding is −∞, as maxpool).
 */
export function argmaxCompress(x: ArrayLike<number>, inShape: number[], k: number, stride: number, outShape: number[], pad = 0): Uint32Array {
  const [N, C, H, W] = inShape, [, , OH, OW] = outShape;
  const out = new Uint32Array(Math.ceil((N * C * OH * OW) / 4));
  for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    let best = -1, m = -Infinity;
    for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
      const iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      const v = x[(nc * H + iy) * W + ix];
      if (v > m || best < 0) { m = v; best = ky * k + kx; }
    }
    const o = (nc * OH + oy) * OW + ox;
    out[o >> 2] |= best << ((o & 3) * 8);
  }
  return out;
}
