/**
 * Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray 2016): the forward conv and, since the input
 * gradient of a 3×3 stride-1 conv is itself one (dy convolved with the flipped, transposed weights and padding
 * 2 − pad), the input gradient. A 2×2 output tile takes 16 multiplies per input channel instead of 36:
 *   Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
 * with d_c the 4×4 input patch of the tile, g_c the 3×3 filter, and
 *   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], Aᵀ = [1 1 1 0; 0 1 −1 −1].
 * Four passes, each a small kernel: the filter transform U[e][ko][ci] = (G g Gᵀ)[e] (e the 16 tile elements), the
 * input transform V[e][ci][t] = (Bᵀ d B)[e] of every tile t, the 16 products Mt[e][ko][t] = Σ_ci U·V, and the
 * output transform Aᵀ Mt A with the bias and the quantize epilogue in its stores. The tiling `wino<M>x<N>` is the
 * products' register block: a workgroup of 64 owns e and M output channels (workgroup id z: uniform U loads),
 * each lane N tiles (lane-consecutive: contiguous, unmasked V loads). A single fused kernel (each invocation
 * gathering and transforming its patches) was measured first: it redid the gathers and the input transform for
 * every block of M output channels and ran 1.7× slower than the direct convolution on lavapipe. The transforms add
 * and subtract exact halves of sums, so the result differs from the direct sum only by rounding
 * (test/webgpu/tiles.test.ts holds it to the same 1e-5 as every tile). The scratch (V and Mt are 4× the input and
 * the output) is why tune.ts checks a tile's buffers against the device.
 *
 * F(4×4, 3×3) (tiles `wino4_<M>x<N>`, all three convolutions) is the same passes on 6×6 patches: 36
 * products per 4×4 output tile, 2.25 multiplies per output against F(2×2)'s 4, and scratch 2.25× the input and the
 * output against 4×. Its transforms (Lavin & Gray's, points 0, ±1, ±2, ∞) carry constants up to 8 and 1/24, so
 * its rounding error is larger than F(2×2)'s; the tile tests hold it to the same 1e-5 of the largest output.
 *
 * The weight gradient of the same convolution is the transpose of that map (Y is linear in g):
 *   dg = Gᵀ [ Σ_tiles (A dy_t Aᵀ) ⊙ (Bᵀ d_t B) ] G,
 * so it takes the input transform (stored [e][t][ci]), the r×r → α×α transform of dy, α² products reduced over
 * tiles (split into chunks, M output channels per workgroup and N input channels per lane), each chunk's partial
 * taken back to the 3×3 taps, and the usual fixed-order sum of partials with the quantize epilogue (split-reduce.ts).
 */
import { Kernel } from '../kernel.js';
import { BufferDecl, NodeCtx, ParamValues, ceilDiv, epilogue, inBuf, outBuf, scratchRef } from './builder.js';
import { chooseChunks, partialsBuffer, sumPartialsKernel } from './split-reduce.js';
import { WinogradTile, makeTiledKernel, range, spill, tileName, winogradApplies } from './tiles.js';
import { attrsOf } from '../../ir/op-registry.js';

/** The node's attributes (ir/ops/conv.ts). */
const convAttrs = (c: NodeCtx) => attrsOf(c.node, 'conv2d', 'conv2d_bwd_data', 'conv2d_bwd_weight');
const isConv = (c: NodeCtx) => c.node.op === 'conv2d' || c.node.op === 'conv2d_bwd_data' || c.node.op === 'conv2d_bwd_weight';

const WG = 64;
/** Scratch indices of the forward and input-gradient passes: transformed filters, input tiles, the α² products. */
const U_SCRATCH = 0, V_SCRATCH = 1, M_SCRATCH = 2;
type Params = Record<string, number | ['i32' | 'f32', number]> & { ntiles: number; th: number; tw: number };

/** Which convolution the Winograd kernels compute for a node: the forward one, or the input gradient as one. */
interface WinoConv {
  /** input [N, ci, h, w] (x, or dy), output [N, ko, oh, ow] */
  n: number; ci: number; h: number; w: number; ko: number; oh: number; ow: number; pad: number;
  /** WGSL of the filter tap g[ko][ci][ky][kx] as an index into Wt (its element type's layout). */
  tap: (ko: string, ci: string, ky: number, kx: number) => string;
}

/**
 * Winograd F(r×r, 3×3): r outputs per tile side from α = r + 2 inputs, and its transforms as WGSL over vectors
 * given elementwise: bt (Bᵀ, α → α), g (G, 3 → α) and at (Aᵀ, α → r); for the weight gradient (the transposed
 * map) a (A, r → α) and gt (Gᵀ, α → 3).
 */
interface WinoF { r: 2 | 4; alpha: number; bt: Vec; g: Vec; at: Vec; a: Vec; gt: Vec }
type Vec = (v: (i: number) => string) => string[];

