/**
 * Max and average pooling (window k, stride s; max pooling may pad, at the end of this file) and their gradients,
 * and adaptive average pooling. Forward: one output per invocation.
 * Backward never needs atomics: with disjoint windows (stride ≥ k, the usual 2×2/2) each window writes its own cell
 * of the gradient; with overlapping windows it is a gather: each input element visits the windows that contain
 * it, in the same (oy, ox) order the CPU spec scatters in. maxpool_bwd recomputes each window's argmax with the spec's rule (the
 * first maximum in row-major window order wins; the first element is taken even if nothing exceeds it) and takes
 * the window's gradient only if that argmax is this element. Positions no window covers get 0.
 * avgpool_bwd divides each dy by k² before adding, as the spec does.
 */
import { numel } from '../../ir/types.js';
import { Kernel } from '../kernel.js';
import {
  BufferDecl, Epilogue, NEG_INF, NEG_INF_PARAM, NodeCtx, ParamValues, epilogue, ewWorkgroup, inBuf, makeKernel, nodeQuant, outBuf, outNumel,
} from './builder.js';
import { mxNodeKernel } from './mx.js';
import { attrsOf } from '../../ir/op-registry.js';

/** The node's attributes (ir/ops/pool.ts). */
const poolAttrs = (c: NodeCtx) => attrsOf(c.node, 'maxpool', 'avgpool', 'maxpool_bwd', 'avgpool_bwd');
import { poolPad } from '../../ir/ops/index.js';

/** Every pool kernel: inputs, then the node's output, stored through its quantize epilogue (`q(value, index)`). */
function poolKernel(c: NodeCtx, name: string, inputs: BufferDecl[], params: ParamValues, invocations: number,
  body: (q: Epilogue['q']) => string): Kernel {
  const ep = epilogue(c);
  return makeKernel({
    name, buffers: [...inputs, outBuf(c)], params, invocations, workgroup: ewWorkgroup(c.variant),
    epilogue: ep, body: body(ep.q),
  });
}

function poolParams(c: NodeCtx, x: number[], y: number[]) {
  return { h: x[2], w: x[3], oh: y[2], ow: y[3], k: poolAttrs(c).k, stride: poolAttrs(c).stride };
}

const OUTPUT_POS = `
  let ox = t % P.ow;
  let t2 = t / P.ow;
  let oy = t2 % P.oh;
  let nc = t2 / P.oh;
  let base = (nc * P.h + oy * P.stride) * P.w + ox * P.stride;`;

export function maxpoolKernels(c: NodeCtx): Kernel[] {
  if (poolPad(c.node.attrs)) return maxpoolPaddedKernels(c);
  const params = { ...poolParams(c, c.inTypes[0].shape, c.node.type.shape), ...NEG_INF_PARAM };
  // MX: an invocation owns whole blocks of outputs (kernels/mx.ts), each a window's max
  if (nodeQuant(c.node)?.fmt.kind === 'mx') {
    return [mxNodeKernel(c, 'maxpool', [inBuf(c, 0, 'X')], params, (i) => ({ loads: `let ox = ${i} % P.ow;
    let t2 = ${i} / P.ow;
    let base = ((t2 / P.oh) * P.h + (t2 % P.oh) * P.stride) * P.w + ox * P.stride;
    var pm = ${NEG_INF};
    for (var ky = 0u; ky < P.k; ky++) {
      for (var kx = 0u; kx < P.k; kx++) { let v = X[base + ky * P.w + kx]; if (v > pm) { pm = v; } }
    }
    `, expr: 'pm' }))];
  }
  return [poolKernel(c, 'maxpool', [inBuf(c, 0, 'X')], params, outNumel(c), (q) => `${OUTPUT_POS}
  var m = ${NEG_INF};
  for (var ky = 0u; ky < P.k; ky++) {
    for (var kx = 0u; kx < P.k; kx++) {
      let v = X[base + ky * P.w + kx];
      if (v > m) { m = v; }
    }
  }
  out[t] = ${q('m', 't')};`)];
}

export function avgpoolKernels(c: NodeCtx): Kernel[] {
  const params = poolParams(c, c.inTypes[0].shape, c.node.type.shape);
  return [poolKernel(c, 'avgpool', [inBuf(c, 0, 'X')], params, outNumel(c), (q) => `${OUTPUT_POS}
  var acc = 0.0;
  for (var ky = 0u; ky < P.k; ky++) {
    for (var kx = 0u; kx < P.k; kx++) { acc += X[base + ky * P.w + kx]; }
  }
  out[t] = ${q('acc / f32(P.k * P.k)', 't')};`)];
}

