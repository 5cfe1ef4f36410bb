/**
 * matmul (C = op(A)·op(B), ta/tb) and linear (y = x·Wᵀ + b = matmul with tb and a bias), register-blocked: each
 * invocation computes a 4×4 block of C in four vec4 accumulators with no shared memory or barriers (the fastest
 * shape on CPU Vulkan drivers, research/webgpu-on-cpu.md §1, and reasonable on GPUs). Rows and columns past the
 * edge are clamped for loads (their results are discarded) and guarded for stores, so any M, N, K works.
 * ta/tb and the bias decide the loop's index arithmetic, so they are structure; M, N, K and strides are params.
 * When K and both leading dimensions are multiples of 4 (every dense layer of the models we train) a vec4 variant
 * reads 4×4 blocks of A and B as four 16-byte loads each (64 FMAs per 8 loads), the shape research §1 measured
 * fastest on lavapipe; otherwise the scalar variant (8 scalar loads per 16 FMAs) handles any shape. That is the
 * tile `reg4x4`; `smem<B>` is the shared-memory GEMM for GPUs (tiles-smem.ts, tiles.ts).
 */
import { Kernel } from '../kernel.js';
import {
  BufferDecl, Epilogue, NodeCtx, blockStatsLayout, ceilDiv, epilogue, inBuf, isBlockFormat, makeKernel, nodeQuant, outBuf, postOps, qpostOf,
} from './builder.js';
import { onePassBlockKernel, onePassFits } from './quantize.js';
import { SMEM_WORKGROUP, smemGemm } from './tiles-smem.js';
import { mxRowsDecls, mxRowsOwned, mxRowsStore, mxRowsTilesN, mxStore } from './mx-store.js';
import { Tile, makeTiledKernel, tileName } from './tiles.js';

interface MatmulDims { m: number; n: number; k: number; lda: number; ldb: number }

const R = [0, 1, 2, 3];

function matmulKernel(c: NodeCtx, name: string, ta: boolean, tb: boolean, hasBias: boolean, d: MatmulDims): Kernel {
  const ep = epilogue(c);
  const buffers: BufferDecl[] = [inBuf(c, 0, 'A'), inBuf(c, 1, 'B')];
  if (hasBias) buffers.push(inBuf(c, 2, 'bias'));
  buffers.push(outBuf(c, 'C'));
  // Offsets of A(row, k) and B(k, col): the start for k = 0 and the step per k.
  const aStart = ta ? '1u' : 'P.lda', aStep = ta ? 'P.lda' : '1u';
  const bStart = tb ? 'P.ldb' : '1u', bStep = tb ? '1u' : 'P.ldb';
  const init = hasBias
    ? `vec4<f32>(${R.map((q) => `bias[min(j0 + ${q}u, P.n - 1u)]`).join(', ')})`
    : 'vec4<f32>(0.0)';
  const mx = rowsMx(c, d);
  const body = `${head(mx)}
${R.map((r) => `  var a${r} = min(i0 + ${r}u, P.m - 1u) * ${aStart};`).join('\n')}
${R.map((q) => `  var b${q} = min(j0 + ${q}u, P.n - 1u) * ${bStart};`).join('\n')}
  let bias4 = ${init};
${R.map((r) => `  var acc${r} = bias4;`).join('\n')}
  for (var k = 0u; k < P.k; k++) {
    let b = vec4<f32>(B[b0], B[b1], B[b2], B[b3]);
${R.map((r) => `    acc${r} += A[a${r}] * b;`).join('\n')}
${R.map((r) => `    a${r} += ${aStep};`).join('\n')}
${R.map((q) => `    b${q} += ${bStep};`).join('\n')}
  }
${mx ? mxRowsStore(mx.s, 'C', (r, q) => `acc${r}.${XYZW[q]}`, 'lpc_live') : storeC(ep)}`;
  return makeKernel({ name, buffers, body, ...grid(c, d, ep, mx) });
}

/** A row-owning MX store (mx-store.ts): the store rounds; the grid is whole workgroups of whole blocks. */
function rowsMx(c: NodeCtx, d: MatmulDims) {
  if (!mxRowsOwned(c.node)) return undefined;
  const s = mxStore(c);
  return { s, tilesN: mxRowsTilesN(s, d.n) };
}