const F2: WinoF = {
  r: 2, alpha: 4,
  bt: (v) => [`${v(0)} - ${v(2)}`, `${v(1)} + ${v(2)}`, `${v(2)} - ${v(1)}`, `${v(1)} - ${v(3)}`],
  g: (v) => [v(0), `0.5 * (${v(0)} + ${v(1)} + ${v(2)})`, `0.5 * (${v(0)} - ${v(1)} + ${v(2)})`, v(2)],
  at: (v) => [`${v(0)} + ${v(1)} + ${v(2)}`, `${v(1)} - ${v(2)} - ${v(3)}`],
  a: (v) => [v(0), `${v(0)} + ${v(1)}`, `${v(0)} - ${v(1)}`, `-${v(1)}`],
  gt: (v) => [`${v(0)} + 0.5 * (${v(1)} + ${v(2)})`, `0.5 * (${v(1)} - ${v(2)})`, `0.5 * (${v(1)} + ${v(2)}) + ${v(3)}`],
};
const F4: WinoF = {
  r: 4, alpha: 6,
  bt: (v) => [
    `4.0 * ${v(0)} - 5.0 * ${v(2)} + ${v(4)}`,
    `${v(3)} + ${v(4)} - 4.0 * (${v(1)} + ${v(2)})`,
    `4.0 * (${v(1)} - ${v(2)}) - ${v(3)} + ${v(4)}`,
    `2.0 * (${v(3)} - ${v(1)}) - ${v(2)} + ${v(4)}`,
    `2.0 * (${v(1)} - ${v(3)}) - ${v(2)} + ${v(4)}`,
    `4.0 * ${v(1)} - 5.0 * ${v(3)} + ${v(5)}`,
  ],
  g: (v) => [
    `0.25 * ${v(0)}`,
    `-(${v(0)} + ${v(1)} + ${v(2)}) / 6.0`,
    `-(${v(0)} - ${v(1)} + ${v(2)}) / 6.0`,
    `${v(0)} / 24.0 + ${v(1)} / 12.0 + ${v(2)} / 6.0`,
    `${v(0)} / 24.0 - ${v(1)} / 12.0 + ${v(2)} / 6.0`,
    v(2),
  ],
  at: (v) => [
    `${v(0)} + ${v(1)} + ${v(2)} + ${v(3)} + ${v(4)}`,
    `${v(1)} - ${v(2)} + 2.0 * (${v(3)} - ${v(4)})`,
    `${v(1)} + ${v(2)} + 4.0 * (${v(3)} + ${v(4)})`,
    `${v(1)} - ${v(2)} + 8.0 * (${v(3)} - ${v(4)}) + ${v(5)}`,
  ],
  a: (v) => [
    v(0),
    `${v(0)} + ${v(1)} + ${v(2)} + ${v(3)}`,
    `${v(0)} - ${v(1)} + ${v(2)} - ${v(3)}`,
    `${v(0)} + 2.0 * ${v(1)} + 4.0 * ${v(2)} + 8.0 * ${v(3)}`,
    `${v(0)} - 2.0 * ${v(1)} + 4.0 * ${v(2)} - 8.0 * ${v(3)}`,
    v(3),
  ],
  gt: (v) => [
    `0.25 * ${v(0)} - (${v(1)} + ${v(2)}) / 6.0 + (${v(3)} + ${v(4)}) / 24.0`,
    `(${v(2)} - ${v(1)}) / 6.0 + (${v(3)} - ${v(4)}) / 12.0`,
    `(${v(3)} + ${v(4)} - ${v(1)} - ${v(2)}) / 6.0 + ${v(5)}`,
  ],
};

