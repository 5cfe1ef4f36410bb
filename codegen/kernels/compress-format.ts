/**
 * format_compress / format_decompress (save=fp16|bf16|float<e,m>|fixed<wl,fl>; CPU semantics in ir/quant/save.ts):
 * one invocation per packed word, the format's quantizer on the bit pattern (the same WGSL as the quantize
 * epilogues), the code built with integer operations; decompression writes f32 bit patterns through a u32 view, so
 * subnormals and NaN codes pass unchanged.
 */
import { numel } from '../../ir/types.js';
import { Kernel } from '../kernel.js';
import { WGSL_QUANT_CHUNKS, wgslQuantFns } from '../quant/wgsl.js';
import { Format } from '../../ir/format.js';
import { FIXED_SYM } from '../../ir/quant/bits.js';
import { saveFormatError, saveSlot, saveWords } from '../../ir/quant/save.js';
import { NodeCtx, epilogue, ewWorkgroup, f32Buf, makeKernel, u32Buf } from './builder.js';
import { attrsOf } from '../../ir/op-registry.js';
import { mxCompressKernels, mxDecompressKernels } from './mx-pack.js';

const f = (v: number): ['f32', number] => ['f32', v];

/** WGSL: the code of quantized bits q (ir/quant/save.ts encodeSaved), for a fixed format. */
function saveCodec(fmt: Format): { quant: string; encode: string; decode: string } {
  if (fmt.kind === 'fixed') {
    return {
      quant: `lpc_qbits_fixed(u, ${fmt.wl}u, ${fmt.fl}u, ${fmt.sym ? FIXED_SYM : 0}u, 0u)`,
      // x̂·2^fl is an exact integer (a multiple of 2^-fl times a power of two); NaN → 0
      encode: `
fn lpc_save_encode(q: u32) -> u32 {
  if ((q & 0x7fffffffu) > 0x7f800000u) { return 0u; }
  return bitcast<u32>(i32(bitcast<f32>(q) * P.pow_fl)) & ${(2 ** fmt.wl - 1) >>> 0}u;
}`,
      decode: `
fn lpc_save_decode(c: u32) -> u32 {
  let k = bitcast<i32>(c << ${32 - fmt.wl}u) >> ${32 - fmt.wl}u;
  return bitcast<u32>(f32(k) * P.inv_pow_fl);
}`,
    };
  }
  if (fmt.kind !== 'float') throw new Error(`save: ${fmt.kind} is not a save format`);
  const e = fmt.exp, m = fmt.man, n = 1 + e + m, bias = 2 ** (e - 1) - 1, emin = 1 - bias;
  const quant = `lpc_qbits_float(u, ${e}u, ${m}u, false, 0u)`;
  if (e === 8) {
    return {
      quant,
      encode: `
fn lpc_save_encode(q: u32) -> u32 {
  let c = q >> ${23 - m}u;
  return select(c, c | ${2 ** (m - 1)}u, (q & 0x7fffffffu) > 0x7f800000u);
}`,
      decode: `
fn lpc_save_decode(c: u32) -> u32 { return c << ${23 - m}u; }`,
    };
  }
  return {
    quant,
    encode: `
fn lpc_save_encode(q: u32) -> u32 {
  let sign = (q >> 31u) << ${n - 1}u;
  let fe = i32((q >> 23u) & 0xffu);
  let fm = q & 0x7fffffu;
  if (fe == 0) { return sign; }
  let u = fe - 127;
  if (u >= ${emin}) { return sign | (u32(u + ${bias}) << ${m}u) | (fm >> ${23 - m}u); }
  return sign | ((fm | 0x800000u) >> u32(${23 - m + emin} - u));
}`,
    decode: `
fn lpc_save_decode(c: u32) -> u32 {
  let sign = ((c >> ${n - 1}u) & 1u) << 31u;
  let E = (c >> ${m}u) & ${2 ** e - 1}u;
  let M = c & ${2 ** m - 1}u;
  if (E == 0u) {
    if (M == 0u) { return sign; }
    return sign | lpc_encode_mag(M, ${1 - bias - m});
  }
  return sign | ((E + ${127 - bias}u) << 23u) | (M << ${23 - m}u);
}`,
  };
}

function saveFmt(c: NodeCtx): Format {
  const { fmt } = attrsOf(c.node, 'format_compress', 'format_decompress');
  const err = saveFormatError(fmt);
  if (err) throw new Error(`${c.node.op}: ${err}`);
  return fmt;
}
const fixedParams = (fmt: Format): Record<string, ['f32', number]> => (fmt.kind === 'fixed' ? { pow_fl: f(2 ** fmt.fl), inv_pow_fl: f(2 ** -fmt.fl) } : {});

export function formatCompressKernels(c: NodeCtx): Kernel[] {
  if ((c.node.attrs.fmt as Format).kind === 'mx') return mxCompressKernels(c);
  const fmt = saveFmt(c), { slot, per } = saveSlot(fmt), n = numel(c.inTypes[0].shape), codec = saveCodec(fmt);
  return [makeKernel({
    name: 'format_compress', buffers: [u32Buf('X', c.node.inputs[0], 'read'), u32Buf('out', c.node.id, 'read_write')],
    params: { n, ...fixedParams(fmt) }, invocations: saveWords(fmt, n), workgroup: ewWorkgroup(c.variant),
    decls: wgslQuantFns(fmt, 'nearest').decls + codec.encode,
    body: `
  var word = 0u;
  for (var e = 0u; e < ${per}u; e++) {
    let i = t * ${per}u + e;
    if (i >= P.n) { break; }
    let u = X[i];
    word = word | ((lpc_save_encode(${codec.quant}) & ${slot === 8 ? '0xffu' : '0xffffu'}) << (e * ${slot}u));
  }
  out[t] = word;`,
  })];
}

export function formatDecompressKernels(c: NodeCtx): Kernel[] {
  if ((c.node.attrs.fmt as Format).kind === 'mx') return mxDecompressKernels(c);
  const fmt = saveFmt(c), { slot, per } = saveSlot(fmt), n = numel(c.node.type.shape), codec = saveCodec(fmt);
  // without an epilogue the f32 bit patterns are stored through a u32 view (NaN payloads and subnormals unchanged)
  const ep = epilogue(c), plain = !ep.kind;
  return [makeKernel({
    name: 'format_decompress', buffers: [u32Buf('W', c.node.inputs[0], 'read'), (plain ? u32Buf : f32Buf)('out', c.node.id, 'read_write')],
    params: { n, ...fixedParams(fmt) }, invocations: n, workgroup: ewWorkgroup(c.variant), epilogue: ep,
    decls: (fmt.kind === 'float' ? WGSL_QUANT_CHUNKS.lpc_encode_mag : '') + codec.decode,
    body: `
  let c = (W[t / ${per}u] >> ((t % ${per}u) * ${slot}u)) & ${slot === 8 ? '0xffu' : '0xffffu'};
  out[t] = ${plain ? 'lpc_save_decode(c)' : ep.q('bitcast<f32>(lpc_save_decode(c))', 't')};`,
  })];
}