/** Input position of invocation t and the ranges of windows covering it: oy in [oy0, oy1], ox in [ox0, ox1]. */
const INPUT_POS = `
  let ix = t % P.w;
  let t2 = t / P.w;
  let iy = t2 % P.h;
  let nc = t2 / P.h;
  let oy0 = select(0u, (iy + 1u - P.k + P.stride - 1u) / P.stride, iy + 1u >= P.k);
  let ox0 = select(0u, (ix + 1u - P.k + P.stride - 1u) / P.stride, ix + 1u >= P.k);
  let oy1 = min(iy / P.stride, P.oh - 1u);
  let ox1 = min(ix / P.stride, P.ow - 1u);
  var acc = 0.0;`;

/**
 * Windows that do not overlap (stride ≥ k): one invocation per window writes its whole stride×stride cell of the
 * input gradient (the window's k×k part, zeros in the gap), the last row/column of windows extending to the edge,
 * so the cells tile the input and every element is written once (k²× fewer window scans than the gather).
 */
const CELL = `
  let ox = t % P.ow;
  let t2 = t / P.ow;
  let oy = t2 % P.oh;
  let nc = t2 / P.oh;
  let y0 = oy * P.stride;
  let x0 = ox * P.stride;
  let y1 = select(y0 + P.stride, P.h, oy + 1u == P.oh);
  let x1 = select(x0 + P.stride, P.w, ox + 1u == P.ow);
  let d = DY[t];`;

function disjoint(c: NodeCtx): boolean { return poolAttrs(c).stride >= poolAttrs(c).k; }

/** WGSL: `best` = the flat index of the first maximum of X over the k×k window at `base` (as the CPU picks it). */
const WINDOW_ARGMAX = `var best = base;
  var m = X[base];
  for (var ky = 0u; ky < P.k; ky++) {
    for (var kx = 0u; kx < P.k; kx++) {
      let idx = base + ky * P.w + kx;
      let v = X[idx];
      if (v > m) { m = v; best = idx; }
    }
  }`;

/** WGSL: `acc` += DY of every window (oy0..oy1 × ox0..ox1, from INPUT_POS) whose argmax (the first maximum, as the CPU) is `pos`. */
const gatherFromArgmax = (pos: string) => `for (var oy = oy0; oy <= oy1; oy++) {
    for (var ox = ox0; ox <= ox1; ox++) {
      let base = (nc * P.h + oy * P.stride) * P.w + ox * P.stride;
      ${WINDOW_ARGMAX}
      if (best == ${pos}) { acc += DY[(nc * P.oh + oy) * P.ow + ox]; }
    }
  }`;