/** The kernels of a Winograd tile: F(2×2, 3×3) for `wino`, F(4×4, 3×3) for `wino4`. */
export function winogradKernels(c: NodeCtx, tile: WinogradTile): Kernel[] {
  const op = c.node.op;
  const f = tile.kind === 'wino4' ? F4 : F2, E = f.alpha * f.alpha;
  if (op === 'conv2d_bwd_weight') return weightGradKernels(c, tile, f);
  const wShape = c.inTypes[1].shape;
  if (!isConv(c) || !winogradApplies(op, wShape.slice(2), convAttrs(c).stride)) throw new Error(`wino tiles need a 3×3 stride-1 convolution (%${c.node.id} ${op})`);
  const pad = convAttrs(c).pad;
  let conv: WinoConv;
  if (op === 'conv2d') {
    const [N, C, H, W] = c.inTypes[0].shape, [O] = wShape, [, , OH, OW] = c.node.type.shape;
    conv = { n: N, ci: C, h: H, w: W, ko: O, oh: OH, ow: OW, pad, tap: (k, i, y, x) => `((${k}) * P.ci + ${i}) * 9u + ${y * 3 + x}u` };
  } else {
    // dx[n,c,y,x] = Σ_o Σ_{ky,kx} dy[n,o,y + (2 − pad) − 2 + ky', …]·w[o,c,2 − ky',2 − kx']: a forward conv of dy
    // with filter g[c][o][ky'][kx'] = w[o][c][2 − ky'][2 − kx'] and padding 2 − pad.
    const [N, C, H, W] = c.node.type.shape, [, , OH, OW] = c.inTypes[0].shape, [O] = wShape;
    conv = { n: N, ci: O, h: OH, w: OW, ko: C, oh: H, ow: W, pad: 2 - pad, tap: (k, i, y, x) => `((${i}) * P.ko + ${k}) * 9u + ${(2 - y) * 3 + (2 - x)}u` };
  }
  const params = tileParams(conv, f.r);
  const { ntiles } = params;
  const u = (a: 'read' | 'read_write') => scratch('U', U_SCRATCH, E * conv.ko * conv.ci, a);
  const v = (a: 'read' | 'read_write') => scratch('V', V_SCRATCH, E * conv.ci * ntiles, a);
  const mt = (a: 'read' | 'read_write') => scratch('Mt', M_SCRATCH, E * conv.ko * ntiles, a);
  const base = op === 'conv2d' ? 'conv2d' : 'conv2d_bwd_data', wino = tile.kind;
  const hasBias = op === 'conv2d' && c.node.inputs.length > 2;
  // flops: the direct convolution's, as every tile reports (GFLOP/s stay comparable across tilings)
  const flops = 2 * conv.n * conv.ko * conv.oh * conv.ow * conv.ci * 9;
  return [
    filterTransform(`${base}_${wino}_filter`, inBuf(c, 1, 'Wt'), u('read_write'), conv, params, f),
    inputTransform(`${base}_${wino}_input`, inBuf(c, 0, 'X'), v('read_write'), conv, params, f),
    productKernel(`${base}_${tileName(tile)}`, u('read'), v('read'), mt('read_write'), conv, params, tile.m, tile.n, flops, E),
    outputTransform(c, `${base}${hasBias ? '_bias' : ''}_${wino}_output`, mt('read'), conv, params, hasBias, f),
  ];
}

/** The convolution's sizes and its grid of r×r output tiles as kernel params. */
function tileParams(conv: Omit<WinoConv, 'tap'>, r: number): Params {
  const th = ceilDiv(conv.oh, r), tw = ceilDiv(conv.ow, r);
  if (th * tw >= 2 ** 22) throw new Error(`wino tiles: ${conv.oh}×${conv.ow} outputs per image are too many`);
  return {
    n: conv.n, ci: conv.ci, h: conv.h, w: conv.w, ko: conv.ko, oh: conv.oh, ow: conv.ow, pad: ['i32', conv.pad],
    th, tw, ntiles: conv.n * th * tw, inv_tw: ['f32', 1 / tw],
  };
}

const scratch = (name: string, index: number, floats: number, access: 'read' | 'read_write'): BufferDecl =>
  ({ name, ref: scratchRef(index, floats * 4), elem: 'f32', access });

/** U[e][ko][ci] = (G g Gᵀ)[e] for every (ko, ci): one invocation each. */
function filterTransform(name: string, wt: BufferDecl, u: BufferDecl, conv: WinoConv, params: Params, f: WinoF): Kernel {
  const g = (y: number, x: number) => `g${y}${x}`, A = range(f.alpha);
  // G g (rows), then the same on the columns of the result
  const body = `
  let idx = (wid.x + wid.y * nwg.x) * 64u + li;
  if (idx < P.ko * P.ci) {
    let ko = idx % P.ko;
    let ci = idx / P.ko;
${range(3).map((y) => range(3).map((x) => `    let ${g(y, x)} = Wt[${conv.tap('ko', 'ci', y, x)}];`).join('\n')).join('\n')}
${range(3).map((x) => f.g((y) => g(y, x)).map((e, r) => `    let t${r}${x} = ${e};`).join('\n')).join('\n')}
${A.map((r) => f.g((x) => `t${r}${x}`).map((e, s) => `    U[(${r * f.alpha + s}u * P.ko + ko) * P.ci + ci] = ${e};`).join('\n')).join('\n')}
  }`;
  const [gx, gy] = spill(ceilDiv(conv.ko * conv.ci, 64));
  return makeTiledKernel({ name, buffers: [wt, u], params, body, workgroup: [64, 1, 1], dispatch: [gx, gy, 1] });
}

/**
 * V = (Bᵀ d B)[e] of tile t's α×α input patch d in channel ci, one invocation per (ci, t), stored [e][ci][t]
 * (`byTile` false: the forward product's lanes take tiles) or [e][t][ci] (true: the weight gradient's take channels).
 */
