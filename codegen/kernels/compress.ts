/**
 * Kernels of the saved-activation compression ops (DIVISION; CPU semantics in ir/quant/division.ts, which this
 * transcribes). Bit-exact with the CPU: quotients through lpc_div_rn (integer long division, correctly rounded),
 * bf16 and the stochastic floor on bit patterns, and no multiply whose result feeds an add (nothing an FMA could
 * contract). Packed values are u32 words.
 *
 * division_compress and division_decompress are one dispatch each, a workgroup per (b,c) plane (the packed layout
 * gives every plane words of its own, ir/quant/division.ts). The decompressions store through the node's epilogue
 * (folded post-ops, quantizer), like every other generator. The masks and pooling windows are in compress-masks.ts,
 * the saved formats (save=fp16|bf16|float|fixed) in compress-format.ts.
 */
import { numel } from '../../ir/types.js';
import { divisionLayout } from '../../ir/quant/division.js';
import { Kernel } from '../kernel.js';
import { WGSL_QUANT_CHUNKS } from '../quant/wgsl.js';
import { Graph } from '../../ir/graph.js';
import { NO_EPILOGUE, NodeCtx, ceilDiv, epilogue, f32Buf, makeKernel, nodeCtx, u32Buf } from './builder.js';
import { BN_APPLY } from './batchnorm.js';
import { attrsOf } from '../../ir/op-registry.js';

/** The node's attributes (ir/ops/compress.ts). */
const divisionAttrs = (c: NodeCtx) => attrsOf(c.node, 'division_compress', 'division_decompress');

const DIV_RN = `
// correctly rounded a / b (RNE) by integer long division; results below the normal range are +0 (as divRn)
fn lpc_div_rn(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let sign = (ua ^ ub) & 0x80000000u;
  var ea = i32((ua >> 23u) & 0xffu);
  var eb = i32((ub >> 23u) & 0xffu);
  var ma = ua & 0x7fffffu;
  var mb = ub & 0x7fffffu;
  if (ea == 0 && ma == 0u) { return 0.0; }
  if (ea == 0) { let lz = i32(countLeadingZeros(ma)) - 8; ma = ma << u32(lz); ea = 1 - lz; } else { ma = ma | 0x800000u; }
  if (eb == 0) { let lz = i32(countLeadingZeros(mb)) - 8; mb = mb << u32(lz); eb = 1 - lz; } else { mb = mb | 0x800000u; }
  var e = ea - eb + 127;
  if (ma < mb) { ma = ma << 1u; e = e - 1; }
  var r = ma;
  var q = 0u;
  for (var i = 0u; i < 25u; i++) {
    q = q << 1u;
    if (r >= mb) { r = r - mb; q = q | 1u; }
    r = r << 1u;
  }
  var m = q >> 1u;
  if ((q & 1u) == 1u && (r != 0u || (m & 1u) == 1u)) { m = m + 1u; }
  if (m == 0x1000000u) { m = m >> 1u; e = e + 1; }
  if (e <= 0) { return 0.0; }
  if (e >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
  return bitcast<f32>(sign | (u32(e) << 23u) | (m & 0x7fffffu));
}`;

const BF16 = `
// torch float -> bfloat16 (round to nearest even), the 16 high bits
fn lpc_bf16_rne(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return ((u >> 16u) | 0x40u) & 0xffffu; }
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}
fn lpc_bf16_f32(b: u32) -> f32 { return bitcast<f32>((b & 0xffffu) << 16u); }`;

const STOCH_FLOOR = `
// floor(y + j·2^-24) for y >= 0, exactly (ir/quant/division.ts stochFloor)
fn lpc_stoch_floor(y: f32, j: u32) -> u32 {
  let u = bitcast<u32>(y);
  if ((u & 0x80000000u) != 0u || u == 0u) { return 0u; }
  let e = (u >> 23u) & 0xffu;
  if (e == 0xffu) { return 0xffffffffu; }
  let sig = (u & 0x7fffffu) | select(0u, 0x800000u, e != 0u);
  let s = 150 - i32(max(e, 1u));
  if (s <= 0) { return 0xffffffffu; }
  var I = 0u;
  var F = 0u;
  if (s <= 24) { I = sig >> u32(s); F = (sig & ((1u << u32(s)) - 1u)) << u32(24 - s); }
  else if (s - 24 < 24) { F = sig >> u32(s - 24); }
  return I + select(0u, 1u, F >= 0x1000000u - j);
}`;

