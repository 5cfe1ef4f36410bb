/**
 * Kernels of the saved-activation masks and pooling windows (CPU semantics in ir/ops/compress.ts): a ReLU's (or
 * ReLU6's) 1-bit mask of where its backward passes the error, and a max pool's window argmax in 8 bits per output,
 * with the pooling gradient that reads it. Kernels with f32 results store through the node's epilogue.
 */
import { numel } from '../../ir/types.js';
import { poolOutSize } from '../../ir/ops/index.js';
import { Kernel } from '../kernel.js';
import { NodeCtx, ceilDiv, epilogue, ewWorkgroup, f32Buf, makeKernel, u32Buf } from './builder.js';
import { attrsOf } from '../../ir/op-registry.js';
import { wgslF32 } from '../ew-wgsl.js';

const windowAttrs = (c: NodeCtx) => attrsOf(c.node, 'argmax_compress', 'maxpool_bwd_argmax');

export function maskCompressKernels(c: NodeCtx): Kernel[] {
  const n = numel(c.inTypes[0].shape), upper = attrsOf(c.node, 'mask_compress').upper;
  return [makeKernel({
    name: 'mask_compress', buffers: [f32Buf('X', c.node.inputs[0], 'read'), u32Buf('out', c.node.id, 'read_write')],
    params: { n }, invocations: ceilDiv(n, 32), workgroup: ewWorkgroup(c.variant),
    body: `
  var word = 0u;
  for (var e = 0u; e < 32u; e++) {
    let i = t * 32u + e;
    if (i >= P.n) { break; }
    if (X[i] > 0.0${upper === undefined ? '' : ` && X[i] < ${wgslF32(upper)}`}) { word = word | (1u << e); }
  }
  out[t] = word;`,
  })];
}

export function maskDecompressKernels(c: NodeCtx): Kernel[] {
  const n = numel(c.node.type.shape), ep = epilogue(c);
  return [makeKernel({
    name: 'mask_decompress', buffers: [u32Buf('M', c.node.inputs[0], 'read'), f32Buf('out', c.node.id, 'read_write')],
    params: { n }, invocations: n, workgroup: ewWorkgroup(c.variant), epilogue: ep,
    body: `  out[t] = ${ep.q('f32((M[t >> 5u] >> (t & 31u)) & 1u)', 't')};`,
  })];
}

export function argmaxCompressKernels(c: NodeCtx): Kernel[] {
  const [N, C, H, W] = c.inTypes[0].shape, k = windowAttrs(c).k, s = windowAttrs(c).stride, pad = windowAttrs(c).pad ?? 0;
  const OH = poolOutSize(H, k, s, pad), OW = poolOutSize(W, k, s, pad), n = N * C * OH * OW;
  return [makeKernel({
    name: 'argmax_compress', buffers: [f32Buf('X', c.node.inputs[0], 'read'), u32Buf('out', c.node.id, 'read_write')],
    params: { n, h: H, w: W, oh: OH, ow: OW, k, stride: s, pad }, invocations: ceilDiv(n, 4), workgroup: ewWorkgroup(c.variant),
    body: `
  var word = 0u;
  for (var e = 0u; e < 4u; e++) {
    let o = t * 4u + e;
    if (o >= P.n) { break; }
    let ox = o % P.ow;
    let oy = (o / P.ow) % P.oh;
    let nc = o / (P.ow * P.oh);
    // the padded window's corner; padding (−∞) never wins, the first in-bounds element starts the search
    let y0 = i32(oy * P.stride) - i32(P.pad);
    let x0 = i32(ox * P.stride) - i32(P.pad);
    var best = 0u;
    var m = 0.0;
    var found = false;
    for (var ky = 0u; ky < P.k; ky++) {
      let iy = y0 + i32(ky);
      if (iy < 0 || iy >= i32(P.h)) { continue; }
      for (var kx = 0u; kx < P.k; kx++) {
        let ix = x0 + i32(kx);
        if (ix < 0 || ix >= i32(P.w)) { continue; }
        let v = X[(nc * P.h + u32(iy)) * P.w + u32(ix)];
        if (!found || v > m) { found = true; m = v; best = ky * P.k + kx; }
      }
    }
    word = word | (best << (e * 8u));
  }
  out[t] = word;`,
  })];
}

export function maxpoolBwdArgmaxKernels(c: NodeCtx): Kernel[] {
  const [N, C, H, W] = c.node.type.shape, [, , OH, OW] = c.inTypes[0].shape, k = windowAttrs(c).k, s = windowAttrs(c).stride;
  const pad = windowAttrs(c).pad ?? 0;
  const n = N * C * H * W, ep = epilogue(c);
  return [makeKernel({
    name: 'maxpool_bwd_argmax', epilogue: ep,
    buffers: [f32Buf('DY', c.node.inputs[0], 'read'), u32Buf('IDX', c.node.inputs[1], 'read'), f32Buf('out', c.node.id, 'read_write')],
    params: { n, h: H, w: W, oh: OH, ow: OW, k, stride: s, pad }, invocations: n, workgroup: ewWorkgroup(c.variant),
    body: `
  // (iy, ix): the input position in padded coordinates
  let ix = t % P.w + P.pad;
  let iy = (t / P.w) % P.h + P.pad;
  let nc = t / (P.w * P.h);
  // windows containing (iy, ix): oy·s ≤ iy < oy·s + k
  let oy0 = select(0u, (iy + 1u - P.k + P.stride - 1u) / P.stride, iy + 1u > P.k);
  let ox0 = select(0u, (ix + 1u - P.k + P.stride - 1u) / P.stride, ix + 1u > P.k);
  let oy1 = min(iy / P.stride + 1u, P.oh);
  let ox1 = min(ix / P.stride + 1u, P.ow);
  var acc = 0.0;
  for (var oy = oy0; oy < oy1; oy++) {
    for (var ox = ox0; ox < ox1; ox++) {
      let o = (nc * P.oh + oy) * P.ow + ox;
      let a = (IDX[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu;
      if (a == (iy - oy * P.stride) * P.k + (ix - ox * P.stride)) { acc = acc + DY[o]; }
    }
  }
  out[t] = ${ep.q('acc', 't')};`,
  })];
}