function inputTransform(name: string, x: BufferDecl, v: BufferDecl, conv: Pick<WinoConv, 'n' | 'ci'>, params: Params, f: WinoF, byTile = false): Kernel {
  if ((params.w as number) % 4 === 0 && params.tw % ROW_TILES === 0) return inputTransformRows(name, x, v, conv, params, f, byTile);
  const A = range(f.alpha);
  const tc = tileCoords(params, 1, 'ci', 'P.ci', conv.ci);
  const body = `
${tc.wgsl}
    let iy = i32(ty * ${f.r}u) - P.pad;
    let ix = i32(tx * ${f.r}u) - P.pad;
    let xb = i32((n * P.ci + ci) * P.h * P.w) + iy * i32(P.w) + ix;
${A.map((i) => `    let vy${i} = iy + ${i} >= 0 && iy + ${i} < i32(P.h);
    let vx${i} = ix + ${i} >= 0 && ix + ${i} < i32(P.w);`).join('\n')}
${A.map((i) => A.map((j) => `    let d${i}${j} = select(0.0, X[select(0, xb + ${i} * i32(P.w) + ${j}, vy${i} && vx${j})], vy${i} && vx${j});`).join('\n')).join('\n')}
${A.map((j) => f.bt((i) => `d${i}${j}`).map((e, r) => `    let s${r}${j} = ${e};`).join('\n')).join('\n')}
    let vs = P.ci * P.ntiles;
    let vb = ${byTile ? 't * P.ci + ci' : 'ci * P.ntiles + t'};
${A.map((r) => f.bt((j) => `s${r}${j}`).map((e, c) => `    V[${r * f.alpha + c}u * vs + vb] = ${e};`).join('\n')).join('\n')}
  }`;
  return makeTiledKernel({ name, buffers: [x, v], params: { ...params, ...tc.params }, body, decls: DIV_WGSL, workgroup: [64, 1, 1], dispatch: tc.dispatch(conv.n) });
}

/**
 * The α² products: Mt[e][ko][t] = Σ_ci U[e][ko][ci]·V[e][ci][t], register-blocked like the reg tiles: a workgroup
 * of 64 owns e and M output channels (workgroup id z: uniform U loads) and 64·N tiles, lane-consecutive (V loads
 * contiguous across lanes, no masks).
 */
function productKernel(name: string, u: BufferDecl, v: BufferDecl, mt: BufferDecl, conv: WinoConv, params: Params, m: number, nt: number, flops: number, E: number): Kernel {
  const J = range(m), Q = range(nt);
  const kb = ceilDiv(conv.ko, m);
  const body = `
  let e = wid.z / P.kb;
  let k0 = (wid.z % P.kb) * ${m}u;
  let tb = (wid.x + wid.y * nwg.x) * ${WG * nt}u + li;
${Q.map((q) => `  let t${q} = min(tb + ${q * WG}u, P.ntiles - 1u);`).join('\n')}
${J.map((j) => `  var ui${j} = (e * P.ko + min(k0 + ${j}u, P.ko - 1u)) * P.ci;`).join('\n')}
  var vi = e * P.ci * P.ntiles;
${J.map((j) => Q.map((q) => `var a${j}_${q} = 0.0;`).join(' ')).join('\n')}
  for (var ci = 0u; ci < P.ci; ci++) {
${Q.map((q) => `    let v${q} = V[vi + t${q}];`).join('\n')}
${J.map((j) => `    let u${j} = U[ui${j}];`).join('\n')}
${J.map((j) => Q.map((q) => `    a${j}_${q} += u${j} * v${q};`).join(' ')).join('\n')}
${J.map((j) => `    ui${j}++;`).join('\n')}
    vi += P.ntiles;
  }
  let ob = e * P.ko * P.ntiles;
${Q.map((q) => `  if (tb + ${q * WG}u < P.ntiles) {
${J.map((j) => `    if (k0 + ${j}u < P.ko) { Mt[ob + (k0 + ${j}u) * P.ntiles + t${q}] = a${j}_${q}; }`).join('\n')}
  }`).join('\n')}`;
  const [gx, gy] = spill(ceilDiv(params.ntiles, WG * nt));
  return makeTiledKernel({
    name, buffers: [u, v, mt], params: { ...params, kb }, body, workgroup: [WG, 1, 1], dispatch: [gx, gy, E * kb], flops,
  });
}

