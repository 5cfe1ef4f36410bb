/** Saved-activation compression (DIVISION, ReLU masks, max-pool argmax, narrow formats) and decompression. */
import type { Arr, AttrsOf } from '../op-registry.js';
import { def } from './epilogue.js';
import { f32, need, poolInfer, str } from './helpers.js';
import { numel, shapeEq, tensorType } from '../types.js';
import type { Format } from '../format.js';
import { argmaxCompress, divisionCompress, divisionDecompress, divisionLayout, maskCompress } from '../quant/division.js';
import { formatCompress, formatDecompress, saveFormatError, saveWords } from '../quant/save.js';
import { mxPack, mxPackWords, mxUnpack } from '../quant/mx-pack.js';

/** u32 words of a saved value: MX codes per block plus scale bytes, else the codes of every element. */
const packedWords = (fmt: Format, shape: number[]) => (fmt.kind === 'mx' ? mxPackWords(fmt, shape).words : saveWords(fmt, numel(shape)));

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const DIVISION_COMPRESS = { block: 'int', bits: 'int', with_input: 'bool' } as const;
const DIVISION_DECOMPRESS = { block: 'int', bits: 'int', shape: 'ints' } as const;
const MASK_COMPRESS = { upper: 'float' } as const;
const MASK_DECOMPRESS = { shape: 'ints' } as const;
const ARGMAX_COMPRESS = { k: 'int', stride: 'int', pad: 'int' } as const;
const MAXPOOL_BWD_ARGMAX = { k: 'int', stride: 'int', in_shape: 'ints', pad: 'int' } as const;
const FORMAT_COMPRESS = { fmt: 'format', role: 'string' } as const;
const FORMAT_DECOMPRESS = { fmt: 'format', shape: 'ints' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    division_compress: AttrsOf<typeof DIVISION_COMPRESS, 'with_input'>;
    division_decompress: AttrsOf<typeof DIVISION_DECOMPRESS>;
    mask_compress: AttrsOf<typeof MASK_COMPRESS, 'upper'>;
    mask_decompress: AttrsOf<typeof MASK_DECOMPRESS>;
    argmax_compress: AttrsOf<typeof ARGMAX_COMPRESS, 'pad'>;
    maxpool_bwd_argmax: AttrsOf<typeof MAXPOOL_BWD_ARGMAX, 'pad'>;
    format_compress: AttrsOf<typeof FORMAT_COMPRESS, 'role'>;
    format_decompress: AttrsOf<typeof FORMAT_DECOMPRESS>;
  }
}

// ---------- saved-activation compression (DIVISION; ir/quant/division.ts, passes/compress.ts) ----------
/** Packed u32 words in an interpreter value (float32 storage keeps the bit patterns; float64 holds them as numbers). */
function writeWords(out: Arr, w: Uint32Array): void {
  if (out instanceof Float32Array) new Uint32Array(out.buffer, out.byteOffset, out.length).set(w);
  else out.set(w);
}
function readWords(a: Arr): Uint32Array {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : Uint32Array.from(a);
}
const words = (n: number) => tensorType([n], 'u32');
/**
 * x [B,C,H,W] → packed low-frequency bf16 + `bits`-bit stochastic residual + bf16 min/scale per (b,c). `with_input`
 * (passes/fuse-compress.ts): its kernel also computes x (a bn_apply, whose node then has no kernel); same values.
 */
def({
  name: 'division_compress', arity: 1, attrs: DIVISION_COMPRESS, optional: ['with_input'],
  infer: (t, a) => {
    const l = divisionLayout(t[0].shape, a.block, a.bits);
    need(!!l, `division_compress: ${str(t[0].shape)} is not compressible (needs [B, C, H, W] with H > 1, W ≥ the window, bits dividing 32)`);
    return words(l!.words);
  },
  cpu: (ins, out, c) => writeWords(out, divisionCompress(ins[0], c.inTypes[0].shape, c.attrs.block, c.attrs.bits, c.rng)),
});
def({
  name: 'division_decompress', arity: 1, attrs: DIVISION_DECOMPRESS,
  infer: (t, a) => {
    const l = divisionLayout(a.shape, a.block, a.bits);
    need(!!l && t[0].dtype === 'u32' && t[0].shape[0] === l.words, `division_decompress: ${str(t[0].shape)} words do not hold ${str(a.shape)}`);
    return f32(a.shape);
  },
  cpu: (ins, out, c) => divisionDecompress(readWords(ins[0]), c.attrs.shape, c.attrs.block, c.attrs.bits, out),
});
/**
 * ReLU's saved form: the 1-bit mask x > 0, 32 per word; with `upper` (ReLU6's, 6) the mask 0 < x < upper, where
 * relu6's backward passes the error.
 */
def({
  name: 'mask_compress', arity: 1, attrs: MASK_COMPRESS, optional: ['upper'],
  infer: (t) => words(Math.ceil(numel(t[0].shape) / 32)),
  cpu: (ins, out, c) => writeWords(out, maskCompress(ins[0], c.attrs.upper)),
});
/** The mask as 1.0 / 0.0: relu_bwd(dy, mask) equals relu_bwd(dy, x), relu6_bwd(dy, mask) relu6_bwd(dy, y) for a
 *  mask with upper = 6 (1 lies strictly between 0 and 6). */