/** PyTorch's legacy nearest source index of `dst` (scale = source size / destination size). */
const SRC_FN = 'fn lpc_src(dst: u32, scale: f32, n: u32) -> u32 { return min(u32(floor(f32(dst) * scale)), n - 1u); }\n';

/**
 * The plane's low-frequency map upsampled by PyTorch's legacy nearest index: the map's h·w values as f32 in workgroup
 * memory (lpc_lf, filled per plane), and every row's and column's source index (lpc_sy: row·w, lpc_sx), the same for
 * every plane, filled by lfcIndex(). The value at pixel (y, x) is then lpc_lf[lpc_sy[y] + lpc_sx[x]]: two workgroup
 * loads instead of a float multiply, floor and bf16 decode per pixel and coordinate.
 */
function lfcTable(l: { H: number; W: number; h: number; w: number }): string {
  const bytes = 4 * (l.h * l.w + l.H + l.W + 2 * PLANE_WG);
  // WebGPU's guaranteed maxComputeWorkgroupStorageSize: every device compiles it
  if (bytes > 16384) throw new Error(`division: a ${l.H}×${l.W} plane needs ${bytes} bytes of workgroup memory, more than the 16384 every device has`);
  return `var<workgroup> lpc_lf: array<f32, ${l.h * l.w}>;
var<workgroup> lpc_sy: array<u32, ${l.H}>;
var<workgroup> lpc_sx: array<u32, ${l.W}>;
${SRC_FN}`;
}
const lfcIndex = () => `
  for (var y = lid; y < P.hh; y += ${PLANE_WG}u) { lpc_sy[y] = lpc_src(y, P.sh, P.lh) * P.lw; }
  for (var x = lid; x < P.ww; x += ${PLANE_WG}u) { lpc_sx[x] = lpc_src(x, P.sw, P.lw); }`;
const LFC_AT = (y: string, x: string) => `lpc_lf[lpc_sy[${y}] + lpc_sx[${x}]]`;
/** WGSL: `b`, the bf16 average of low-frequency block q of the plane at xb (rows, then columns, ascending, as the
 *  CPU sums), and its f32 value into lpc_lf[q]. */
const lfcBlock = (X: string) => `
    let i = q / P.lw;
    let j = q % P.lw;
    var s = 0.0;
    for (var ky = 0u; ky < P.k; ky++) {
      let row = xb + (i * P.k + ky) * P.ww + j * P.k;
      for (var kx = 0u; kx < P.k; kx++) { s = s + ${X}[row + kx]; }
    }
    let b = lpc_bf16_rne(lpc_div_rn(s, f32(P.k * P.k)));
    lpc_lf[q] = lpc_bf16_f32(b);`;

/**
 * CPU drivers: a plane per invocation instead of per workgroup (PLANE_LANES planes side by side in SIMD lanes),
 * walking it sequentially: no barriers and no reduction tree, which cost more than the work on those drivers. The
 * plane's low-frequency map and the column indices live in private arrays then; planes with bigger maps keep the
 * workgroup layout. Same arithmetic in the same order per value, so the same bits.
 */
const PLANE_LANES = 8;
const planePerInvocation = (c: NodeCtx, l: { h: number; w: number; W: number }) => c.variant === 'cpu-driver' && l.h * l.w <= 1024 && l.W <= 1024;
/** The plane's tables as function-scope arrays (one per invocation): column → map column, and the map's values. */
const privateTables = (l: { h: number; w: number; W: number }) => `
  var lpc_sx: array<u32, ${l.W}>;
  var lpc_lf: array<f32, ${l.h * l.w}>;
  for (var x = 0u; x < P.ww; x++) { lpc_sx[x] = lpc_src(x, P.sw, P.lw); }`;

const f = (v: number): ['f32', number] => ['f32', v];

/** Invocations per plane: one workgroup compresses or decompresses one (b,c) plane. */
const PLANE_WG = 64;

function layoutParams(shape: number[], block: number, bits: number) {
  const l = divisionLayout(shape, block, bits);
  if (!l) throw new Error(`division: [${shape.join(', ')}] is not compressible`);
  return {
    l,
    params: { planes: l.B * l.C, dx: PLANE_WG % l.W, dy: Math.floor(PLANE_WG / l.W), hh: l.H, ww: l.W, lh: l.h, lw: l.w, k: l.k, lfc_off: l.lfcOff, hfc_off: l.hfcOff,
      lfc_per: l.lfcPer, hfc_per: l.hfcPer, bits: l.bits, sh: f(Math.fround(l.h / l.H)), sw: f(Math.fround(l.w / l.W)) },
  };
}

