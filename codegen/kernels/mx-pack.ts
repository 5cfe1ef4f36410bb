/**
 * save=mx<…> in WGSL: format_compress / format_decompress with an MX format, the same integer algorithm and layout as
 * ir/quant/mx-pack.ts (codes in element order, 32 elements per `bits` words, then the scale bytes four per word).
 * Compression is two kernels so that no two invocations write one word: the scale bytes (an invocation per four
 * blocks, the four sharing a word), then the codes (an invocation per code word: the elements whose bits touch it,
 * each rounded with its block's byte). Decompression is one invocation per element. The element format is structure
 * (literals), the layout params.
 */
import { Format, MX_ELEMS } from '../../ir/format.js';
import { mxElemWord, mxLayoutOf } from '../../ir/quant/mx.js';
import { mxPackWords } from '../../ir/quant/mx-pack.js';
import { numel } from '../../ir/types.js';
import { mergeWgslDecls, mxScaleWgsl } from '../quant/wgsl.js';
import { Kernel } from '../kernel.js';
import { BufferDecl, NodeCtx, ceilDiv, epilogue, ewWorkgroup, makeKernel, nodeRef } from './builder.js';

type Mx = Extract<Format, { kind: 'mx' }>;
const buf = (name: string, id: number, elem: 'u32' | 'f32', access: BufferDecl['access']): BufferDecl => ({ name, ref: nodeRef(id), elem, access });

/** lpc_mx_encode(y, sb) and lpc_mx_decode(c, sb) for one element format (ir/quant/mx-pack.ts mxEncode / mxDecode). */
function codec(f: Mx): string {
  const { ebits, f: F, bits } = MX_ELEMS[f.elem], bias = (1 << Math.max(ebits - 1, 0)) - 1, mask = (1 << bits) - 1;
  const signCode = 1 << (bits - 1); // integers: −0 (ir/quant/mx-pack.ts)
  const head = `
fn lpc_mx_encode(y: u32, sb: u32) -> u32 {
  let a = y & 0x7fffffffu;
  let neg = (y & 0x80000000u) != 0u;
  if (sb == 255u || a == 0u) { return select(0u, ${signCode}u, neg); }
  let s = i32(sb) - 127;
  let ef = a >> 23u;
  let eu = i32(max(ef, 1u));
  let sig = select(a, (a & 0x7fffffu) | 0x800000u, ef != 0u);`;
  if (ebits === 0) return `${head}
  let k = sig >> u32(150 + s - ${F} - eu);
  return select(k, 0u - k, neg) & ${mask}u;
}
fn lpc_mx_decode(c: u32, sb: u32) -> u32 {
  if (sb == 255u) { return 0x7fc00000u; }
  let k = bitcast<i32>(c << ${32 - bits}u) >> ${32 - bits}u;
  if (k == 0) { return 0u; }
  if (k == ${-(1 << (bits - 1))}) { return 0x80000000u; }
  return select(0u, 0x80000000u, k < 0) | lpc_encode_mag(u32(abs(k)), i32(sb) - 127 - ${F});
}`;
  return `${head}
  let pe = max(lpc_floor_log2(a) - s, ${1 - bias});
  let k = sig >> u32(150 + s + pe - ${F} - eu);
  let code = select(k, (u32(pe + ${bias}) << ${F}u) | (k - ${1 << F}u), k >= ${1 << F}u);
  return select(0u, ${signCode}u, neg) | code;
}
fn lpc_mx_decode(c: u32, sb: u32) -> u32 {
  if (sb == 255u) { return 0x7fc00000u; }
  let sign = select(0u, 0x80000000u, (c & ${signCode}u) != 0u);
  let E = (c >> ${F}u) & ${(1 << ebits) - 1}u;
  let M = c & ${(1 << F) - 1}u;
  let k = select(M | ${1 << F}u, M, E == 0u);
  let pe = select(i32(E) - ${bias}, ${1 - bias}, E == 0u);
  if (k == 0u) { return sign; }
  return sign | lpc_encode_mag(k, i32(sb) - 127 + pe - ${F});
}`;
}

const layoutParams = (f: Mx, shape: readonly number[]) => {
  const L = mxLayoutOf(f, shape), W = mxPackWords(f, shape);
  return { L, W, params: { q_len: L.len, q_inner: L.inner, q_nb: L.nb, q_block: L.block, q_code_words: W.codeWords } };
};

/** WGSL: the block of flat index i (ir/quant/mx.ts mxBlockOf). */
const BLOCK_OF = `
fn lpc_mx_block(i: u32) -> u32 {
  let rest = i % (P.q_len * P.q_inner);
  return ((i / (P.q_len * P.q_inner)) * P.q_nb + (rest / P.q_inner) / P.q_block) * P.q_inner + rest % P.q_inner;
}`;

/** Below this many elements format_compress is one kernel that recomputes its blocks' scales (packed state updates). */
export const MX_COMPRESS_ONE_KERNEL = 1 << 16;

/** WGSL: the scale byte of block b (max |x| over its elements along the axis). */
const scaleOf = (f: Mx) => `
fn lpc_mx_block_scale(b: u32) -> u32 {
  let base = (b / (P.q_inner * P.q_nb)) * P.q_len * P.q_inner + b % P.q_inner;
  let l0 = ((b / P.q_inner) % P.q_nb) * P.q_block;
  var m = 0u;
  for (var l = l0; l < min(l0 + P.q_block, P.q_len); l++) { m = max(m, X[base + l * P.q_inner] & 0x7fffffffu); }
  return ${mxScaleWgsl({ ...f, sched: undefined }, 'm')};
}`;