def({
  name: 'mask_decompress', arity: 1, attrs: MASK_DECOMPRESS,
  infer: (t, a) => {
    need(t[0].dtype === 'u32' && t[0].shape[0] === Math.ceil(numel(a.shape) / 32), `mask_decompress: ${str(t[0].shape)} words do not hold ${str(a.shape)}`);
    return f32(a.shape);
  },
  cpu: (ins, out) => {
    const w = readWords(ins[0]);
    for (let i = 0; i < out.length; i++) out[i] = (w[i >> 5] >>> (i & 31)) & 1;
  },
});
/**
 * Max pooling's saved form: the argmax offset ky·k + kx of each window (first maximum), 8 bits, 4 per word; with
 * `pad` (padded max pooling) the offset within the padded window, over its in-bounds elements only.
 */
def({
  name: 'argmax_compress', arity: 1, attrs: ARGMAX_COMPRESS, optional: ['pad'],
  infer: (t, a) => {
    need(a.k <= 16, `argmax_compress: a ${a.k}×${a.k} window does not fit 8 bits`);
    return words(Math.ceil(numel(poolInfer(t, a, 'maxPool').shape) / 4));
  },
  cpu: (ins, out, c) => writeWords(out, argmaxCompress(ins[0], c.inTypes[0].shape, c.attrs.k, c.attrs.stride,
    poolInfer(c.inTypes, c.attrs, 'maxPool').shape, c.attrs.pad ?? 0)),
});
/** maxpool_bwd from the saved argmax: dx[window argmax] += dy, windows in row-major order. */
def({
  name: 'maxpool_bwd_argmax', arity: 2, attrs: MAXPOOL_BWD_ARGMAX, optional: ['pad'],
  infer: (t, a) => {
    const o = poolInfer([f32(a.in_shape)], a, 'maxPool').shape;
    need(shapeEq(t[0].shape, o) && t[1].dtype === 'u32' && t[1].shape[0] === Math.ceil(numel(o) / 4), `maxpool_bwd_argmax: inputs do not match ${str(o)}`);
    return f32(a.in_shape);
  },
  cpu: (ins, out, c) => {
    const [dy] = ins, idx = readWords(ins[1]);
    const [N, C, H, W] = c.type.shape, [, , OH, OW] = c.inTypes[0].shape;
    const k = c.attrs.k, s = c.attrs.stride, p = c.attrs.pad ?? 0;
    out.fill(0);
    for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const o = (nc * OH + oy) * OW + ox, a = (idx[o >> 2] >>> ((o & 3) * 8)) & 0xff;
      out[(nc * H + oy * s - p + Math.floor(a / k)) * W + ox * s - p + (a % k)] += dy[o];
    }
  },
});
/** Saved activations in a narrow format (save=fp16|bf16|float<e,m>|fixed<wl,fl>; ir/quant/save.ts): nearest
 *  rounding, the codes packed 4 (≤ 8 bits) or 2 (≤ 16 bits) per u32 word; any shape. */
/** `role` (passes/pack-state.ts): the compression is that role's nearest quantizer (a packed state's update), reported
 *  to quantizer hooks (`lpc run --quant-stats`) as one. */
def({
  name: 'format_compress', arity: 1, attrs: FORMAT_COMPRESS, optional: ['role'],
  infer: (t, a) => {
    const e = saveFormatError(a.fmt);
    need(!e, `format_compress: ${e}`);
    return words(packedWords(a.fmt, t[0].shape));
  },
  cpu: (ins, out, c) => {
    const fmt = c.attrs.fmt;
    if (fmt.kind !== 'mx') return writeWords(out, formatCompress(ins[0], fmt));
    const w = mxPack(ins[0] instanceof Float32Array ? ins[0] : Float32Array.from(ins[0]), c.inTypes[0].shape, fmt);
    writeWords(out, w);
    if (c.attrs.role !== undefined && c.onQuantize) {
      const q = new Float32Array(ins[0].length);
      mxUnpack(w, c.inTypes[0].shape, fmt, q);
      c.onQuantize(ins[0], q);
    }
  },
});
def({
  name: 'format_decompress', arity: 1, attrs: FORMAT_DECOMPRESS,
  infer: (t, a) => {
    const e = saveFormatError(a.fmt);
    need(!e, `format_decompress: ${e}`);
    const n = numel(a.shape);
    need(t[0].dtype === 'u32' && t[0].shape[0] === packedWords(a.fmt, a.shape), `format_decompress: ${str(t[0].shape)} words do not hold ${str(a.shape)}`);
    return f32(a.shape);
  },
  cpu: (ins, out, c) => {
    const fmt = c.attrs.fmt;
    if (fmt.kind === 'mx') mxUnpack(readWords(ins[0]), c.attrs.shape, fmt, out);
    else formatDecompress(readWords(ins[0]), fmt, out.length, out);
  },
});
