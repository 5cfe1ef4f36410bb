/**
 * conv2d weight gradient dw[o,c,ky,kx] = Σ_{n,oy,ox} dy[n,o,oy,ox]·x[n,c,oy·s−p+ky,ox·s−p+kx]: an implicit GEMM
 * with M = O, N = C·KH·KW columns and a reduction K = N·OH·OW that is much longer than the output. The reduction
 * is split into chunks (split-reduce.ts) so enough invocations exist; each chunk writes partials and a second
 * kernel sums them in a fixed order (deterministic, no float atomics) through the quantize epilogue. Tilings:
 * - reg<M>x<N>: a workgroup of 32 invocations owns M output channels and one chunk (workgroup id z, so the dy
 *   loads are uniform) and 32·N columns, invocation `li` taking columns li, li + 32, …; rows (n, oy) of the chunk,
 *   then ox innermost: N masked x gathers + M uniform dy loads per M·N FMAs.
 * - win<M>x<N>: an invocation owns N units (c, ky), each with all KW taps kx, and M output channels (workgroup id
 *   z, uniform dy loads). Along ox the x values of a unit's taps are a sliding window: stepping ox shifts it by the
 *   stride, so each step loads `stride` new values (KW when stride ≥ KW) for M·KW FMAs instead of one gather per
 *   tap; a first layer's 25 columns become 5 units with 30 FMAs per load.
 * - smem<B>: the shared-memory GEMM (tiles-smem.ts), split-K over workgroup z.
 * - wino<M>x<N>, wino4_<M>x<N> (3×3, stride 1): Winograd F(2×2, 3×3) or F(4×4, 3×3) transposed (conv2d-winograd.ts).
 */
import { Kernel } from '../kernel.js';
import { NodeCtx, ceilDiv, inBuf } from './builder.js';
import { chooseChunks, partialsBuffer, sumPartialsKernel } from './split-reduce.js';
import { SMEM_WORKGROUP, smemGemm } from './tiles-smem.js';
import { winogradKernels } from './conv2d-winograd.js';
import { Tile, isWinograd, makeTiledKernel, range, spill, tileName } from './tiles.js';
import { attrsOf } from '../../ir/op-registry.js';

/** The node's attributes (ir/ops/conv.ts). */
const convAttrs = (c: NodeCtx) => attrsOf(c.node, 'conv2d_bwd_weight');

const WG = 32;

