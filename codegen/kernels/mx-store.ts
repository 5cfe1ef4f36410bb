/**
 * MX rounding in the store of a tiled GEMM or convolution (issue 30). Where the tile's geometry gives whole MX blocks
 * of the result to one invocation or one workgroup, the store finds each block's max |x| itself and rounds, so no
 * in-place pass (mx.ts mxKernel) follows the GEMM: one launch and one read-modify-write of the result fewer.
 * - channels (conv2d, conv2d_bwd_data register tiles): an invocation holds M channels of each of its pixels (the
 *   GEMM's M side); when the MX axis is the channel axis (the default for 4-D results) and the tile holds every
 *   channel (C ≤ M: LeNet-5's 6 and 16, below a block of 32) or M is a multiple of the block, the invocation's
 *   registers hold whole blocks: max, scale byte and rounding in registers.
 * - rows (matmul, linear register tiles): blocks run along the last axis (N), 4 columns per invocation; block/4
 *   consecutive invocations share a block (the column tiles padded to a multiple of block/4, so a workgroup of 64 never
 *   splits one); each folds its columns' max |x| into workgroup memory (atomicMax), one barrier, then each rounds
 *   its own values.
 * The values rounded are the ones the raw store would have stored (post-ops applied), so the bits equal the in-place
 * path's (test/webgpu/mx-gemm.test.ts); stochastic words come from the element's flat index as there.
 */
import { MX_ELEMS, Rounding } from '../../ir/format.js';
import { Node } from '../../ir/graph.js';
import { mxAxis } from '../../ir/quant/mx.js';
import { Epilogue, NodeCtx, nodeQuant, postOps, qpostOf } from './builder.js';
import { MxFormat, mxQuantizer } from './mx.js';

/** Invocations per workgroup of the matmul register tiles (matmul.ts). */
const MATMUL_WG = 64;

function mxOf(node: Node): { fmt: MxFormat; rounding: Rounding } | undefined {
  const q = nodeQuant(node);
  return q?.fmt.kind === 'mx' && q.fmt.block > 0 ? { fmt: q.fmt, rounding: q.rounding } : undefined;
}

/** Whether a register tile with `m` channels per invocation owns whole MX blocks of the node's 4-D result. */
export function mxChannelsOwned(node: Node, m: number): boolean {
  const q = mxOf(node), shape = node.type.shape;
  if (!q || shape.length !== 4 || mxAxis(q.fmt, shape) !== 1) return false;
  return shape[1] <= m || m % q.fmt.block === 0;
}

/** Whether the matmul register tile's workgroups own whole MX blocks of the node's 2-D result (blocks along N). */
export function mxRowsOwned(node: Node): boolean {
  const q = mxOf(node), shape = node.type.shape;
  if (!q || shape.length !== 2 || mxAxis(q.fmt, shape) !== 1) return false;
  const b = q.fmt.block;
  return b % 4 === 0 && MATMUL_WG % (b / 4) === 0;
}

/** What a store that rounds MX itself needs: the kernel's epilogue (kind `mx`/`mx_sr`, after `post_` with post-ops). */
export interface MxStore {
  ep: Epilogue;
  fmt: MxFormat;
  /** WGSL f32: the value the raw store would store (post-ops applied) for v at flat index i. */
  value(v: string, i: string): string;
  /** WGSL f32: v (a value()) rounded with scale byte sb, as flat element i, then the node's qpost. */
  round(v: string, sb: string, i: string): string;
  /** WGSL u32: the scale byte of a block's max |x| bits. */
  scale(maxBits: string): string;
}

export function mxStore(c: NodeCtx): MxStore {
  const q = mxOf(c.node);
  if (!q) throw new Error(`mxStore: %${c.node.id} has no MX epilogue`);
  const base = mxQuantizer(q.fmt, q.rounding, c.node.id);
  const post = postOps(c), after = qpostOf(c);
  const stoch = q.rounding === 'stochastic';
  const { at: _at, ...epi } = base;
  return {
    ep: { ...epi, kind: c.post ? `post_q${base.kind}` : base.kind, buffers: post.buffers },
    fmt: q.fmt,
    value: (v, i) => post.apply(v, i),
    round: (v, sb, i) => after(base.at(v, sb, stoch ? `lpc_random_bits(stepu.seed, stepu.step, P.q_tid, ${i})` : '0u'), i),
    scale: (m) => `lpc_mx_scale(${m}, ${MX_ELEMS[q.fmt.elem].emax}u)`,
  };
}