/** Code word t: the elements whose bits touch it (group g = t / bits of 32 elements, its bits [32r, 32r + 32)). */
const codeWord = (bits: number, scaleOf: (b: string) => string) => `
  let r = t % ${bits}u;
  let i0 = (t / ${bits}u) * 32u;
  var word = 0u;
  var lastB = 0xffffffffu;
  var sb = 0u;
  for (var e = (r * 32u) / ${bits}u; e < min((r * 32u + 31u) / ${bits}u + 1u, 32u); e++) {
    let i = i0 + e;
    if (i >= P.q_n) { break; }
    let b = lpc_mx_block(i);
    if (b != lastB) { sb = ${scaleOf('b')}; lastB = b; }
    let c = lpc_mx_encode(lpc_qbits_mx(X[i], sb, P.q_mx_elem, 0u, 0u), sb);
    let bit = i32(e * ${bits}u) - i32(r * 32u);
    word = word | select(c << u32(max(bit, 0)), c >> u32(max(-bit, 0)), bit < 0);
  }
  out[t] = word;`;

/**
 * Two kernels (the scale bytes, then the codes reading them back), or for a small tensor — a packed weight's or
 * momentum's update (passes/pack-state.ts) — one: invocation t writes code word t, computing the scale byte of each
 * block it touches (up to 32 reads per element where blocks are strided), and scale word t. One dispatch less per
 * packed state and step; the extra reads are cheap below MX_COMPRESS_ONE_KERNEL elements.
 */
export function mxCompressKernels(c: NodeCtx): Kernel[] {
  const f = c.node.attrs.fmt as Mx, shape = c.inTypes[0].shape, { L, W, params } = layoutParams(f, shape), bits = MX_ELEMS[f.elem].bits;
  const io = [buf('X', c.node.inputs[0], 'u32', 'read'), buf('out', c.node.id, 'u32', 'read_write')];
  const chunks = mergeWgslDecls({ chunks: ['lpc_encode_mag', 'lpc_rne_shr', 'lpc_qbits_mx'] });
  const all = { ...params, q_blocks: L.blocks, q_n: numel(shape), q_mx_elem: mxElemWord(f.elem) };
  if (numel(shape) <= MX_COMPRESS_ONE_KERNEL) {
    const scaleWords = Math.ceil(L.blocks / 4);
    return [makeKernel({
      name: 'format_compress_mx_one', buffers: io, params: all,
      invocations: Math.max(W.codeWords, scaleWords), workgroup: ewWorkgroup(c.variant),
      decls: chunks + codec(f) + BLOCK_OF + scaleOf(f),
      body: `
  if (t < P.q_code_words) {${codeWord(bits, (b) => `lpc_mx_block_scale(${b})`).replace(/\n/g, '\n  ')}
  }
  if (t * 4u < P.q_blocks) {
    var sw = 0u;
    for (var b = t * 4u; b < min(t * 4u + 4u, P.q_blocks); b++) { sw = sw | (lpc_mx_block_scale(b) << ((b & 3u) * 8u)); }
    out[P.q_code_words + t] = sw;
  }`,
    })];
  }
  const scales = makeKernel({
    name: 'format_compress_mx_scales', buffers: io, params: { ...params, q_blocks: L.blocks },
    invocations: ceilDiv(L.blocks, 4), workgroup: ewWorkgroup(c.variant),
    decls: chunks + scaleOf(f),
    body: `
  var sw = 0u;
  for (var b = t * 4u; b < min(t * 4u + 4u, P.q_blocks); b++) { sw = sw | (lpc_mx_block_scale(b) << ((b & 3u) * 8u)); }
  out[P.q_code_words + t] = sw;`,
  });
  const codes = makeKernel({
    name: 'format_compress_mx', buffers: io, params: { ...params, q_n: numel(shape), q_mx_elem: mxElemWord(f.elem) },
    invocations: W.codeWords, workgroup: ewWorkgroup(c.variant),
    decls: chunks + codec(f) + BLOCK_OF,
    body: codeWord(bits, (b) => `(out[P.q_code_words + (${b} >> 2u)] >> ((${b} & 3u) * 8u)) & 0xffu`),
  });
  return [scales, codes];
}

export function mxDecompressKernels(c: NodeCtx): Kernel[] {
  const f = c.node.attrs.fmt as Mx, shape = c.node.type.shape, { params } = layoutParams(f, shape), bits = MX_ELEMS[f.elem].bits;
  // without an epilogue the f32 bit patterns are stored through a u32 view (NaN payloads and subnormals unchanged)
  const ep = epilogue(c), plain = !ep.kind;
  return [makeKernel({
    name: 'format_decompress_mx', buffers: [buf('W', c.node.inputs[0], 'u32', 'read'), buf('out', c.node.id, plain ? 'u32' : 'f32', 'read_write')],
    params, invocations: numel(shape), workgroup: ewWorkgroup(c.variant), epilogue: ep,
    decls: mergeWgslDecls({ chunks: ['lpc_encode_mag'] }) + codec(f).replace(/fn lpc_mx_encode[\s\S]*?\n}\n/, '') + BLOCK_OF,
    body: `
  let b = lpc_mx_block(t);
  let sb = (W[P.q_code_words + (b >> 2u)] >> ((b & 3u) * 8u)) & 0xffu;
  let bit = (t % 32u) * ${bits}u;
  let w = (t / 32u) * ${bits}u + (bit >> 5u);
  let sh = bit & 31u;
  var c = W[w] >> sh;
  if (sh + ${bits}u > 32u) { c = c | (W[w + 1u] << (32u - sh)); }
  let y = lpc_mx_decode(c & ${(1 << bits) - 1}u, sb);
  out[t] = ${plain ? 'y' : ep.q('bitcast<f32>(y)', 't')};`,
  })];
}
