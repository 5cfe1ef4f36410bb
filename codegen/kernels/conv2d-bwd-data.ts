/**
 * conv2d input gradient as a gather (no atomics), an implicit GEMM with M = input channels, N = N·H·W input
 * pixels, K = O·KH·KW: dx[n,c,iy,ix] = Σ_{o,ky,kx} dy[n,o,oy,ox]·w[o,c,ky,kx] with oy = (iy + pad − ky)/stride
 * when exact. Tilings (tiles.ts):
 * - reg<M>x<N>: the input pixels are split into stride² residue classes (iy mod s, ix mod s); a workgroup owns one
 *   class and M input channels (both from workgroup id z, so uniform), and 64·N pixels of that class, invocation
 *   `li` taking pixels li, li + 64, …. All pixels of a class need the same taps ky ≡ iy + pad, kx ≡ ix + pad
 *   (mod s), so the ky/kx loops step by s with bounds that are the same for the whole workgroup and never visit a
 *   tap that cannot contribute; the mask left is dy's edge (and the class's edge), computed once per tap outside
 *   the o loop. Innermost over o: N masked dy gathers + M uniform weight loads per M·N FMAs.
 * - smem<B>: the shared-memory GEMM (tiles-smem.ts) with the dy gather (exactness and edge masks) for B.
 * - wino<M>x<N>, wino4_<M>x<N> (stride 1, 3×3): Winograd F(2×2, 3×3) or F(4×4, 3×3), as a forward conv of dy
 *   with the flipped filters (conv2d-winograd.ts).
 * The quantize epilogue (builder.epilogue) is applied in the final store.
 */
import { Kernel } from '../kernel.js';
import { NodeCtx, ceilDiv, epilogue, inBuf, outBuf } from './builder.js';
import { SMEM_WORKGROUP, smemGemm } from './tiles-smem.js';
import { winogradKernels } from './conv2d-winograd.js';
import { Tile, isWinograd, makeTiledKernel, range, spill, tileName } from './tiles.js';
import { attrsOf } from '../../ir/op-registry.js';
import { mxChannelsOwned, mxChannelsStore, mxStore } from './mx-store.js';

/** The node's attributes (ir/ops/conv.ts). */
const convAttrs = (c: NodeCtx) => attrsOf(c.node, 'conv2d_bwd_data');

const WG = 64;

