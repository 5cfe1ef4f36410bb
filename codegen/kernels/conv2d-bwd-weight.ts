/**
 * conv2d weight gradient dw[o,c,ky,kx] = Σ_{n,oy,ox} dy[n,o,oy,ox]·x[n,c,oy·s−p+ky,ox·s−p+kx]: a GEMM whose
 * reduction (N·OH·OW) is much longer than its output (O·C·KH·KW). Each invocation computes 4 output channels ×
 * 4 (c,ky,kx) columns over a chunk of (n,oy) rows (masked loads for padding, inner loop over ox); the row range is
 * split so enough invocations exist (split-reduce.ts), and a second kernel sums the chunks in order.
 */
import { Kernel } from '../kernel.js';
import { NodeCtx, ceilDiv, inBuf, int, makeKernel } from './builder.js';
import { chooseChunks, partialsBuffer, sumPartialsKernel } from './split-reduce.js';

const R = [0, 1, 2, 3];
const XYZW = 'xyzw';

export function conv2dBwdWeightKernels(c: NodeCtx): Kernel[] {
  const [N, C, H, W] = c.inTypes[1].shape, [O, , KH, KW] = c.node.type.shape, [, , OH, OW] = c.inTypes[0].shape;
  const s = int(c, 'stride'), pad = int(c, 'pad');
  const cols = C * KH * KW, total = O * cols;
  const masked = pad > 0; // without padding every tap is inside the input: no masks

  const colTiles = ceilDiv(cols, 4), oTiles = ceilDiv(O, 4), rows = N * OH;
  // at least ~64 ox iterations per chunk so the partial write and the final sum stay small next to the work
  const { chunks, perChunk } = chooseChunks(rows, colTiles * oTiles, c.variant, Math.max(1, Math.ceil(64 / OW)));
  const body = `
  let ct = t % P.col_tiles;
  let t2 = t / P.col_tiles;
  let o0 = (t2 % P.o_tiles) * 4u;
  let chunk = t2 / P.o_tiles;
  let c0 = ct * 4u;
  let col = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.cols - 1u));
  let khw = P.kh * P.kw;
  let ci = col / khw;
  let ky = vec4<i32>((col / P.kw) % P.kh);
  let kx = vec4<i32>(col % P.kw);
  let hw = P.h * P.w;
  let ohw = P.oh * P.ow;
${R.map((j) => `  let oc${j} = min(o0 + ${j}u, P.o - 1u);`).join('\n')}
${R.map((j) => `  var acc${j} = vec4<f32>(0.0);`).join('\n')}
  let zero = vec4<i32>(0);
  let hh = vec4<i32>(i32(P.h));
  let ww = vec4<i32>(i32(P.w));
  let r0 = chunk * P.per_chunk;
  let r1 = min(P.rows, r0 + P.per_chunk);
  for (var row = r0; row < r1; row++) {
    let n = row / P.oh;
    let oy = row % P.oh;
    let iy = vec4<i32>(i32(oy * P.stride) - i32(P.pad)) + ky;
${masked ? '    let vy = (iy >= zero) & (iy < hh);\n' : ''}    let xrow = vec4<i32>((n * P.c + ci) * hw) + iy * ww;
    let dyrow = n * P.o * ohw + oy * P.ow;
${R.map((j) => `    let d${j} = dyrow + oc${j} * ohw;`).join('\n')}
    var ix = kx - vec4<i32>(i32(P.pad));
    for (var ox = 0u; ox < P.ow; ox++) {
${masked ? `      let v = vy & (ix >= zero) & (ix < ww);
      let idx = select(zero, xrow + ix, v);
      let xv = select(vec4<f32>(0.0), vec4<f32>(X[idx.x], X[idx.y], X[idx.z], X[idx.w]), v);` : `      let idx = xrow + ix;
      let xv = vec4<f32>(X[idx.x], X[idx.y], X[idx.z], X[idx.w]);`}
${R.map((j) => `      acc${j} += DY[d${j} + ox] * xv;`).join('\n')}
      ix += vec4<i32>(i32(P.stride));
    }
  }
  let pbase = chunk * P.total;
${R.map((j) => `  if (o0 + ${j}u < P.o) {
${R.map((q) => `    if (c0 + ${q}u < P.cols) { part[pbase + (o0 + ${j}u) * P.cols + c0 + ${q}u] = acc${j}.${XYZW[q]}; }`).join('\n')}
  }`).join('\n')}`;
  const partial = makeKernel({
    name: `conv2d_bwd_weight${masked ? '' : '_nopad'}`,
    buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), partialsBuffer(chunks, total, 'read_write')],
    body,
    params: {
      c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: KH, kw: KW, stride: s, pad, cols, col_tiles: colTiles, o_tiles: oTiles,
      rows, per_chunk: perChunk, total,
    },
    invocations: colTiles * oTiles * chunks,
    workgroup: 64,
    flops: 2 * N * O * OH * OW * C * KH * KW,
  });
  return [partial, sumPartialsKernel(c, 'conv2d_bwd_weight', chunks, total)];
}