/** (py, px) of pixel p → of pixel p + PLANE_WG, without dividing (dy, dx: PLANE_WG / W and PLANE_WG mod W). */
const STEP_YX = 'px += P.dx; py += P.dy; if (px >= P.ww) { px -= P.ww; py += 1u; }';

/** The plane a workgroup owns (a spilled grid's extra groups redo the last plane: same words, same values). */
const PLANE = `
  let a = min(t / ${PLANE_WG}u, P.planes - 1u);
  let lid = t % ${PLANE_WG}u;
  let hw = P.hh * P.ww;`;

/** The division_compress node whose kernel computes node `id` (`with_input`, passes/fuse-compress.ts), if any. */
export function computedBy(g: Graph, id: number): number | undefined {
  for (let j = id + 1; j < g.nodes.length; j++) {
    const n = g.nodes[j];
    if (n.op === 'division_compress' && n.attrs.with_input && n.inputs[0] === id) return j;
  }
  return undefined;
}

/**
 * One dispatch, a workgroup per plane: (1) the plane's bf16 low-frequency words (two block averages per word), their
 * f32 values into lpc_lf; (2) after a barrier the residual's min and max, reduced in workgroup memory → the f32 min
 * and scale, the bf16 pair into the stats word; (3) the residual codes, 32/Q per word, stochastic bits keyed by the
 * node id and the flat NCHW index i (word i & 3 of the hash of counter i >> 2, lpc_random_bits: one hash serves four
 * consecutive codes).
 */