const absBits = (v: string) => `(bitcast<u32>(${v}) & 0x7fffffffu)`;

/**
 * WGSL storing one pixel's channels j = 0…M−1 of a channel-owning tile (mxChannelsOwned): vals[j] the accumulated
 * value, idx[j] its flat index, valid[j] whether the channel exists. The first channel of the tile starts a block.
 */
export function mxChannelsStore(s: MxStore, out: string, vals: string[], idx: string[], valid: string[]): string {
  const B = s.fmt.block, lines: string[] = [];
  vals.forEach((v, j) => lines.push(`let lpc_i${j} = ${idx[j]};`, `let lpc_v${j} = ${s.value(v, `lpc_i${j}`)};`));
  for (let b = 0; b * B < vals.length; b++) {
    const js = vals.map((_, j) => j).filter((j) => Math.floor(j / B) === b);
    lines.push(`var lpc_m${b} = 0u;`, ...js.map((j) => `lpc_m${b} = max(lpc_m${b}, select(0u, ${absBits(`lpc_v${j}`)}, ${valid[j]}));`),
      `let lpc_s${b} = ${s.scale(`lpc_m${b}`)};`);
  }
  vals.forEach((_, j) => lines.push(`if (${valid[j]}) { ${out}[lpc_i${j}] = ${s.round(`lpc_v${j}`, `lpc_s${Math.floor(j / B)}`, `lpc_i${j}`)}; }`));
  return `{\n      ${lines.join('\n      ')}\n    }`;
}

/** Column tiles of a row-owning matmul: ⌈N/4⌉ rounded up to whole blocks (block/4 tiles each). */
export const mxRowsTilesN = (s: MxStore, n: number) => Math.ceil(Math.ceil(n / 4) / (s.fmt.block / 4)) * (s.fmt.block / 4);

/** Workgroup memory of a row-owning matmul: per group of block/4 invocations, the max |x| bits of each of its 4 rows. */
export const mxRowsDecls = (s: MxStore) => `var<workgroup> lpc_bmax: array<atomic<u32>, ${(MATMUL_WG / (s.fmt.block / 4)) * 4}>;\n`;

/**
 * WGSL storing a 4×4 matmul block (rows i0…, columns j0…, `acc(r, q)` the accumulated values) of a row-owning tile
 * (mxRowsOwned): every invocation of the workgroup runs it (a barrier). `live`: whether the invocation's rows are
 * real (the grid is padded to whole workgroups); the caller clamps the loads of the others.
 */
export function mxRowsStore(s: MxStore, out: string, acc: (r: number, q: number) => string, live: string): string {
  const G = s.fmt.block / 4, R = [0, 1, 2, 3];
  return `
  let lpc_g = ((t % ${MATMUL_WG}u) / ${G}u) * 4u;
${R.map((r) => `  let lpc_o${r} = min(i0 + ${r}u, P.m - 1u) * P.n + j0;
  let lpc_v${r} = vec4<f32>(${R.map((q) => s.value(acc(r, q), `(lpc_o${r} + ${q}u)`)).join(', ')});
  var lpc_m${r} = 0u;
${R.map((q) => `  lpc_m${r} = max(lpc_m${r}, select(0u, ${absBits(`lpc_v${r}.${'xyzw'[q]}`)}, j0 + ${q}u < P.n));`).join('\n')}
  atomicMax(&lpc_bmax[lpc_g + ${r}u], lpc_m${r});`).join('\n')}
  workgroupBarrier();
${R.map((r) => `  if (${live} && i0 + ${r}u < P.m) {
    let lpc_s = ${s.scale(`atomicLoad(&lpc_bmax[lpc_g + ${r}u])`)};
${R.map((q) => `    if (j0 + ${q}u < P.n) { ${out}[lpc_o${r} + ${q}u] = ${s.round(`lpc_v${r}.${'xyzw'[q]}`, 'lpc_s', `(lpc_o${r} + ${q}u)`)}; }`).join('\n')}
  }`).join('\n')}`;
}