export function maxpoolBwdKernels(c: NodeCtx): Kernel[] {
  if (poolPad(c.node.attrs)) return maxpoolPaddedBwdKernels(c);
  const params = poolParams(c, c.inTypes[1].shape, c.inTypes[0].shape);
  // MX: an invocation owns whole blocks of the input gradient (kernels/mx.ts), each element gathered from its windows;
  // 2×2/2 windows on rows of 4: 4 elements at a time, computed again for the rounding (2 windows' argmax is cheaper
  // than a private array indexed lane by lane: 4.2 vs 5.0 ms CPU time for LeNet-5's b64 first pooling gradient)
  const quad = poolAttrs(c).k === 2 && poolAttrs(c).stride === 2 && params.w % 4 === 0;
  if (nodeQuant(c.node)?.fmt.kind === 'mx') {
    return [mxNodeKernel(c, 'maxpool_bwd', [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X')], params, (i) => ({
      loads: `${INPUT_POS.replace(/\bt\b/g, `(${i})`).replace(/^\n/, '')}
${gatherFromArgmax(`(${i})`)}`, expr: 'acc' }), { value4: quad ? quad2x2 : undefined, recompute: quad })];
  }
  if (disjoint(c)) {
    const cells = numel(c.inTypes[0].shape);
    return [poolKernel(c, 'maxpool_bwd_cells', [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X')], params, cells, (q) => `${CELL}
  let base = (nc * P.h + y0) * P.w + x0;
  ${WINDOW_ARGMAX}
  for (var y = y0; y < y1; y++) {
    let row = (nc * P.h + y) * P.w;
    for (var x = x0; x < x1; x++) { out[row + x] = ${q('select(0.0, d, row + x == best)', 'row + x')}; }
  }`)];
  }
  return [poolKernel(c, 'maxpool_bwd', [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X')], params, outNumel(c), (q) => `${INPUT_POS}
${gatherFromArgmax('t')}
  out[t] = ${q('acc', 't')};`)];
}

/**
 * maxpool_bwd 2×2/2 for 4 consecutive input elements 4·i4 … 4·i4+3 of one row (the width a multiple of 4): they
 * lie in 2 windows, whose argmax (the spec's: the first maximum in row-major order) each element compares with.
 * Rows below the last window (odd heights) get 0, as no window covers them.
 */
const quad2x2 = (i4: string) => {
  const win = (j: number) => `
      let b${j} = (nc * P.h + oy * 2u) * P.w + ix + ${2 * j}u;
      var k${j} = 0u;
      var m${j} = X[b${j}];
      if (X[b${j} + 1u] > m${j}) { m${j} = X[b${j} + 1u]; k${j} = 1u; }
      if (X[b${j} + P.w] > m${j}) { m${j} = X[b${j} + P.w]; k${j} = 2u; }
      if (X[b${j} + P.w + 1u] > m${j}) { k${j} = 3u; }
      let d${j} = DY[(nc * P.oh + oy) * P.ow + ix / 2u + ${j}u];`;
  return {
    loads: `let ix = (4u * ${i4}) % P.w;
    let t2 = (4u * ${i4}) / P.w;
    let iy = t2 % P.h;
    let nc = t2 / P.h;
    let oy = iy / 2u;
    var q4 = vec4<f32>(0.0);
    if (oy < P.oh) {${win(0)}${win(1)}
      let c0 = (iy % 2u) * 2u;
      q4 = vec4<f32>(select(0.0, d0, k0 == c0), select(0.0, d0, k0 == c0 + 1u), select(0.0, d1, k1 == c0), select(0.0, d1, k1 == c0 + 1u));
    }
    `,
    expr: 'q4',
  };
};

export function avgpoolBwdKernels(c: NodeCtx): Kernel[] {
  const params = poolParams(c, c.node.type.shape, c.inTypes[0].shape);
  if (disjoint(c)) {
    return [poolKernel(c, 'avgpool_bwd_cells', [inBuf(c, 0, 'DY')], params, numel(c.inTypes[0].shape), (q) => `${CELL}
  let g = d / f32(P.k * P.k);
  for (var y = y0; y < y1; y++) {
    let row = (nc * P.h + y) * P.w;
    for (var x = x0; x < x1; x++) { out[row + x] = ${q('select(0.0, g, y - y0 < P.k && x - x0 < P.k)', 'row + x')}; }
  }`)];
  }
  return [poolKernel(c, 'avgpool_bwd', [inBuf(c, 0, 'DY')], params, outNumel(c), (q) => `${INPUT_POS}
  let kk = f32(P.k * P.k);
  for (var oy = oy0; oy <= oy1; oy++) {
    for (var ox = ox0; ox <= ox1; ox++) { acc += DY[(nc * P.oh + oy) * P.ow + ox] / kk; }
  }
  out[t] = ${q('acc', 't')};`)];
}

// ---- padded max pooling (the ImageNet stems' 3×3/2 pad 1): −∞ outside the input, so out-of-range taps are skipped ----

function paddedParams(c: NodeCtx, x: number[], y: number[]) {
  return { ...poolParams(c, x, y), pad: poolPad(c.node.attrs) };
}
/** WGSL visiting the in-bounds taps of window (oy, ox) of plane nc in row-major order, running `step` with `idx`. */
const paddedWindow = (step: string) => `
  for (var ky = 0u; ky < P.k; ky++) {
    let iy = i32(oy * P.stride + ky) - i32(P.pad);
    if (iy < 0 || iy >= i32(P.h)) { continue; }
    for (var kx = 0u; kx < P.k; kx++) {
      let ix = i32(ox * P.stride + kx) - i32(P.pad);
      if (ix < 0 || ix >= i32(P.w)) { continue; }
      let idx = (nc * P.h + u32(iy)) * P.w + u32(ix);
${step}
    }
  }`;

export function maxpoolPaddedKernels(c: NodeCtx): Kernel[] {
  const params = { ...paddedParams(c, c.inTypes[0].shape, c.node.type.shape), ...NEG_INF_PARAM };
  return [poolKernel(c, 'maxpool_pad', [inBuf(c, 0, 'X')], params, outNumel(c), (q) => `
  let ox = t % P.ow;
  let t2 = t / P.ow;
  let oy = t2 % P.oh;
  let nc = t2 / P.oh;
  var m = ${NEG_INF};${paddedWindow('      let v = X[idx]; if (v > m) { m = v; }')}
  out[t] = ${q('m', 't')};`)];
}

/** Gather: each input element visits the windows holding it ((oy, ox) ascending, the spec's order) and takes a
 *  window's gradient when the window's argmax (first in-bounds maximum) is this element. */
export function maxpoolPaddedBwdKernels(c: NodeCtx): Kernel[] {
  const params = paddedParams(c, c.inTypes[1].shape, c.inTypes[0].shape);
  return [poolKernel(c, 'maxpool_pad_bwd', [inBuf(c, 0, 'DY'), inBuf(c, 1, 'X')], params, outNumel(c), (q) => `
  let jx = t % P.w;
  let t2 = t / P.w;
  let jy = t2 % P.h;
  let nc = t2 / P.h;
  // windows oy with oy·s − p ≤ jy ≤ oy·s − p + k − 1
  let ey = i32(jy + P.pad) - i32(P.k) + 1;
  let ex = i32(jx + P.pad) - i32(P.k) + 1;
  let oy0 = u32(select(0, (ey + i32(P.stride) - 1) / i32(P.stride), ey > 0));
  let ox0 = u32(select(0, (ex + i32(P.stride) - 1) / i32(P.stride), ex > 0));
  let oy1 = min((jy + P.pad) / P.stride, P.oh - 1u);
  let ox1 = min((jx + P.pad) / P.stride, P.ow - 1u);
  var acc = 0.0;
  for (var oy = oy0; oy <= oy1; oy++) {
    for (var ox = ox0; ox <= ox1; ox++) {
      var best = 0xffffffffu;
      var m = 0.0;${paddedWindow('      let v = X[idx]; if (best == 0xffffffffu || v > m) { m = v; best = idx; }')}
      if (best == t) { acc += DY[(nc * P.oh + oy) * P.ow + ox]; }
    }
  }
  out[t] = ${q('acc', 't')};`)];
}

// ---- adaptive average pooling (ir/ops/pool.ts adaptiveWindow: rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉)) ----

const ADAPTIVE_FNS = `
fn win_lo(i: u32, len: u32, n: u32) -> u32 { return (i * len) / n; }
fn win_hi(i: u32, len: u32, n: u32) -> u32 { return ((i + 1u) * len + n - 1u) / n; }`;

export function adaptiveAvgpoolKernels(c: NodeCtx): Kernel[] {
  const [, , H, W] = c.inTypes[0].shape, [, , OH, OW] = c.node.type.shape, ep = epilogue(c);
  return [makeKernel({
    name: 'adaptive_avgpool', buffers: [inBuf(c, 0, 'X'), outBuf(c)], params: { h: H, w: W, oh: OH, ow: OW },
    invocations: outNumel(c), workgroup: ewWorkgroup(c.variant), epilogue: ep, decls: ADAPTIVE_FNS, body: `
  let ox = t % P.ow;
  let t2 = t / P.ow;
  let oy = t2 % P.oh;
  let nc = t2 / P.oh;
  let y0 = win_lo(oy, P.h, P.oh); let y1 = win_hi(oy, P.h, P.oh);
  let x0 = win_lo(ox, P.w, P.ow); let x1 = win_hi(ox, P.w, P.ow);
  var acc = 0.0;
  for (var y = y0; y < y1; y++) {
    for (var x = x0; x < x1; x++) { acc += X[(nc * P.h + y) * P.w + x]; }
  }
  out[t] = ${ep.q('acc / f32((y1 - y0) * (x1 - x0))', 't')};`,
  })];
}

/** Gather over the windows holding each input element, (oy, ox) ascending as the spec scatters. */
export function adaptiveAvgpoolBwdKernels(c: NodeCtx): Kernel[] {
  const [, , H, W] = c.node.type.shape, [, , OH, OW] = c.inTypes[0].shape, ep = epilogue(c);
  return [makeKernel({
    name: 'adaptive_avgpool_bwd', buffers: [inBuf(c, 0, 'DY'), outBuf(c)], params: { h: H, w: W, oh: OH, ow: OW },
    invocations: outNumel(c), workgroup: ewWorkgroup(c.variant), epilogue: ep, decls: ADAPTIVE_FNS, body: `
  let ix = t % P.w;
  let t2 = t / P.w;
  let iy = t2 % P.h;
  let nc = t2 / P.h;
  var acc = 0.0;
  for (var oy = 0u; oy < P.oh; oy++) {
    let y0 = win_lo(oy, P.h, P.oh); let y1 = win_hi(oy, P.h, P.oh);
    if (iy < y0 || iy >= y1) { continue; }
    for (var ox = 0u; ox < P.ow; ox++) {
      let x0 = win_lo(ox, P.w, P.ow); let x1 = win_hi(ox, P.w, P.ow);
      if (ix < x0 || ix >= x1) { continue; }
      acc += DY[(nc * P.oh + oy) * P.ow + ox] / f32((y1 - y0) * (x1 - x0));
    }
  }
  out[t] = ${ep.q('acc', 't')};`,
  })];
}