export function divisionCompressKernels(c: NodeCtx): Kernel[] {
  const { l, params } = layoutParams(c.inTypes[0].shape, divisionAttrs(c).block, divisionAttrs(c).bits);
  const WORDS = u32Buf('WORDS', c.node.id, 'read_write');
  const reduce = `if (lid < s) { lpc_mn[lid] = min(lpc_mn[lid], lpc_mn[lid + s]); lpc_mx[lid] = max(lpc_mx[lid], lpc_mx[lid + s]); }`;
  // with_input: the bn_apply producing X runs here, a plane at a time (its post-ops and elementwise quantizer
  // through its own epilogue), stores its values in its own buffer Y and the compression reads them back
  const p = c.node.attrs.with_input ? nodeCtx(c.g, c.node.inputs[0], c.variant) : undefined;
  if (p && p.node.op !== 'bn_apply') throw new Error(`division_compress %${c.node.id}: with_input computes a bn_apply, not '${p.node.op}'`);
  const ep = p ? epilogue(p) : NO_EPILOGUE;
  if (ep.buffers?.some((b) => b.ref.kind === 'scratch')) throw new Error(`division_compress %${c.node.id}: the input's quantizer needs the whole tensor first`);
  const X = p ? 'Y' : 'X';
  const common = {
    name: p ? 'bn_apply_division_compress' : 'division_compress',
    buffers: p ? [...BN_APPLY.buffers(p), f32Buf('Y', p.node.id, 'read_write'), WORDS] : [f32Buf('X', c.node.inputs[0], 'read'), WORDS],
    params: { ...params, ...(p ? BN_APPLY.params(p) : {}), per: 32 / l.bits, levels: f(2 ** l.bits - 1), levels_u: 2 ** l.bits - 1, res_eps: f(2e-6), tid: c.node.id },
    usesStep: true, epilogue: ep,
    fns: DIV_RN + BF16 + STOCH_FLOOR + (ep.decls.includes('fn lpc_pcg4d') ? '' : WGSL_QUANT_CHUNKS.lpc_pcg4d),
  };
  if (planePerInvocation(c, l)) {
    return [makeKernel({
      ...common, invocations: l.B * l.C, workgroup: PLANE_LANES, decls: SRC_FN + common.fns,
      body: `
  let a = t;
  let hw = P.hh * P.ww;
  let xb = a * hw;${p ? `
  let ch = a % P.c;${BN_APPLY.pre}
  for (var i = xb; i < xb + hw; i++) { Y[i] = ${ep.q(BN_APPLY.value('X[i]'), 'i')}; }` : ''}${privateTables(l)}
  for (var q = 0u; q < P.lh * P.lw; q++) {${lfcBlock(X)}
    let wi = P.lfc_off + a * P.lfc_per + (q >> 1u);
    if ((q & 1u) == 0u) { WORDS[wi] = b; } else { WORDS[wi] = WORDS[wi] | (b << 16u); }
  }
  var mn = ${X}[xb] - lpc_lf[lpc_sx[0]];
  var mx = mn;
  for (var y = 0u; y < P.hh; y++) {
    let ro = lpc_src(y, P.sh, P.lh) * P.lw;
    let xr = xb + y * P.ww;
    for (var x = 0u; x < P.ww; x++) {
      let r = ${X}[xr + x] - lpc_lf[ro + lpc_sx[x]];
      mn = min(mn, r);
      mx = max(mx, r);
    }
  }
  var m0 = mn;
  if (bitcast<u32>(m0) == 0x80000000u) { m0 = 0.0; }
  let scale = lpc_div_rn(P.levels, (mx - m0) + P.res_eps);
  WORDS[a] = lpc_bf16_rne(scale) | (lpc_bf16_rne(m0) << 16u);
  var qy = 0u;
  var qx = 0u;
  var ro = 0u;
  var word = 0u;
  var lpc_h = vec4<u32>(0u);
  for (var pp = 0u; pp < hw; pp++) {
    let i = xb + pp;
    if (pp == 0u || (i & 3u) == 0u) { lpc_h = lpc_pcg4d(vec4<u32>(stepu.seed, stepu.step, P.tid, i >> 2u)); }
    let r = ${X}[i] - lpc_lf[ro + lpc_sx[qx]];
    let q = min(lpc_stoch_floor((r - m0) * scale, lpc_h[i & 3u] >> 8u), P.levels_u);
    let e = pp % P.per;
    word = word | (q << (e * P.bits));
    if (e == P.per - 1u || pp == hw - 1u) { WORDS[P.hfc_off + a * P.hfc_per + pp / P.per] = word; word = 0u; }
    qx += 1u;
    if (qx == P.ww) { qx = 0u; qy += 1u; ro = lpc_src(qy, P.sh, P.lh) * P.lw; }
  }`,
    })];
  }
  const producer = p ? `
  let ch = a % P.c;${BN_APPLY.pre}
  for (var p = lid; p < hw; p += ${PLANE_WG}u) {
    let i = xb + p;
    Y[i] = ${ep.q(BN_APPLY.value('X[i]'), 'i')};
  }
  storageBarrier();` : '';
  return [makeKernel({
    ...common, invocations: l.B * l.C * PLANE_WG, workgroup: PLANE_WG, wholeGroups: true,
    decls: `var<workgroup> lpc_mn: array<f32, ${PLANE_WG}>;\nvar<workgroup> lpc_mx: array<f32, ${PLANE_WG}>;\n` + lfcTable(l) + common.fns,
    body: `${PLANE}
  let xb = a * hw;${lfcIndex()}${producer}
  for (var wd = lid; wd < P.lfc_per; wd += ${PLANE_WG}u) {
    var word = 0u;
    for (var e = 0u; e < 2u; e++) {
      let q = wd * 2u + e;
      if (q >= P.lh * P.lw) { break; }${lfcBlock(X)}
      word = word | (b << (e * 16u));
    }
    WORDS[P.lfc_off + a * P.lfc_per + wd] = word;
  }
  workgroupBarrier();
  var mn = ${X}[xb] - ${LFC_AT('0u', '0u')};
  var mx = mn;
  var py = lid / P.ww;
  var px = lid % P.ww;
  for (var p = lid; p < hw; p += ${PLANE_WG}u) {
    let r = ${X}[xb + p] - ${LFC_AT('py', 'px')};
    mn = min(mn, r);
    mx = max(mx, r);
    ${STEP_YX}
  }
  lpc_mn[lid] = mn;
  lpc_mx[lid] = mx;
  workgroupBarrier();
  for (var s = ${PLANE_WG / 2}u; s > 0u; s = s >> 1u) {
    ${reduce}
    workgroupBarrier();
  }
  var m0 = lpc_mn[0];
  if (bitcast<u32>(m0) == 0x80000000u) { m0 = 0.0; }
  let scale = lpc_div_rn(P.levels, (lpc_mx[0] - m0) + P.res_eps);
  if (lid == 0u) { WORDS[a] = lpc_bf16_rne(scale) | (lpc_bf16_rne(m0) << 16u); }
  for (var wd = lid; wd < P.hfc_per; wd += ${PLANE_WG}u) {
    var word = 0u;
    var qy = (wd * P.per) / P.ww;
    var qx = (wd * P.per) % P.ww;
    var lpc_h = lpc_pcg4d(vec4<u32>(stepu.seed, stepu.step, P.tid, (xb + wd * P.per) >> 2u));
    for (var e = 0u; e < P.per; e++) {
      let p = wd * P.per + e;
      if (p >= hw) { break; }
      let i = xb + p;
      if (e > 0u && (i & 3u) == 0u) { lpc_h = lpc_pcg4d(vec4<u32>(stepu.seed, stepu.step, P.tid, i >> 2u)); }
      let r = ${X}[i] - ${LFC_AT('qy', 'qx')};
      qx += 1u;
      if (qx == P.ww) { qx = 0u; qy += 1u; }
      let yv = (r - m0) * scale;
      let q = min(lpc_stoch_floor(yv, lpc_h[i & 3u] >> 8u), P.levels_u);
      word = word | (q << (e * P.bits));
    }
    WORDS[P.hfc_off + a * P.hfc_per + wd] = word;
  }`,
  })];
}

