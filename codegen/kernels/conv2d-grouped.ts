/**
 * Grouped and depthwise convolutions (conv2d with groups > 1) and their two gradients, as direct kernels: a grouped
 * convolution's GEMMs are small (K = C/groups·KH·KW, often 9 for a depthwise one) and it is bandwidth-bound, so a
 * dense GEMM over zero-filled weights would multiply the traffic by the number of groups. Each output reads only its
 * group's channels:
 * - forward: one invocation per output element, a loop over its group's Cg·KH·KW taps (lanes along the row, so
 *   neighbouring lanes read neighbouring inputs);
 * - data gradient: one invocation per input element gathering the outputs of its group whose windows hold it, in the
 *   spec's (o, oy, ox) order;
 * - weight gradient: a split reduction (split-reduce.ts) over the N·OH·OW products of each weight, chunks summed in a
 *   fixed order (no atomics).
 * The node's epilogue (post-ops, quantizer) applies in the final store. Shapes are params.
 */
import { convGroups } from '../../ir/ops/index.js';
import { Kernel } from '../kernel.js';
import { NodeCtx, epilogue, inBuf, int, makeKernel, outBuf, outNumel } from './builder.js';
import { chooseChunks, partialsBuffer, sumPartialsKernel } from './split-reduce.js';

/** Shapes of a grouped convolution from the node's operands: x [N,C,H,W], w [O,Cg,KH,KW], y [N,O,OH,OW]. */
function dims(x: readonly number[], w: readonly number[], y: readonly number[], c: NodeCtx) {
  const G = convGroups(c.node.attrs);
  return {
    n: x[0], c: x[1], h: x[2], w: x[3], o: w[0], cg: w[1], og: w[0] / G, kh: w[2], kw: w[3], oh: y[2], ow: y[3],
    stride: int(c, 'stride'), pad: int(c, 'pad'),
  };
}

export function conv2dGroupedKernels(c: NodeCtx): Kernel[] {
  const d = dims(c.inTypes[0].shape, c.inTypes[1].shape, c.node.type.shape, c);
  const hasBias = c.node.inputs.length > 2, ep = epilogue(c);
  const { n: _n, ...params } = d;
  return [makeKernel({
    name: `conv2d_grouped${hasBias ? '_bias' : ''}`,
    buffers: [inBuf(c, 0, 'X'), inBuf(c, 1, 'Wt'), ...(hasBias ? [inBuf(c, 2, 'bias')] : []), outBuf(c)],
    params, invocations: outNumel(c), epilogue: ep, flops: 2 * outNumel(c) * d.cg * d.kh * d.kw,
    body: `
  let ox = t % P.ow;
  let oy = (t / P.ow) % P.oh;
  let o = (t / (P.ow * P.oh)) % P.o;
  let n = t / (P.ow * P.oh * P.o);
  let c0 = (o / P.og) * P.cg;
  // the taps inside the input: ky in [ky0, ky1), kx in [kx0, kx1) (padding contributes nothing)
  let y0 = oy * P.stride; let x0 = ox * P.stride;
  let ky0 = select(0u, P.pad - y0, y0 < P.pad); let ky1 = min(P.kh, P.h + P.pad - y0);
  let kx0 = select(0u, P.pad - x0, x0 < P.pad); let kx1 = min(P.kw, P.w + P.pad - x0);
  var acc = ${hasBias ? 'bias[o]' : '0.0'};
  for (var cl = 0u; cl < P.cg; cl++) {
    let xb = (n * P.c + c0 + cl) * P.h + y0 - P.pad;
    let wb = (o * P.cg + cl) * P.kh;
    for (var ky = ky0; ky < ky1; ky++) {
      let xr = (xb + ky) * P.w + x0 - P.pad;
      let wr = (wb + ky) * P.kw;
      for (var kx = kx0; kx < kx1; kx++) { acc += X[xr + kx] * Wt[wr + kx]; }
    }
  }
  out[t] = ${ep.q('acc', 't')};`,
  })];
}