export function conv2dBwdWeightKernels(c: NodeCtx, tile: Tile): Kernel[] {
  const [N, C, H, W] = c.inTypes[1].shape, [O, , KH, KW] = c.node.type.shape, [, , OH, OW] = c.inTypes[0].shape;
  const s = convAttrs(c).stride, pad = convAttrs(c).pad;
  const cols = C * KH * KW, total = O * cols;
  const masked = pad > 0; // without padding every tap is inside the input: no masks
  const name = `conv2d_bwd_weight${masked ? '' : '_nopad'}_${tileName(tile)}`;
  const flops = 2 * N * O * OH * OW * C * KH * KW;
  const base = { c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: KH, kw: KW, stride: s, pad, cols, total };

  if (tile.kind === 'smem') {
    const K = N * OH * OW, tiles = ceilDiv(O, tile.b) * ceilDiv(cols, tile.b) * 256;
    // chunks of whole 16-slices of K
    const { chunks, perChunk } = chooseChunks(ceilDiv(K, 16), tiles, c.variant, 4);
    const { body, decls } = smemGemm({
      b: tile.b, m: 'P.o', n: 'P.cols', k: 'P.kk', perChunk: 'P.per_chunk',
      loaders: `fn gemm_a(m: u32, k: u32) -> f32 {
  let ohw = P.oh * P.ow;
  return DY[((k / ohw) * P.o + m) * ohw + k % ohw];
}
fn gemm_b(k: u32, col: u32) -> f32 {
  let ohw = P.oh * P.ow; let khw = P.kh * P.kw;
  let n = k / ohw; let q = k % ohw;
  let ci = col / khw; let r = col % khw;
  let iy = i32((q / P.ow) * P.stride + r / P.kw) - i32(P.pad);
  let ix = i32((q % P.ow) * P.stride + r % P.kw) - i32(P.pad);
  let v = iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w);
  let i = select(0u, ((n * P.c + ci) * P.h + u32(iy)) * P.w + u32(ix), v);
  return select(0.0, X[i], v);
}`,
      store: 'part[wid.z * P.total + gm * P.cols + gn] = v;',
    });
    const partial = makeTiledKernel({
      name, body, decls, flops,
      buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), partialsBuffer(chunks, total, 'read_write')],
      params: { ...base, kk: K, per_chunk: perChunk * 16 },
      workgroup: SMEM_WORKGROUP, dispatch: [ceilDiv(cols, tile.b), ceilDiv(O, tile.b), chunks],
    });
    return [partial, sumPartialsKernel(c, 'conv2d_bwd_weight', chunks, total)];
  }

  if (isWinograd(tile)) return winogradKernels(c, tile);
  if (tile.kind === 'win') {
    const partial = windowKernel(c, tile.m, tile.n, { name, flops, masked, base, N, C, KH, KW, O, OH, OW, s, total });
    return [partial.kernel, sumPartialsKernel(c, 'conv2d_bwd_weight', partial.chunks, total)];
  }
  const J = range(tile.m), Q = range(tile.n);
  const colGroups = ceilDiv(cols, WG * tile.n), oTiles = ceilDiv(O, tile.m), rows = N * OH;
  // at least ~64 ox iterations per chunk so the partial write and the final sum stay small next to the work
  const { chunks, perChunk } = chooseChunks(rows, colGroups * WG * oTiles, c.variant, Math.max(1, Math.ceil(64 / OW)));
  const body = `
  let o0 = (wid.z % P.o_tiles) * ${tile.m}u;
  let chunk = wid.z / P.o_tiles;
  let cb = (wid.x + wid.y * nwg.x) * ${WG * tile.n}u + li;
  let khw = P.kh * P.kw;
  let hw = P.h * P.w;
  let ohw = P.oh * P.ow;
${Q.map((q) => `  let col${q} = min(cb + ${q * WG}u, P.cols - 1u);
  let ci${q} = col${q} / khw;
  let ky${q} = i32((col${q} / P.kw) % P.kh);
  let kx${q} = i32(col${q} % P.kw);`).join('\n')}
${J.map((j) => Q.map((q) => `  var acc${j}_${q} = 0.0;`).join(' ')).join('\n')}
${chunkRows(tile.m)}
${Q.map((q) => `    let iy${q} = i32(oy * P.stride) - i32(P.pad) + ky${q};
${masked ? `    let vy${q} = iy${q} >= 0 && iy${q} < i32(P.h);\n` : ''}    let xr${q} = i32((n * P.c + ci${q}) * hw) + iy${q} * i32(P.w);
    var ix${q} = kx${q} - i32(P.pad);`).join('\n')}
${J.map((j) => `    var d${j} = dyrow + oc${j};`).join('\n')}
    for (var ox = 0u; ox < P.ow; ox++) {
${Q.map((q) => (masked
    ? `      let v${q} = vy${q} && ix${q} >= 0 && ix${q} < i32(P.w);
      let x${q} = select(0.0, X[select(0, xr${q} + ix${q}, v${q})], v${q});`
    : `      let x${q} = X[xr${q} + ix${q}];`)).join('\n')}
${J.map((j) => `      let g${j} = DY[d${j}]; d${j}++;`).join('\n')}
${J.map((j) => Q.map((q) => `      acc${j}_${q} += g${j} * x${q};`).join(' ')).join('\n')}
${Q.map((q) => `      ix${q} += i32(P.stride);`).join('\n')}
    }
  }
  let pbase = chunk * P.total;
${Q.map((q) => `  if (cb + ${q * WG}u < P.cols) {
${J.map((j) => `    if (o0 + ${j}u < P.o) { part[pbase + (o0 + ${j}u) * P.cols + col${q}] = acc${j}_${q}; }`).join('\n')}
  }`).join('\n')}`;
  const [gx, gy] = spill(colGroups);
  const partial = makeTiledKernel({
    name, body, flops,
    buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), partialsBuffer(chunks, total, 'read_write')],
    params: { ...base, o_tiles: oTiles, rows, per_chunk: perChunk },
    workgroup: [WG, 1, 1], dispatch: [gx, gy, oTiles * chunks],
  });
  return [partial, sumPartialsKernel(c, 'conv2d_bwd_weight', chunks, total)];
}

/** The M output channels' dy row offsets, then the loop over the chunk's rows (n, oy), opened (both register tilings). */
function chunkRows(m: number): string {
  return `${range(m).map((j) => `  let oc${j} = min(o0 + ${j}u, P.o - 1u) * ohw;`).join('\n')}
  let r0 = chunk * P.per_chunk;
  let r1 = min(P.rows, r0 + P.per_chunk);
  for (var row = r0; row < r1; row++) {
    let n = row / P.oh;
    let oy = row % P.oh;
    let dyrow = n * P.o * ohw + oy * P.ow;`;
}