/**
 * One dispatch, a workgroup per plane: the 2^Q possible values q / bf16(scale) + bf16(min) into workgroup memory
 * (one correctly rounded quotient per code, not per element) and the plane's low-frequency map (lpc_lf), then every
 * pixel: U + table[q], through the node's epilogue.
 */
export function divisionDecompressKernels(c: NodeCtx): Kernel[] {
  const shape = c.node.type.shape;
  const { l, params } = layoutParams(shape, divisionAttrs(c).block, divisionAttrs(c).bits);
  const ep = epilogue(c);
  const levels = 2 ** l.bits;
  if (planePerInvocation(c, l)) {
    return [makeKernel({
      name: 'division_decompress', buffers: [u32Buf('WORDS', c.node.inputs[0], 'read'), f32Buf('out', c.node.id, 'read_write')],
      params: { ...params, mask: levels - 1 }, invocations: l.B * l.C, workgroup: PLANE_LANES, epilogue: ep,
      decls: SRC_FN + DIV_RN + BF16,
      body: `
  let a = t;
  let hw = P.hh * P.ww;
  let st = WORDS[a];
  var lpc_tab: array<f32, ${levels}>;
  for (var q = 0u; q <= P.mask; q++) { lpc_tab[q] = lpc_div_rn(f32(q), lpc_bf16_f32(st)) + lpc_bf16_f32(st >> 16u); }${privateTables(l)}
  for (var q = 0u; q < P.lh * P.lw; q++) { lpc_lf[q] = lpc_bf16_f32(WORDS[P.lfc_off + a * P.lfc_per + (q >> 1u)] >> ((q & 1u) * 16u)); }
  let hb = P.hfc_off + a * P.hfc_per;
  for (var y = 0u; y < P.hh; y++) {
    let ro = lpc_src(y, P.sh, P.lh) * P.lw;
    for (var x = 0u; x < P.ww; x++) {
      let p = y * P.ww + x;
      let bit = p * P.bits;
      let q = (WORDS[hb + (bit >> 5u)] >> (bit & 31u)) & P.mask;
      let i = a * hw + p;
      out[i] = ${ep.q('(lpc_lf[ro + lpc_sx[x]] + lpc_tab[q])', 'i')};
    }
  }`,
    })];
  }
  return [makeKernel({
    name: 'division_decompress', buffers: [u32Buf('WORDS', c.node.inputs[0], 'read'), f32Buf('out', c.node.id, 'read_write')],
    params: { ...params, mask: levels - 1 }, invocations: l.B * l.C * PLANE_WG, workgroup: PLANE_WG, wholeGroups: true, epilogue: ep,
    decls: `var<workgroup> lpc_tab: array<f32, ${levels}>;\n` + lfcTable(l) + DIV_RN + BF16,
    body: `${PLANE}
  let st = WORDS[a];
  for (var q = lid; q <= P.mask; q += ${PLANE_WG}u) {
    lpc_tab[q] = lpc_div_rn(f32(q), lpc_bf16_f32(st)) + lpc_bf16_f32(st >> 16u);
  }
  for (var q = lid; q < P.lh * P.lw; q += ${PLANE_WG}u) {
    lpc_lf[q] = lpc_bf16_f32(WORDS[P.lfc_off + a * P.lfc_per + (q >> 1u)] >> ((q & 1u) * 16u));
  }${lfcIndex()}
  workgroupBarrier();
  let hb = P.hfc_off + a * P.hfc_per;
  var py = lid / P.ww;
  var px = lid % P.ww;
  for (var p = lid; p < hw; p += ${PLANE_WG}u) {
    let bit = p * P.bits;
    let q = (WORDS[hb + (bit >> 5u)] >> (bit & 31u)) & P.mask;
    let i = a * hw + p;
    out[i] = ${ep.q(`(${LFC_AT('py', 'px')} + lpc_tab[q])`, 'i')};
    ${STEP_YX}
  }`,
  })];
}