/** out = Aᵀ Mt A (+ bias) through the quantize epilogue: one invocation per (n, ko, tile), r×r outputs each. */
function outputTransform(c: NodeCtx, name: string, mt: BufferDecl, conv: WinoConv, params: Params, hasBias: boolean, f: WinoF): Kernel {
  if (conv.ow % (ROW_TILES * f.r) === 0) return outputTransformRows(c, name, mt, conv, params, hasBias, f);
  const ep = epilogue(c);
  const buffers: BufferDecl[] = [mt];
  if (hasBias) buffers.push(inBuf(c, 2, 'bias'));
  buffers.push(outBuf(c));
  const A = range(f.alpha), R = range(f.r);
  const store = (a: number, b: number) => {
    const i = tileAt(a, b), st = `out[${i}] = ${ep.q(`y${a}${b}`, i)};`;
    return tileInside(a, b) ? `    if (${tileInside(a, b)}) { ${st} }` : `    ${st}`;
  };
  const tc = tileCoords(params, 1, 'ko', 'P.ko', conv.ko);
  const body = `
${tc.wgsl}
    let oy = ty * ${f.r}u;
    let ox = tx * ${f.r}u;
    let ms = P.ko * P.ntiles;
    let mb = ko * P.ntiles + t;
${range(f.alpha * f.alpha).map((e) => `    let m${e} = Mt[${e}u * ms + mb];`).join('\n')}
${A.map((cc) => f.at((r) => `m${r * f.alpha + cc}`).map((e, a) => `    let r${a}_${cc} = ${e};`).join('\n')).join('\n')}
${R.map((a) => f.at((cc) => `r${a}_${cc}`).map((e, b) => `    let y${a}${b} = ${e}${hasBias ? ' + bias[ko]' : ''};`).join('\n')).join('\n')}
    let i = ((n * P.ko + ko) * P.oh + oy) * P.ow + ox;
${tileInsideLets(f.r)}
${R.map((a) => R.map((b) => store(a, b)).join('\n')).join('\n')}
  }`;
  return makeTiledKernel({ name, buffers, params: { ...params, ...tc.params }, body, decls: DIV_WGSL, epilogue: ep, workgroup: [64, 1, 1], dispatch: tc.dispatch(conv.n) });
}

/** Tiles per invocation of the row-vectorised transforms. */
const ROW_TILES = 4;

/**
 * inputTransform for rows that vec4 loads can walk (W a multiple of 4, tiles per row a multiple of ROW_TILES): one
 * invocation takes ROW_TILES horizontally adjacent tiles of one channel, loading each patch row as aligned vec4s
 * (a vec4 is wholly inside the row or wholly padding) — a quarter of the per-lane loads of the scalar form, which
 * on CPU drivers were most of the transform's time — and, in the [e][ci][t] layout, storing each element's four
 * tiles as one vec4.
 */
function inputTransformRows(name: string, x: BufferDecl, v: BufferDecl, conv: Pick<WinoConv, 'n' | 'ci'>, params: Params, f: WinoF, byTile: boolean): Kernel {
  const A = range(f.alpha), T = range(ROW_TILES), pad = (params.pad as ['i32', number])[1];
  // the loaded window starts a whole vec4 left of the first tile's first column when there is padding to its left
  const lo = pad > 0 ? 4 : 0;
  const nvec = Math.ceil((lo - pad + (ROW_TILES - 1) * f.r + f.alpha) / 4);
  const K = range(nvec);
  const el = (i: number, w: number) => `x${i}_${w >> 2}[${w & 3}]`;
  const tc = tileCoords(params, ROW_TILES, 'ci', 'P.ci', conv.ci);
  const body = `
${tc.wgsl}
    let iy = i32(ty * ${f.r}u) - P.pad;
    let cb = i32(tx * ${ROW_TILES * f.r}u) - ${lo};
    let xb = i32((n * P.ci + ci) * P.h * P.w) + cb;
${K.map((k) => `    let vx${k} = cb + ${4 * k} >= 0 && cb + ${4 * k} < i32(P.w);`).join('\n')}
${A.map((i) => `    let vy${i} = iy + ${i} >= 0 && iy + ${i} < i32(P.h);
    let rb${i} = xb + (iy + ${i}) * i32(P.w);
${K.map((k) => `    let x${i}_${k} = select(vec4<f32>(), X[select(0u, u32(rb${i} + ${4 * k}) >> 2u, vy${i} && vx${k})], vy${i} && vx${k});`).join('\n')}`).join('\n')}
${T.map((j) => A.map((c) => f.bt((i) => el(i, lo - pad + j * f.r + c)).map((e, r) => `    let s${j}_${r}${c} = ${e};`).join('\n')).join('\n')).join('\n')}
${T.map((j) => A.map((r) => f.bt((c) => `s${j}_${r}${c}`).map((e, c) => `    let v${j}_${r * f.alpha + c} = ${e};`).join('\n')).join('\n')).join('\n')}
    let t0 = (n * P.th + ty) * P.tw + tx * ${ROW_TILES}u;
    let vs = P.ci * P.ntiles;
${byTile
    ? range(f.alpha * f.alpha).map((e) => T.map((j) => `    V[${e}u * vs + (t0 + ${j}u) * P.ci + ci] = v${j}_${e};`).join('\n')).join('\n')
    : `    let vb = (ci * P.ntiles + t0) >> 2u;
    let vs4 = vs >> 2u;
${range(f.alpha * f.alpha).map((e) => `    V[${e}u * vs4 + vb] = vec4<f32>(${T.map((j) => `v${j}_${e}`).join(', ')});`).join('\n')}`}
  }`;
  return makeTiledKernel({
    name: `${name}_rows`, buffers: [{ ...x, view: 'vec4<f32>' }, byTile ? v : { ...v, view: 'vec4<f32>' }],
    params: { ...params, ...tc.params }, body, decls: DIV_WGSL, workgroup: [64, 1, 1],
    dispatch: tc.dispatch(conv.n),
  });
}