interface WinDims {
  name: string; flops: number; masked: boolean; base: Record<string, number>;
  N: number; C: number; KH: number; KW: number; O: number; OH: number; OW: number; s: number; total: number;
}

/** The win<M>x<NU> partial kernel (see the file comment); KW and the stride are baked into the source. */
function windowKernel(c: NodeCtx, M: number, NU: number, d: WinDims): { kernel: Kernel; chunks: number } {
  const { KH, KW, OW, s, masked } = d;
  const units = d.C * KH;
  // lanes: as many as the units need, in multiples of 8 (a CPU driver's SIMD width), at most 32
  const wg = Math.min(32, 8 * ceilDiv(ceilDiv(units, NU), 8));
  const J = range(M), Q = range(NU), K = range(KW);
  const keep = Math.max(0, KW - s); // taps carried over from the previous ox
  const fresh = K.slice(keep); // taps loaded at each ox
  const unitGroups = ceilDiv(units, wg * NU), oTiles = ceilDiv(d.O, M), rows = d.N * d.OH;
  const { chunks, perChunk } = chooseChunks(rows, unitGroups * wg * oTiles, c.variant, Math.max(1, Math.ceil(64 / OW)));
  const load = (q: number, pos: string) => masked
    ? `ldx(xr${q}, vy${q}, ${pos})`
    : `X[xr${q} + ${pos}]`;
  const body = `
  let o0 = (wid.z % P.o_tiles) * ${M}u;
  let chunk = wid.z / P.o_tiles;
  let ub = (wid.x + wid.y * nwg.x) * ${wg * NU}u + li;
  let hw = P.h * P.w;
  let ohw = P.oh * P.ow;
${Q.map((q) => `  let u${q} = min(ub + ${q * wg}u, ${units - 1}u);
  let ci${q} = u${q} / ${KH}u;
  let ky${q} = i32(u${q} % ${KH}u);`).join('\n')}
${J.map((j) => Q.map((q) => K.map((k) => `  var acc${j}_${q}_${k} = 0.0;`).join(' ')).join('\n')).join('\n')}
${chunkRows(M)}
${Q.map((q) => `    let iy${q} = i32(oy * ${s}u) - i32(P.pad) + ky${q};
${masked ? `    let vy${q} = iy${q} >= 0 && iy${q} < i32(P.h);
` : ''}    let xr${q} = i32((n * P.c + ci${q}) * hw) + iy${q} * i32(P.w);
${K.map((k) => `    var w${q}_${k} = ${k < keep ? load(q, `${k} - i32(P.pad)`) : '0.0'};`).join('\n')}`).join('\n')}
${J.map((j) => `    var d${j} = dyrow + oc${j};`).join('\n')}
    var ix = ${keep} - i32(P.pad);
    for (var ox = 0u; ox < P.ow; ox++) {
${Q.map((q) => fresh.map((k) => `      w${q}_${k} = ${load(q, `ix + ${k - keep}`)};`).join('\n')).join('\n')}
${J.map((j) => `      let g${j} = DY[d${j}]; d${j}++;`).join('\n')}
${J.map((j) => Q.map((q) => K.map((k) => `      acc${j}_${q}_${k} += g${j} * w${q}_${k};`).join(' ')).join('\n')).join('\n')}
${Q.map((q) => range(keep).map((k) => `      w${q}_${k} = w${q}_${k + s};`).join(' ')).join('\n')}
      ix += ${s};
    }
  }
  let pbase = chunk * P.total;
${Q.map((q) => `  if (ub + ${q * wg}u < ${units}u) {
${J.map((j) => `    if (o0 + ${j}u < P.o) {
${K.map((k) => `      part[pbase + (o0 + ${j}u) * P.cols + u${q} * ${KW}u + ${k}u] = acc${j}_${q}_${k};`).join('\n')}
    }`).join('\n')}
  }`).join('\n')}`;
  const decls = masked ? `fn ldx(xr: i32, vy: bool, ix: i32) -> f32 {
  let v = vy && ix >= 0 && ix < i32(P.w);
  return select(0.0, X[select(0, xr + ix, v)], v);
}
` : '';
  const [gx, gy] = spill(unitGroups);
  const kernel = makeTiledKernel({
    name: d.name, body, decls, flops: d.flops,
    buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), partialsBuffer(chunks, d.total, 'read_write')],
    params: { ...d.base, o_tiles: oTiles, rows, per_chunk: perChunk },
    workgroup: [wg, 1, 1], dispatch: [gx, gy, oTiles * chunks],
  });
  return { kernel, chunks };
}