/** The tile indices: rows i0, columns j0. A row-owning MX store pads the grid: the padding's rows load the last
 *  real row tile (and store nothing: lpc_live), its columns past N load clamped columns. */
function head(mx: ReturnType<typeof rowsMx>): string {
  return mx ? `
  let tn = t % P.tiles_n;
  let lpc_live = t / P.tiles_n < P.tiles_m;
  let i0 = min(t / P.tiles_n, P.tiles_m - 1u) * 4u;
  let j0 = tn * 4u;` : `
  let tn = t % P.tiles_n;
  let i0 = (t / P.tiles_n) * 4u;
  let j0 = tn * 4u;`;
}

/** Params, dispatch and epilogue of a 4×4 register-tiled kernel. */
function grid(c: NodeCtx, d: MatmulDims, ep: Epilogue, mx: ReturnType<typeof rowsMx>) {
  const params = { m: d.m, n: d.n, k: d.k, lda: d.lda, ldb: d.ldb, tiles_n: mx?.tilesN ?? ceilDiv(d.n, 4) };
  const flops = 2 * d.m * d.n * d.k;
  if (!mx) return { epilogue: ep, params, invocations: ceilDiv(d.m, 4) * ceilDiv(d.n, 4), workgroup: 64, flops };
  return {
    epilogue: mx.s.ep, params: { ...params, tiles_m: ceilDiv(d.m, 4) }, decls: mxRowsDecls(mx.s), flops,
    invocations: ceilDiv(ceilDiv(d.m, 4) * mx.tilesN, 64) * 64, workgroup: 64, wholeGroups: true,
  };
}

const XYZW = 'xyzw';

/** Register-blocked 4×4 with vec4 loads; needs K, lda and ldb to be multiples of 4. */
function matmulVec4Kernel(c: NodeCtx, name: string, ta: boolean, tb: boolean, hasBias: boolean, d: MatmulDims): Kernel {
  const ep = epilogue(c);
  const v4 = (b: BufferDecl): BufferDecl => ({ ...b, view: 'vec4<f32>' });
  const buffers: BufferDecl[] = [v4(inBuf(c, 0, 'A')), v4(inBuf(c, 1, 'B'))];
  if (hasBias) buffers.push(inBuf(c, 2, 'bias'));
  buffers.push(outBuf(c, 'C'));
  // Indices are in vec4 units. A: rows (non-transposed: one vec4 = 4 k of a row) or k-rows (transposed: one vec4 =
  // 4 rows at one k); B likewise. Each step of the k loop consumes k..k+3.
  const aInit = ta
    ? '  var ia = i0 / 4u;'
    : R.map((r) => `  var ia${r} = min(i0 + ${r}u, P.m - 1u) * (P.lda / 4u);`).join('\n');
  const mx = rowsMx(c, d);
  const bInit = tb
    ? R.map((q) => `  var ib${q} = min(j0 + ${q}u, P.n - 1u) * (P.ldb / 4u);`).join('\n')
    : `  var ib = ${mx ? 'min(j0, P.n - 4u)' : 'j0'} / 4u;`;
  const aLoad = ta
    ? R.map((kk) => `    let at${kk} = A[ia + ${kk}u * (P.lda / 4u)];`).join('\n')
    : R.map((r) => `    let a${r} = A[ia${r}];`).join('\n');
  const bLoad = tb
    ? R.map((q) => `    let bt${q} = B[ib${q}];`).join('\n')
    : R.map((kk) => `    let b${kk} = B[ib + ${kk}u * (P.ldb / 4u)];`).join('\n');
  const aAt = (r: number, kk: number) => (ta ? `at${kk}.${XYZW[r]}` : `a${r}.${XYZW[kk]}`);
  const bRow = (kk: number) => (tb ? `vec4<f32>(${R.map((q) => `bt${q}.${XYZW[kk]}`).join(', ')})` : `b${kk}`);
  const advance = [
    ...(ta ? ['    ia += P.lda;'] : R.map((r) => `    ia${r} += 1u;`)),
    ...(tb ? R.map((q) => `    ib${q} += 1u;`) : ['    ib += P.ldb;']),
  ];
  const init = hasBias ? `vec4<f32>(${R.map((q) => `bias[min(j0 + ${q}u, P.n - 1u)]`).join(', ')})` : 'vec4<f32>(0.0)';
  const body = `${head(mx)}
${aInit}
${bInit}
  let bias4 = ${init};
${R.map((r) => `  var acc${r} = bias4;`).join('\n')}
  for (var k = 0u; k < P.k; k += 4u) {
${aLoad}
${bLoad}
${R.map((kk) => `    let br${kk} = ${bRow(kk)};`).join('\n')}
${R.map((r) => R.map((kk) => `    acc${r} += ${aAt(r, kk)} * br${kk};`).join('\n')).join('\n')}
${advance.join('\n')}
  }
${mx ? mxRowsStore(mx.s, 'C', (r, q) => `acc${r}.${XYZW[q]}`, 'lpc_live') : storeC(ep)}`;
  return makeKernel({ name: `${name}_vec4`, buffers, body, ...grid(c, d, ep, mx) });
}