/**
 * outputTransform for output rows of whole tile groups (OW a multiple of ROW_TILES·r): one invocation takes ROW_TILES
 * horizontally adjacent tiles of one output channel, loading each element's four tiles of Mt as one vec4 and storing
 * each output row of the group (4·r contiguous values) as vec4s; only the bottom edge needs a guard.
 */
function outputTransformRows(c: NodeCtx, name: string, mt: BufferDecl, conv: WinoConv, params: Params, hasBias: boolean, f: WinoF): Kernel {
  const ep = epilogue(c);
  const buffers: BufferDecl[] = [{ ...mt, view: 'vec4<f32>' }];
  if (hasBias) buffers.push(inBuf(c, 2, 'bias'));
  buffers.push({ ...outBuf(c), view: 'vec4<f32>' });
  const A = range(f.alpha), R = range(f.r), T = range(ROW_TILES), E = f.alpha * f.alpha;
  const tc = tileCoords(params, ROW_TILES, 'ko', 'P.ko', conv.ko);
  // output row a of the group: 4·r values, vec4 k holding columns 4k … 4k + 3 (tile ⌊w / r⌋, column w mod r)
  const row = (a: number) => range(f.r).map((k) => {
    const i = `i + ${a ? `${a}u * P.ow + ` : ''}${4 * k}u`;
    const comps = range(4).map((q) => { const w = 4 * k + q; return ep.q(`y${w / f.r | 0}_${a}${w % f.r}`, `${i} + ${q}u`); });
    return `out[(${i}) >> 2u] = vec4<f32>(${comps.join(', ')});`;
  });
  const body = `
${tc.wgsl}
    let oy = ty * ${f.r}u;
    let ox = tx * ${ROW_TILES * f.r}u;
    let ms4 = (P.ko * P.ntiles) >> 2u;
    let mb4 = (ko * P.ntiles + (n * P.th + ty) * P.tw + tx * ${ROW_TILES}u) >> 2u;
${range(E).map((e) => `    let m${e} = Mt[${e}u * ms4 + mb4];`).join('\n')}
${T.map((j) => A.map((cc) => f.at((r) => `m${r * f.alpha + cc}[${j}]`).map((e, a) => `    let r${j}_${a}_${cc} = ${e};`).join('\n')).join('\n')).join('\n')}
${T.map((j) => R.map((a) => f.at((cc) => `r${j}_${a}_${cc}`).map((e, b) => `    let y${j}_${a}${b} = ${e}${hasBias ? ' + bias[ko]' : ''};`).join('\n')).join('\n')).join('\n')}
    let i = ((n * P.ko + ko) * P.oh + oy) * P.ow + ox;
${R.map((a) => row(a).map((st) => (a ? `    if (oy + ${a}u < P.oh) { ${st} }` : `    ${st}`)).join('\n')).join('\n')}
  }`;
  return makeTiledKernel({
    name: `${name}_rows`, buffers, params: { ...params, ...tc.params }, body, decls: DIV_WGSL, epilogue: ep,
    workgroup: [64, 1, 1], dispatch: tc.dispatch(conv.n),
  });
}

/**
 * The transforms' invocation → (channel, tile): image n from the workgroup id, the tile (ty, tx) of the image from
 * the lane (tx: the group of `group` adjacent tiles, for the row-vectorised kernels). An image of fewer than 64 tiles (or groups) shares a
 * workgroup between 2^k channels (`ch`, of `count`), lanes taking consecutive tiles of one channel, so that lanes
 * are not left idle (a 16×16 image has 16 4×4 tiles: without this, 48 of every 64 lanes did nothing). The divisions
 * by the lanes per channel are shifts; the one by the tile-row length is done in f32 (integer division by a
 * value that is not a constant has no SIMD form on CPU drivers, and in kernels this short it was most of their time).
 */
function tileCoords(params: Params, group: 1 | typeof ROW_TILES, ch: string, count: string, channels: number): { wgsl: string; params: ParamValues; dispatch: (n: number) => [number, number, number] } {
  const perRow = params.tw / group, perImage = params.th * perRow;
  const cpw = Math.min(2 ** Math.floor(Math.log2(Math.max(1, 64 / perImage))), 2 ** Math.ceil(Math.log2(channels)));
  const lanes = 64 / cpw;
  const rowLen = group === 1 ? 'P.tw' : 'P.tw4';
  // lanes per channel and its log2 are params (uniform: shifts by them stay SIMD), so the shape stays out of the key
  const wgsl = `  let ti = wid.x * P.tc_lanes + (li & (P.tc_lanes - 1u));
  let ${ch} = wid.z * (64u >> P.tc_log) + (li >> P.tc_log);
  let n = wid.y;
  let ty = lpc_div(ti, ${rowLen}, P.inv_${rowLen.slice(2)});
  let tx = ti - ty * ${rowLen};
  let t = n * P.th * P.tw + ti;
  if (ti < P.th * ${rowLen} && ${ch} < ${count}) {`;
  const groups: ParamValues = group === 1 ? {} : { tw4: perRow, inv_tw4: ['f32', 1 / perRow] };
  return { wgsl, params: { ...groups, tc_lanes: lanes, tc_log: Math.log2(lanes) }, dispatch: (n) => [ceilDiv(perImage, lanes), n, ceilDiv(channels, cpw)] };
}

