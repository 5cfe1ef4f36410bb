/**
 * conv2d forward as a direct implicit GEMM with register blocking: each invocation computes 4 output channels ×
 * 4 output pixels (consecutive in N·OH·OW order) in four vec4 accumulators, looping over C·KH·KW. Padding and edge
 * pixels are handled by masked loads (index 0 is loaded and the value replaced by 0), with no branches in the
 * inner loop and no shared memory (webgpu-on-cpu.md §8). Channels and pixels past the edge are clamped for loads
 * and skipped for stores. The bias and whether there is padding at all (no padding: no masks) are structure;
 * shapes, stride and the padding amount are params.
 */
import { Kernel } from '../kernel.js';
import { BufferDecl, NodeCtx, ceilDiv, epilogue, inBuf, int, makeKernel, outBuf } from './builder.js';

const R = [0, 1, 2, 3];
const XYZW = 'xyzw';

export function conv2dKernels(c: NodeCtx): Kernel[] {
  const [N, C, H, W] = c.inTypes[0].shape, [O, , KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.node.type.shape;
  const hasBias = c.node.inputs.length > 2;
  const ep = epilogue(c);
  const buffers: BufferDecl[] = [inBuf(c, 0, 'X'), inBuf(c, 1, 'Wt')];
  if (hasBias) buffers.push(inBuf(c, 2, 'bias'));
  buffers.push(outBuf(c));
  const np = N * OH * OW;
  // Without padding every tap is inside the input (iy ≤ (OH−1)·s + KH−1 < H), so the masks can go.
  const masked = int(c, 'pad') > 0;
  const body = `
  let ohw = P.oh * P.ow;
  let hw = P.h * P.w;
  let p0 = (t % P.tiles_p) * 4u;
  let o0 = (t / P.tiles_p) * 4u;
  let pq = min(vec4<u32>(p0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.np - 1u));
  let nq = pq / ohw;
  let rq = pq % ohw;
  let iy0 = vec4<i32>((rq / P.ow) * P.stride) - vec4<i32>(i32(P.pad));
  let ix0 = vec4<i32>((rq % P.ow) * P.stride) - vec4<i32>(i32(P.pad));
  let xbase = vec4<i32>(nq * (P.c * hw));
  let wsize = P.c * P.kh * P.kw;
${R.map((j) => `  let w${j} = min(o0 + ${j}u, P.o - 1u) * wsize;`).join('\n')}
${R.map((j) => `  var acc${j} = vec4<f32>(${hasBias ? `bias[min(o0 + ${j}u, P.o - 1u)]` : '0.0'});`).join('\n')}
  let zero = vec4<i32>(0);
  let hh = vec4<i32>(i32(P.h));
  let ww = vec4<i32>(i32(P.w));
  var wi = 0u;
  for (var ci = 0u; ci < P.c; ci++) {
    let cbase = xbase + vec4<i32>(i32(ci * hw));
    for (var ky = 0u; ky < P.kh; ky++) {
      let iy = iy0 + vec4<i32>(i32(ky));
${masked ? '      let vy = (iy >= zero) & (iy < hh);\n' : ''}      let row = cbase + iy * ww;
      for (var kx = 0u; kx < P.kw; kx++) {
        let ix = ix0 + vec4<i32>(i32(kx));
${masked ? `        let v = vy & (ix >= zero) & (ix < ww);
        let idx = select(zero, row + ix, v);
        let xv = select(vec4<f32>(0.0), vec4<f32>(X[idx.x], X[idx.y], X[idx.z], X[idx.w]), v);` : `        let idx = row + ix;
        let xv = vec4<f32>(X[idx.x], X[idx.y], X[idx.z], X[idx.w]);`}
${R.map((j) => `        acc${j} += Wt[w${j} + wi] * xv;`).join('\n')}
        wi++;
      }
    }
  }
  let obase = nq * (P.o * ohw) + rq;
${R.map((j) => `  if (o0 + ${j}u < P.o) {
${R.map((q) => `    if (p0 + ${q}u < P.np) {
      let i = obase.${XYZW[q]} + (o0 + ${j}u) * ohw;
      out[i] = ${ep.q(`acc${j}.${XYZW[q]}`, 'i')};
    }`).join('\n')}
  }`).join('\n')}`;
  return [makeKernel({
    name: `conv2d${hasBias ? '_bias' : ''}${masked ? '' : '_nopad'}`,
    buffers, body, epilogue: ep,
    params: { c: C, h: H, w: W, o: O, oh: OH, ow: OW, kh: KH, kw: KW, stride: int(c, 'stride'), pad: int(c, 'pad'), np, tiles_p: ceilDiv(np, 4) },
    invocations: ceilDiv(np, 4) * ceilDiv(O, 4),
    workgroup: 64,
    flops: 2 * np * O * C * KH * KW,
  })];
}