export function conv2dBwdDataKernels(c: NodeCtx, tile: Tile): Kernel[] {
  const [N, C, H, W] = c.node.type.shape, [O, , KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.inTypes[0].shape;
  const s = convAttrs(c).stride, pad = convAttrs(c).pad;
  const ep = epilogue(c);
  const buffers = [inBuf(c, 0, 'DY'), inBuf(c, 1, 'Wt'), outBuf(c)];
  const name = `conv2d_bwd_data_${tileName(tile)}`;
  const flops = 2 * N * O * OH * OW * C * KH * KW;

  if (isWinograd(tile)) return winogradKernels(c, tile);
  if (tile.kind === 'smem') {
    const { body, decls } = smemGemm({
      b: tile.b, m: 'P.c', n: 'P.n * P.h * P.w', k: 'P.o * P.kh * P.kw',
      loaders: `fn gemm_a(m: u32, k: u32) -> f32 {
  let khw = P.kh * P.kw;
  return Wt[((k / khw) * P.c + m) * khw + k % khw];
}
fn gemm_b(k: u32, q: u32) -> f32 {
  let khw = P.kh * P.kw;
  let o = k / khw; let r = k % khw;
  let hw = P.h * P.w;
  let n = q / hw; let rr = q % hw;
  let ty = i32(rr / P.w + P.pad) - i32(r / P.kw);
  let tx = i32(rr % P.w + P.pad) - i32(r % P.kw);
  let s = i32(P.stride);
  let oy = ty / s; let ox = tx / s;
  let v = ty >= 0 && tx >= 0 && oy * s == ty && ox * s == tx && oy < i32(P.oh) && ox < i32(P.ow);
  let i = select(0u, ((n * P.o + o) * P.oh + u32(oy)) * P.ow + u32(ox), v);
  return select(0.0, DY[i], v);
}`,
      store: `let hw = P.h * P.w; let i = ((gn / hw) * P.c + gm) * hw + gn % hw; out[i] = ${ep.q('v', 'i')};`,
    });
    return [makeTiledKernel({
      name, buffers, body, decls, epilogue: ep, flops,
      params: { c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: KH, kw: KW, stride: s, pad, n: N },
      workgroup: SMEM_WORKGROUP, dispatch: [ceilDiv(N * H * W, tile.b), ceilDiv(C, tile.b), 1],
    })];
  }

  // Residue class (ry, rx): pixels iy = ry + s·a (a < hc), ix = rx + s·b (b < wc); classes with fewer rows or
  // columns than hc/wc mask the excess.
  const hc = ceilDiv(H, s), wc = ceilDiv(W, s), ncls = N * hc * wc;
  // MX blocks of whole channels in the invocation's registers: rounded in this store (mx-store.ts)
  const mx = mxChannelsOwned(c.node, tile.m) ? mxStore(c) : undefined;
  const J = range(tile.m), Q = range(tile.n);
  const body = `
  let ss = P.stride * P.stride;
  let c0 = (wid.z / ss) * ${tile.m}u;
  let cls = wid.z % ss;
  let ry = cls / P.stride;
  let rx = cls % P.stride;
  let pb = (wid.x + wid.y * nwg.x) * ${WG * tile.n}u + li;
  let chw = P.hc * P.wc;
  let ohw = P.oh * P.ow;
  let khw = P.kh * P.kw;
  let wstep = P.c * khw;
  let s = i32(P.stride);
${Q.map((q) => `  let p${q} = min(pb + ${q * WG}u, P.ncls - 1u);
  let n${q} = p${q} / chw;
  let a${q} = i32((p${q} % chw) / P.wc);
  let b${q} = i32(p${q} % P.wc);
  let iy${q} = ry + u32(a${q}) * P.stride;
  let ix${q} = rx + u32(b${q}) * P.stride;
  let ok${q} = pb + ${q * WG}u < P.ncls && iy${q} < P.h && ix${q} < P.w;
  let dyb${q} = i32(n${q} * P.o * ohw);`).join('\n')}
${J.map((j) => `  let wc${j} = min(c0 + ${j}u, P.c - 1u) * khw;`).join('\n')}
${J.map((j) => Q.map((q) => `  var acc${j}_${q} = 0.0;`).join(' ')).join('\n')}
  for (var ky = (ry + P.pad) % P.stride; ky < P.kh; ky += P.stride) {
    let dy_y = (i32(ry + P.pad) - i32(ky)) / s;
${Q.map((q) => `    let oy${q} = a${q} + dy_y;
    let vy${q} = ok${q} && oy${q} >= 0 && oy${q} < i32(P.oh);`).join('\n')}
    for (var kx = (rx + P.pad) % P.stride; kx < P.kw; kx += P.stride) {
      let dx_x = (i32(rx + P.pad) - i32(kx)) / s;
${Q.map((q) => `      let ox${q} = b${q} + dx_x;
      let v${q} = vy${q} && ox${q} >= 0 && ox${q} < i32(P.ow);
      var d${q} = select(0, dyb${q} + oy${q} * i32(P.ow) + ox${q}, v${q});`).join('\n')}
      let tap = ky * P.kw + kx;
${J.map((j) => `      var wo${j} = wc${j} + tap;`).join('\n')}
      for (var o = 0u; o < P.o; o++) {
${Q.map((q) => `        let g${q} = select(0.0, DY[d${q}], v${q});`).join('\n')}
${J.map((j) => `        let wv${j} = Wt[wo${j}];`).join('\n')}
${J.map((j) => Q.map((q) => `        acc${j}_${q} += wv${j} * g${q};`).join(' ')).join('\n')}
${Q.map((q) => `        d${q} += select(0, i32(ohw), v${q});`).join('\n')}
${J.map((j) => `        wo${j} += wstep;`).join('\n')}
      }
    }
  }
${mx ? `  ${mxChannelsStore(mx, 'out', Q.map((q) => J.map((j) => `acc${j}_${q}`)), Q.map((q) => `(n${q} * P.c * P.h + iy${q}) * P.w + ix${q}`), Q.map((q) => `ok${q}`), 'c0', 'P.h * P.w', 'P.c')}`
    : Q.map((q) => `  if (ok${q}) {
    let ob = (n${q} * P.c * P.h + iy${q}) * P.w + ix${q};
${J.map((j) => `    if (c0 + ${j}u < P.c) { let i = ob + (c0 + ${j}u) * P.h * P.w; out[i] = ${ep.q(`acc${j}_${q}`, 'i')}; }`).join('\n')}
  }`).join('\n')}`;
  const [gx, gy] = spill(ceilDiv(ncls, WG * tile.n));
  return [makeTiledKernel({
    name, buffers, body, epilogue: mx?.ep ?? ep, flops,
    params: { c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: KH, kw: KW, stride: s, pad, hc, wc, ncls },
    workgroup: [WG, 1, 1], dispatch: [gx, gy, ceilDiv(C, tile.m) * s * s],
  })];
}