/** Element (a, b) of an r×r output tile whose first element is `i` (row length P.ow), as WGSL. */
const tileAt = (a: number, b: number) => `i${a ? ` + ${a === 1 ? '' : `${a}u * `}P.ow` : ''}${b ? ` + ${b}u` : ''}`;
/** WGSL `let`s saying which rows and columns of the tile at (oy, ox) are inside the output, and the condition for
 *  element (a, b) ('' when it always is). */
const tileInsideLets = (r: number) => range(r).slice(1).map((a) => `    let in_y${a} = oy + ${a}u < P.oh;\n    let in_x${a} = ox + ${a}u < P.ow;`).join('\n');
const tileInside = (a: number, b: number) => [a ? `in_y${a}` : '', b ? `in_x${b}` : ''].filter(Boolean).join(' && ');

/** a / d for a < 2^22 from inv = f32(1/d): the product is within 0.5 of a/d, so one correction step each way. */
const DIV_WGSL = `fn lpc_div(a: u32, d: u32, inv: f32) -> u32 {
  var q = u32(f32(a) * inv);
  q = select(q, q - 1u, q * d > a);
  return select(q, q + 1u, (q + 1u) * d <= a);
}
`;

// ---- the weight gradient ----

/** Lanes of a weight-gradient product workgroup: enough for the input channels at N per lane, 8 to 64. */
const wgradLanes = (ci: number, nt: number) => Math.min(64, Math.max(8, 2 ** Math.ceil(Math.log2(ceilDiv(ci, nt)))));

function weightGradKernels(c: NodeCtx, tile: WinogradTile, f: WinoF): Kernel[] {
  const { m, n: nt } = tile;
  const [N, O, OH, OW] = c.inTypes[0].shape, [, C, H, W] = c.inTypes[1].shape;
  const kHW = c.node.type.shape.slice(2);
  if (!isConv(c) || !winogradApplies(c.node.op, kHW, convAttrs(c).stride)) throw new Error(`wino tiles need a 3×3 stride-1 convolution (%${c.node.id} ${c.node.op})`);
  const params = tileParams({ n: N, ci: C, h: H, w: W, ko: O, oh: OH, ow: OW, pad: convAttrs(c).pad }, f.r);
  const { ntiles } = params;
  const E = f.alpha * f.alpha;
  const lanes = wgradLanes(C, nt), ob = ceilDiv(O, m), cg = ceilDiv(C, lanes * nt);
  // chunks of tiles: enough workgroups for the target, at least 32 tiles each
  const { chunks, perChunk } = chooseChunks(ntiles, E * ob * cg * lanes, c.variant, 32);
  const total = O * C * 9;
  // scratch 0 is the partials of the final sum (split-reduce.ts)
  const v = (a: 'read' | 'read_write') => scratch('V', 1, E * C * ntiles, a);
  const dt = (a: 'read' | 'read_write') => scratch('Dt', 2, E * O * ntiles, a);
  const pe = (a: 'read' | 'read_write') => scratch('PE', 3, chunks * E * O * C, a);
  const base = 'conv2d_bwd_weight', wino = tile.kind;
  const product = wgradProduct(`${base}_${tileName(tile)}`, dt('read'), v('read'), pe('read_write'),
    { ...params, per_chunk: perChunk, ob }, m, nt, lanes, [cg, chunks, E * ob], 2 * N * O * OH * OW * C * 9, E);
  return [
    inputTransform(`${base}_${wino}_input`, inBuf(c, 1, 'X'), v('read_write'), { n: N, ci: C }, params, f, true),
    dyTransform(`${base}_${wino}_dy`, inBuf(c, 0, 'DY'), dt('read_write'), params, f),
    product,
    partialTaps(`${base}_${wino}_taps`, pe('read'), partialsBuffer(chunks, total, 'read_write'), { ...params, chunks }, f),
    sumPartialsKernel(c, base, chunks, total),
  ];
}