/** dx[n,c,iy,ix] = Σ over the outputs o of c's group and the taps (ky, kx) whose window covers (iy, ix). */
export function conv2dGroupedBwdDataKernels(c: NodeCtx): Kernel[] {
  const d = dims(c.node.type.shape, c.inTypes[1].shape, c.inTypes[0].shape, c);
  const ep = epilogue(c);
  const { n: _n, ...params } = d;
  return [makeKernel({
    name: 'conv2d_grouped_bwd_data',
    buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'Wt'), outBuf(c)],
    params, invocations: outNumel(c), epilogue: ep, flops: 2 * outNumel(c) * d.og * d.kh * d.kw,
    // the windows holding (iy, ix): oy·s − p ≤ iy ≤ oy·s − p + KH − 1, visited with oy, ox ascending (the spec's
    // order of terms), the tap ky = iy + p − oy·s; no divisions in the loops
    body: `
  let ix = t % P.w;
  let iy = (t / P.w) % P.h;
  let ch = (t / (P.w * P.h)) % P.c;
  let n = t / (P.w * P.h * P.c);
  let o0 = (ch / P.cg) * P.og;
  let cl = ch % P.cg;
  let ey = i32(iy + P.pad) - i32(P.kh) + 1;
  let ex = i32(ix + P.pad) - i32(P.kw) + 1;
  let oy0 = u32(select(0, (ey + i32(P.stride) - 1) / i32(P.stride), ey > 0));
  let ox0 = u32(select(0, (ex + i32(P.stride) - 1) / i32(P.stride), ex > 0));
  let oy1 = min((iy + P.pad) / P.stride + 1u, P.oh);
  let ox1 = min((ix + P.pad) / P.stride + 1u, P.ow);
  var acc = 0.0;
  for (var ol = 0u; ol < P.og; ol++) {
    let o = o0 + ol;
    let dyb = (n * P.o + o) * P.oh;
    let wb = (o * P.cg + cl) * P.kh;
    for (var oy = oy0; oy < oy1; oy++) {
      let ky = iy + P.pad - oy * P.stride;
      for (var ox = ox0; ox < ox1; ox++) {
        let kx = ix + P.pad - ox * P.stride;
        acc += DY[(dyb + oy) * P.ow + ox] * Wt[(wb + ky) * P.kw + kx];
      }
    }
  }
  out[t] = ${ep.q('acc', 't')};`,
  })];
}

/** dw[o,cl,ky,kx] = Σ_{n,oy,ox} dy[n,o,oy,ox]·x[n,c0+cl,iy,ix]: chunks of the N·OH·OW terms, then their sum. */
export function conv2dGroupedBwdWeightKernels(c: NodeCtx): Kernel[] {
  const d = dims(c.inTypes[1].shape, c.node.type.shape, c.inTypes[0].shape, c);
  const total = outNumel(c), length = d.n * d.oh * d.ow;
  const { chunks, perChunk } = chooseChunks(length, total, c.variant, 64);
  const partial = makeKernel({
    name: 'conv2d_grouped_bwd_weight_partial',
    buffers: [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X'), partialsBuffer(chunks, total, 'read_write')],
    params: { ...d, total, per_chunk: perChunk, m: length }, invocations: total * chunks, flops: 2 * total * length,
    body: `
  let wi = t % P.total;
  let chunk = t / P.total;
  let kx = wi % P.kw;
  let ky = (wi / P.kw) % P.kh;
  let cl = (wi / (P.kw * P.kh)) % P.cg;
  let o = wi / (P.kw * P.kh * P.cg);
  let ch = (o / P.og) * P.cg + cl;
  let ohw = P.oh * P.ow;
  let j0 = chunk * P.per_chunk;
  let j1 = min(P.m, j0 + P.per_chunk);
  var acc = 0.0;
  for (var j = j0; j < j1; j++) {
    let n = j / ohw;
    let r = j % ohw;
    let iy = i32((r / P.ow) * P.stride + ky) - i32(P.pad);
    let ix = i32((r % P.ow) * P.stride + kx) - i32(P.pad);
    if (iy >= 0 && iy < i32(P.h) && ix >= 0 && ix < i32(P.w)) {
      acc += DY[(n * P.o + o) * ohw + r] * X[((n * P.c + ch) * P.h + u32(iy)) * P.w + u32(ix)];
    }
  }
  part[chunk * P.total + wi] = acc;`,
  });
  return [partial, sumPartialsKernel(c, 'conv2d_grouped_bwd_weight', chunks, total)];
}
