/**
 * conv2d weight gradient dw[o,c,ky,kx] = Σ_{n,oy,ox} dy[n,o,oy,ox]·x[n,c,oy·s−p+ky,ox·s−p+kx]: an implicit GEMM
 * with M = O, N = C·KH·KW columns and a reduction K = N·OH·OW that is much longer than the output. The reduction
 * is split into chunks (split-reduce.ts) so enough invocations exist; each chunk writes partials and a second
 * kernel sums them in a fixed order (deterministic, no float atomics) through the quantize epilogue. Tilings:
 * - reg<M>x<N>: a workgroup of 32 invocations owns M output channels and one chunk (workgroup id z, so the dy
 *   loads are uniform) and 32·N columns, invocation `li` taking columns li, li + 32, …; rows (n, oy) of the chunk,
 *   then ox innermost: N masked x gathers + M uniform dy loads per M·N FMAs.
 * - smem<B>: the shared-memory GEMM (tiles-smem.ts), split-K over workgroup z.
 */
import { Kernel } from '../kernel.js';
import { NodeCtx, ceilDiv, inBuf, int } from './builder.js';
import { chooseChunks, partialsBuffer, sumPartialsKernel } from './split-reduce.js';
import { SMEM_WORKGROUP, smemGemm } from './tiles-smem.js';
import { Tile, makeTiledKernel, range, spill, tileName } from './tiles.js';

const WG = 32;

export function conv2dBwdWeightKernels(c: NodeCtx, tile: Tile): Kernel[] {
  const [N, C, H, W] = c.inTypes[1].shape, [O, , KH, KW] = c.node.type.shape, [, , OH, OW] = c.inTypes[0].shape;
  const s = int(c, 'stride'), pad = int(c, 'pad');
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
${J.map((j) => `  let oc${j} = min(o0 + ${j}u, P.o - 1u) * ohw;`).join('\n')}
${J.map((j) => Q.map((q) => `  var acc${j}_${q} = 0.0;`).join(' ')).join('\n')}
  let r0 = chunk * P.per_chunk;
  let r1 = min(P.rows, r0 + P.per_chunk);
  for (var row = r0; row < r1; row++) {
    let n = row / P.oh;
    let oy = row % P.oh;
    let dyrow = n * P.o * ohw + oy * P.ow;
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