/** Dt[e][ko][t] = (A dy_t Aᵀ)[e] of tile t's r×r dy block (zero past the edge): one invocation per (n, ko, tile). */
function dyTransform(name: string, dy: BufferDecl, dt: BufferDecl, params: Params, f: WinoF): Kernel {
  const R = range(f.r), A = range(f.alpha);
  const load = (a: number, b: number) => {
    const i = tileAt(a, b), ok = tileInside(a, b);
    return ok ? `select(0.0, DY[select(i, ${i}, ${ok})], ${ok})` : `DY[${i}]`;
  };
  const tc = tileCoords(params, 1, 'ko', 'P.ko', params.ko as number);
  const body = `
${tc.wgsl}
    let oy = ty * ${f.r}u;
    let ox = tx * ${f.r}u;
    let i = ((n * P.ko + ko) * P.oh + oy) * P.ow + ox;
${tileInsideLets(f.r)}
${R.map((a) => R.map((b) => `    let g${a}${b} = ${load(a, b)};`).join('\n')).join('\n')}
${R.map((b) => f.a((a) => `g${a}${b}`).map((e, r) => `    let s${r}${b} = ${e};`).join('\n')).join('\n')}
    let ds = P.ko * P.ntiles;
    let db = ko * P.ntiles + t;
${A.map((r) => f.a((b) => `s${r}${b}`).map((e, q) => `    Dt[${r * f.alpha + q}u * ds + db] = ${e};`).join('\n')).join('\n')}
  }`;
  return makeTiledKernel({ name, buffers: [dy, dt], params: { ...params, ...tc.params }, body, decls: DIV_WGSL, workgroup: [64, 1, 1], dispatch: tc.dispatch(params.n as number) });
}

/**
 * PE[chunk][e][ko][ci] = Σ_{t in chunk} Dt[e][ko][t]·V[e][t][ci]: a workgroup owns e and M output channels
 * (workgroup id z: uniform Dt loads) and lanes·N input channels (lane-consecutive V loads), one chunk of tiles
 * (workgroup id y).
 */
function wgradProduct(
  name: string, dt: BufferDecl, v: BufferDecl, pe: BufferDecl, params: Params, m: number, nt: number, lanes: number, dispatch: [number, number, number], flops: number, E: number,
): Kernel {
  const J = range(m), Q = range(nt);
  const body = `
  let e = wid.z / P.ob;
  let k0 = (wid.z % P.ob) * ${m}u;
  let chunk = wid.y;
  let cb = wid.x * ${lanes * nt}u + li;
${Q.map((q) => `  let c${q} = min(cb + ${q * lanes}u, P.ci - 1u);`).join('\n')}
  let t0 = chunk * P.per_chunk;
  let t1 = min(P.ntiles, t0 + P.per_chunk);
${J.map((j) => `  var di${j} = (e * P.ko + min(k0 + ${j}u, P.ko - 1u)) * P.ntiles + t0;`).join('\n')}
  var vi = (e * P.ntiles + t0) * P.ci;
${J.map((j) => Q.map((q) => `var a${j}_${q} = 0.0;`).join(' ')).join('\n')}
  for (var t = t0; t < t1; t++) {
${Q.map((q) => `    let v${q} = V[vi + c${q}];`).join('\n')}
${J.map((j) => `    let d${j} = Dt[di${j}];`).join('\n')}
${J.map((j) => Q.map((q) => `    a${j}_${q} += d${j} * v${q};`).join(' ')).join('\n')}
${J.map((j) => `    di${j}++;`).join('\n')}
    vi += P.ci;
  }
  let pb = (chunk * ${E}u + e) * P.ko;
${Q.map((q) => `  if (cb + ${q * lanes}u < P.ci) {
${J.map((j) => `    if (k0 + ${j}u < P.ko) { PE[(pb + k0 + ${j}u) * P.ci + c${q}] = a${j}_${q}; }`).join('\n')}
  }`).join('\n')}`;
  return makeTiledKernel({ name, buffers: [dt, v, pe], params, body, workgroup: [lanes, 1, 1], dispatch, flops });
}

/** part[chunk][(ko·ci + c)·9 + tap] = (Gᵀ PE[chunk][·][ko][c] G)[tap]: each chunk's partial as 3×3 taps (linear). */
function partialTaps(name: string, pe: BufferDecl, part: BufferDecl, params: Params, f: WinoF): Kernel {
  const A = range(f.alpha), E = f.alpha * f.alpha;
  const body = `
  let idx = (wid.x + wid.y * nwg.x) * 64u + li;
  let oc = P.ko * P.ci;
  if (idx < oc * P.chunks) {
    let chunk = idx / oc;
    let r = idx % oc;
    let pb = chunk * ${E}u * oc + r;
${range(E).map((e) => `    let p${e} = PE[pb + ${e}u * oc];`).join('\n')}
${A.map((s) => f.gt((r) => `p${r * f.alpha + s}`).map((e, i) => `    let q${i}_${s} = ${e};`).join('\n')).join('\n')}
    let ob = chunk * oc * 9u + r * 9u;
${range(3).map((i) => f.gt((s) => `q${i}_${s}`).map((e, j) => `    part[ob + ${i * 3 + j}u] = ${e};`).join('\n')).join('\n')}
  }`;
  const [gx, gy] = spill(ceilDiv((params.ko as number) * (params.ci as number) * (params.chunks as number), 64));
  return makeTiledKernel({ name, buffers: [pe, part], params, body, workgroup: [64, 1, 1], dispatch: [gx, gy, 1] });
}