/** Stores of the 4×4 block acc0..acc3 (rows i0.., columns j0..), guarded at the edges, through the epilogue. */
function storeC(ep: Epilogue): string {
  return R.map((r) => `  if (i0 + ${r}u < P.m) {
    let o = (i0 + ${r}u) * P.n + j0;
${R.map((q) => `    if (j0 + ${q}u < P.n) { C[o + ${q}u] = ${ep.q(`acc${r}.${XYZW[q]}`, `o + ${q}u`)}; }`).join('\n')}
  }`).join('\n');
}

/** The shared-memory GEMM for GPUs (any shape; bias and the epilogue in the store). */
function matmulSmemKernel(c: NodeCtx, name: string, ta: boolean, tb: boolean, hasBias: boolean, d: MatmulDims, b: number): Kernel {
  const ep = epilogue(c);
  const buffers: BufferDecl[] = [inBuf(c, 0, 'A'), inBuf(c, 1, 'B')];
  if (hasBias) buffers.push(inBuf(c, 2, 'bias'));
  buffers.push(outBuf(c, 'C'));
  const { body, decls } = smemGemm({
    b, m: 'P.m', n: 'P.n', k: 'P.k',
    loaders: `fn gemm_a(m: u32, k: u32) -> f32 { return A[${ta ? 'k * P.lda + m' : 'm * P.lda + k'}]; }
fn gemm_b(k: u32, n: u32) -> f32 { return B[${tb ? 'n * P.ldb + k' : 'k * P.ldb + n'}]; }`,
    store: `let i = gm * P.n + gn; C[i] = ${ep.q(hasBias ? 'v + bias[gn]' : 'v', 'i')};`,
  });
  return makeTiledKernel({
    name: `${name}_smem${b}`, buffers, body, decls, epilogue: ep,
    params: { m: d.m, n: d.n, k: d.k, lda: d.lda, ldb: d.ldb },
    workgroup: SMEM_WORKGROUP, dispatch: [ceilDiv(d.n, b), ceilDiv(d.m, b), 1],
    flops: 2 * d.m * d.n * d.k,
  });
}

/** Multiply-adds one workgroup of a one-pass quantized GEMM may own (block elements × K): past this the tiled
 *  kernel and a rounding pass win (a block is one CPU thread on lavapipe). */
const ONE_PASS_GEMM_WORK = 1 << 17;
/** Blocks (workgroups) a one-pass GEMM needs: one block per tensor would run the whole GEMM on one thread. */
const ONE_PASS_GEMM_MIN_BLOCKS = 8;
/** Multiply-adds of the whole one-pass GEMM: it computes every dot product twice, one scalar load pair per
 *  multiply-add (no register blocking), so past a small GEMM the tiled kernel plus a rounding pass wins (LeNet-5's
 *  fc1 weight gradient, 120×400×64: 10× slower one-pass on lavapipe). */
const ONE_PASS_GEMM_TOTAL = 1 << 18;

/**
 * A GEMM whose result has small bfp/minmax blocks (a weight gradient's rows, K = the batch) in one dispatch
 * (quantize.ts onePassBlockKernel: a workgroup per block computes each element's dot product, the block statistic,
 * then the dot products again, rounded) instead of the tiled kernel plus a rounding pass. Same summation order as the
 * tiled kernels (from the bias, k ascending), so the same f32 results.
 */
