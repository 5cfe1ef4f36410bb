/**
 * conv2d input gradient as a gather (no atomics): dx[n,c,iy,ix] = Σ_{o,ky,kx} dy[n,o,oy,ox]·w[o,c,ky,kx] with
 * oy = (iy + pad − ky)/stride when exact. Each invocation computes 4 input channels × 4 input pixels of one row
 * whose x coordinates share a residue mod stride (ix = r + stride·(4·jb + q)), so all four pixels need the same
 * ky ≡ iy + pad and kx ≡ r + pad (mod stride): the loops step by stride and never visit taps that do not
 * contribute (stride 1 is plain consecutive pixels). The o loop is innermost: 4 dy + 4 w loads per 16 FMAs.
 */
import { Kernel } from '../kernel.js';
import { NodeCtx, ceilDiv, epilogue, inBuf, int, makeKernel, outBuf } from './builder.js';

const R = [0, 1, 2, 3];
const XYZW = 'xyzw';

export function conv2dBwdDataKernels(c: NodeCtx): Kernel[] {
  const [N, C, H, W] = c.node.type.shape, [O, , KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.inTypes[0].shape;
  const s = int(c, 'stride'), pad = int(c, 'pad');
  const ep = epilogue(c);
  const bpr = ceilDiv(ceilDiv(W, s), 4); // pixel blocks per residue class of a row
  const rowBlocks = s * bpr;
  const body = `
  let b = t % P.row_blocks;
  let t2 = t / P.row_blocks;
  let row = t2 % P.rows;
  let c0 = (t2 / P.rows) * 4u;
  let n = row / P.h;
  let iy = row % P.h;
  let r = b / P.bpr;
  let jb = b % P.bpr;
  let ix = vec4<u32>(r) + P.stride * (vec4<u32>(4u * jb) + vec4<u32>(0u, 1u, 2u, 3u));
  let vx = ix < vec4<u32>(P.w);
  let khw = P.kh * P.kw;
  let wstep = P.c * khw;
  let ohw = P.oh * P.ow;
${R.map((j) => `  let wc${j} = min(c0 + ${j}u, P.c - 1u) * khw;`).join('\n')}
${R.map((j) => `  var acc${j} = vec4<f32>(0.0);`).join('\n')}
  let zero = vec4<i32>(0);
  let lanes = vec4<i32>(0, 1, 2, 3);
  let s = i32(P.stride);
  // Taps kx ≡ r + pad (mod s) for which at least one of the four pixels has 0 ≤ ox < OW:
  // ox_q = (r + pad − kx)/s + 4·jb + q, so r + pad − s·(OW − 4·jb) < kx ≤ r + pad + s·(4·jb + 3).
  let rp = i32(r + P.pad);
  let jb4 = i32(4u * jb);
  var kx_first = i32((r + P.pad) % P.stride);
  let kx_lo = rp - s * (i32(P.ow) - jb4) + 1;
  if (kx_lo > kx_first) { kx_first += ((kx_lo - kx_first + s - 1) / s) * s; }
  let kx_last = min(i32(P.kw) - 1, rp + s * (jb4 + 3));
  for (var ky = (iy + P.pad) % P.stride; ky < P.kh; ky += P.stride) {
    let ty = i32(iy + P.pad) - i32(ky);
    if (ty < 0) { break; }
    let oy = u32(ty / s);
    if (oy >= P.oh) { continue; }
    let rowoff = i32(n * P.o * ohw + oy * P.ow);
    for (var kx = kx_first; kx <= kx_last; kx += s) {
      let ox = vec4<i32>((rp - kx) / s + jb4) + lanes;
      let v = vx & (ox >= zero) & (ox < vec4<i32>(i32(P.ow)));
      var dyo = vec4<i32>(rowoff) + ox;
      let tap = ky * P.kw + u32(kx);
${R.map((j) => `      var wo${j} = wc${j} + tap;`).join('\n')}
      for (var o = 0u; o < P.o; o++) {
        let idx = select(zero, dyo, v);
        let d = select(vec4<f32>(0.0), vec4<f32>(DY[idx.x], DY[idx.y], DY[idx.z], DY[idx.w]), v);
${R.map((j) => `        acc${j} += Wt[wo${j}] * d;`).join('\n')}
        dyo += vec4<i32>(i32(ohw));
${R.map((j) => `        wo${j} += wstep;`).join('\n')}
      }
    }
  }
  let obase = (n * P.c * P.h + iy) * P.w;
${R.map((j) => `  if (c0 + ${j}u < P.c) {
${R.map((q) => `    if (vx.${XYZW[q]}) {
      let i = obase + (c0 + ${j}u) * P.h * P.w + ix.${XYZW[q]};
      out[i] = ${ep.q(`acc${j}.${XYZW[q]}`, 'i')};
    }`).join('\n')}
  }`).join('\n')}`;
  return [makeKernel({
    name: 'conv2d_bwd_data',
    buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'Wt'), outBuf(c)],
    body,
    epilogue: ep,
    params: { c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: KH, kw: KW, stride: s, pad, bpr, row_blocks: rowBlocks, rows: N * H },
    invocations: rowBlocks * N * H * ceilDiv(C, 4),
    workgroup: 64,
    flops: 2 * N * O * OH * OW * C * KH * KW,
  })];
}
