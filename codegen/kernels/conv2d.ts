/**
 * conv2d forward as an implicit GEMM: out[n,o,p] = Σ_{c,ky,kx} W[o,c,ky,kx]·x[n,c,iy,ix] (+ bias[o]), with
 * M = output channels, N = N·OH·OW pixels, K = C·KH·KW. Tilings (tiles.ts):
 * - reg<M>x<N>: a workgroup of 64 invocations owns M output channels (workgroup id z, so the weight loads are
 *   uniform) and 64·N pixels; invocation `li` takes pixels li, li + 64, … (lane-consecutive gathers). The loop
 *   runs over c, ky, kx with incremental offsets; padding and edge pixels are handled by masked loads (index 0
 *   loaded, value replaced by 0), with no masks at all when there is no padding (every tap is then inside).
 *   Channels and pixels past the edge are clamped for loads and skipped for stores.
 * - smem<B>: the shared-memory GEMM (tiles-smem.ts) with an im2col gather for B.
 * - wino<M>x<N>, wino4_<M>x<N>: Winograd F(2×2, 3×3) and F(4×4, 3×3) for 3×3 stride-1 convolutions
 *   (conv2d-winograd.ts).
 * The quantize epilogue (builder.epilogue) is applied in the final store. Shapes, stride and padding are params.
 */
import { Kernel } from '../kernel.js';
import { BufferDecl, NodeCtx, ceilDiv, epilogue, inBuf, outBuf } from './builder.js';
import { SMEM_WORKGROUP, smemGemm } from './tiles-smem.js';
import { winogradKernels } from './conv2d-winograd.js';
import { Tile, isWinograd, makeTiledKernel, range, spill, tileName } from './tiles.js';
import { attrsOf } from '../../ir/op-registry.js';
import { mxChannelsOwned, mxChannelsStore, mxStore } from './mx-store.js';

/** The node's attributes (ir/ops/conv.ts). */
const convAttrs = (c: NodeCtx) => attrsOf(c.node, 'conv2d');

const WG = 64;