function onePassGemm(c: NodeCtx, name: string, ta: boolean, tb: boolean, hasBias: boolean, d: MatmulDims): Kernel | undefined {
  const q = nodeQuant(c.node);
  if (!q || !isBlockFormat(q.fmt) || !onePassFits(q.fmt, [d.m, d.n])) return undefined;
  const L = blockStatsLayout(q.fmt, [d.m, d.n]);
  if (L.axisLen < ONE_PASS_GEMM_MIN_BLOCKS || L.inner * d.k > ONE_PASS_GEMM_WORK || d.m * d.n * d.k > ONE_PASS_GEMM_TOTAL) return undefined;
  const post = postOps(c);
  const buffers: BufferDecl[] = [inBuf(c, 0, 'A'), inBuf(c, 1, 'B')];
  if (hasBias) buffers.push(inBuf(c, 2, 'bias'));
  buffers.push(outBuf(c, 'C'), ...post.buffers);
  const a0 = ta ? 'lpc_r' : 'lpc_r * P.lda', aStep = ta ? 'P.lda' : '1u';
  const b0 = tb ? 'lpc_c * P.ldb' : 'lpc_c', bStep = tb ? '1u' : 'P.ldb';
  return onePassBlockKernel({
    name, fmt: q.fmt, rounding: q.rounding, tensorId: c.node.id, shape: [d.m, d.n], buffers, out: 'C', after: qpostOf(c), variant: c.variant,
    params: { m: d.m, n: d.n, k: d.k, lda: d.lda, ldb: d.ldb },
    value: (i) => ({
      loads: `let lpc_r = ${i} / P.n;
    let lpc_c = ${i} % P.n;
    var lpc_acc = ${hasBias ? 'bias[lpc_c]' : '0.0'};
    var lpc_ia = ${a0};
    var lpc_ib = ${b0};
    for (var lpc_k = 0u; lpc_k < P.k; lpc_k++) { lpc_acc += A[lpc_ia] * B[lpc_ib]; lpc_ia += ${aStep}; lpc_ib += ${bStep}; }
    `,
      expr: post.apply('lpc_acc', i),
    }),
  });
}

function pick(c: NodeCtx, name: string, ta: boolean, tb: boolean, hasBias: boolean, d: MatmulDims, tile: Tile): Kernel {
  // (register tiles only: what CPU drivers run, where a dispatch costs most; GPUs keep their shared-memory tiles)
  const one = tile.kind === 'reg' ? onePassGemm(c, name, ta, tb, hasBias, d) : undefined;
  if (one) return one;
  if (tile.kind === 'smem') return matmulSmemKernel(c, name, ta, tb, hasBias, d, tile.b);
  if (tile.m !== 4 || tile.n !== 4) throw new Error(`matmul has no tile ${tileName(tile)}`);
  const aligned = d.k % 4 === 0 && d.lda % 4 === 0 && d.ldb % 4 === 0;
  return (aligned ? matmulVec4Kernel : matmulKernel)(c, name, ta, tb, hasBias, d);
}

export function matmulKernels(c: NodeCtx, tile: Tile): Kernel[] {
  const ta = !!c.node.attrs.ta, tb = !!c.node.attrs.tb;
  const [m, n] = c.node.type.shape;
  const k = ta ? c.inTypes[0].shape[0] : c.inTypes[0].shape[1];
  const name = `matmul${ta ? '_ta' : ''}${tb ? '_tb' : ''}`;
  return [pick(c, name, ta, tb, false, { m, n, k, lda: c.inTypes[0].shape[1], ldb: c.inTypes[1].shape[1] }, tile)];
}

export function linearKernels(c: NodeCtx, tile: Tile): Kernel[] {
  const [m, k] = c.inTypes[0].shape, n = c.inTypes[1].shape[0];
  const hasBias = c.node.inputs.length > 2;
  return [pick(c, hasBias ? 'linear_bias' : 'linear', false, true, hasBias, { m, n, k, lda: k, ldb: k }, tile)];
}