export function conv2dKernels(c: NodeCtx, tile: Tile): Kernel[] {
  const [N, C, H, W] = c.inTypes[0].shape, [O, , KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.node.type.shape;
  const hasBias = c.node.inputs.length > 2;
  const ep = epilogue(c);
  const buffers: BufferDecl[] = [inBuf(c, 0, 'X'), inBuf(c, 1, 'Wt')];
  if (hasBias) buffers.push(inBuf(c, 2, 'bias'));
  buffers.push(outBuf(c));
  const np = N * OH * OW;
  // Without padding every tap is inside the input (iy ≤ (OH−1)·s + KH−1 < H), so the masks can go.
  const masked = convAttrs(c).pad > 0;
  const params = { c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: KH, kw: KW, stride: convAttrs(c).stride, pad: convAttrs(c).pad, np };
  const name = `conv2d${hasBias ? '_bias' : ''}${masked ? '' : '_nopad'}_${tileName(tile)}`;
  const flops = 2 * np * O * C * KH * KW;
  const biasOf = (o: string) => (hasBias ? ` + bias[${o}]` : '');

  if (isWinograd(tile)) return winogradKernels(c, tile);
  if (tile.kind === 'smem') {
    const { body, decls } = smemGemm({
      b: tile.b, m: 'P.o', n: 'P.np', k: 'P.c * P.kh * P.kw',
      loaders: `fn gemm_a(m: u32, k: u32) -> f32 { return Wt[m * P.c * P.kh * P.kw + k]; }
fn gemm_b(k: u32, p: u32) -> f32 {
  let khw = P.kh * P.kw;
  let ci = k / khw; let r = k % khw;
  let ohw = P.oh * P.ow;
  let n = p / ohw; let q = p % ohw;
  let iy = i32((q / P.ow) * P.stride + r / P.kw) - i32(P.pad);
  let ix = i32((q % P.ow) * P.stride + r % P.kw) - i32(P.pad);
  let v = iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w);
  let i = select(0u, ((n * P.c + ci) * P.h + u32(iy)) * P.w + u32(ix), v);
  return select(0.0, X[i], v);
}`,
      store: `let ohw = P.oh * P.ow; let i = ((gn / ohw) * P.o + gm) * ohw + gn % ohw; out[i] = ${ep.q(`v${biasOf('gm')}`, 'i')};`,
    });
    return [makeTiledKernel({
      name, buffers, body, decls, epilogue: ep, params, flops,
      workgroup: SMEM_WORKGROUP, dispatch: [ceilDiv(np, tile.b), ceilDiv(O, tile.b), 1],
    })];
  }

  // MX blocks of whole channels in the invocation's registers: rounded in this store (mx-store.ts)
  const mx = mxChannelsOwned(c.node, tile.m) ? mxStore(c) : undefined;
  const J = range(tile.m), Q = range(tile.n);
  const body = `
  let o0 = wid.z * ${tile.m}u;
  let pb = (wid.x + wid.y * nwg.x) * ${WG * tile.n}u + li;
  let ohw = P.oh * P.ow;
  let hw = P.h * P.w;
  let wsize = P.c * P.kh * P.kw;
${Q.map((q) => `  let p${q} = min(pb + ${q * WG}u, P.np - 1u);
  let n${q} = p${q} / ohw;
  let r${q} = p${q} % ohw;
  let iy0_${q} = i32((r${q} / P.ow) * P.stride) - i32(P.pad);
  let ix0_${q} = i32((r${q} % P.ow) * P.stride) - i32(P.pad);
  var xb${q} = i32(n${q} * P.c * hw) + iy0_${q} * i32(P.w) + ix0_${q};`).join('\n')}
${J.map((j) => `  let w${j} = min(o0 + ${j}u, P.o - 1u) * wsize;`).join('\n')}
${J.map((j) => `  let b${j} = ${hasBias ? `bias[min(o0 + ${j}u, P.o - 1u)]` : '0.0'};`).join('\n')}
${J.map((j) => Q.map((q) => `  var a${j}_${q} = b${j};`).join(' ')).join('\n')}
  var wi = 0u;
  for (var ci = 0u; ci < P.c; ci++) {
    for (var ky = 0; ky < i32(P.kh); ky++) {
${Q.map((q) => `      let xr${q} = xb${q} + ky * i32(P.w);`).join('\n')}
${masked ? Q.map((q) => `      let vy${q} = iy0_${q} + ky >= 0 && iy0_${q} + ky < i32(P.h);`).join('\n') : ''}
      for (var kx = 0; kx < i32(P.kw); kx++) {
${Q.map((q) => (masked
    ? `        let v${q} = vy${q} && ix0_${q} + kx >= 0 && ix0_${q} + kx < i32(P.w);
        let x${q} = select(0.0, X[select(0, xr${q} + kx, v${q})], v${q});`
    : `        let x${q} = X[xr${q} + kx];`)).join('\n')}
${J.map((j) => `        let wv${j} = Wt[w${j} + wi];`).join('\n')}
${J.map((j) => Q.map((q) => `        a${j}_${q} += wv${j} * x${q};`).join(' ')).join('\n')}
        wi++;
      }
    }
${Q.map((q) => `    xb${q} += i32(hw);`).join('\n')}
  }
${mx ? `  ${mxChannelsStore(mx, 'out', Q.map((q) => J.map((j) => `a${j}_${q}`)), Q.map((q) => `n${q} * P.o * ohw + r${q}`), Q.map((q) => `pb + ${q * WG}u < P.np`), 'o0', 'ohw', 'P.o')}`
    : Q.map((q) => `  if (pb + ${q * WG}u < P.np) {
    let ob = n${q} * P.o * ohw + r${q};
${J.map((j) => `    if (o0 + ${j}u < P.o) { let i = ob + (o0 + ${j}u) * ohw; out[i] = ${ep.q(`a${j}_${q}`, 'i')}; }`).join('\n')}
  }`).join('\n')}`;
  const [gx, gy] = spill(ceilDiv(np, WG * tile.n));
  return [makeTiledKernel({
    name, buffers, body, epilogue: mx?.ep ?? ep, params, flops,
    workgroup: [WG, 1, 1], dispatch: [gx, gy, ceilDiv(O, tile.m)],
  })];
}

