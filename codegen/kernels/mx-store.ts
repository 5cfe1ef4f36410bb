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
import { Rounding } from '../../ir/format.js';
import { Node } from '../../ir/graph.js';
import { mxAxis } from '../../ir/quant/mx.js';
import { mxScaleWgsl } from '../quant/wgsl.js';
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
  /** WGSL u32: the scale byte of a block's max |x| bits (the format's scale mode; a scheduled format's word). */
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
    scale: (m) => mxScaleWgsl(q.fmt, m),
  };
}

const absBits = (v: string) => `(bitcast<u32>(${v}) & 0x7fffffffu)`;

/**
 * WGSL storing every pixel of a channel-owning tile (mxChannelsOwned): acc[q][j] the value of pixel q, channel
 * o0 + j (o0 starts a block); base[q] the flat index of the pixel's channel o0, ok[q] whether the pixel exists;
 * channel j at base + (o0 + j)·stride, `count` channels in all. Loops, not unrolled: one call of the rounding code
 * (an unrolled 16×8 tile inlines it 128 times, and the CPU driver's JIT takes minutes over the kernel).
 */
export function mxChannelsStore(s: MxStore, out: string, acc: string[][], base: string[], ok: string[], o0: string, stride: string, count: string): string {
  const M = acc[0].length, N = acc.length, B = s.fmt.block;
  return `{
    var lpc_a = array<f32, ${M * N}>(${acc.flat().join(', ')});
    var lpc_base = array<u32, ${N}>(${base.join(', ')});
    var lpc_ok = array<bool, ${N}>(${ok.join(', ')});
    let lpc_nc = min(${M}u, ${count} - ${o0});
    for (var q = 0u; q < ${N}u; q++) {
      if (!lpc_ok[q]) { continue; }
      for (var b0 = 0u; b0 < lpc_nc; b0 += ${B}u) {
        let b1 = min(b0 + ${B}u, lpc_nc);
        var lpc_m = 0u;
        for (var j = b0; j < b1; j++) {
          let i = lpc_base[q] + (${o0} + j) * ${stride};
          let v = ${s.value(`lpc_a[q * ${M}u + j]`, 'i')};
          lpc_a[q * ${M}u + j] = v;
          lpc_m = max(lpc_m, ${absBits('v')});
        }
        let lpc_s = ${s.scale('lpc_m')};
        for (var j = b0; j < b1; j++) {
          let i = lpc_base[q] + (${o0} + j) * ${stride};
          ${out}[i] = ${s.round(`lpc_a[q * ${M}u + j]`, 'lpc_s', 'i')};
        }
      }
    }
  }`;
}

/** Column tiles of a row-owning matmul: ⌈N/4⌉ rounded up to whole blocks (block/4 tiles each). */
export const mxRowsTilesN = (s: MxStore, n: number) => Math.ceil(Math.ceil(n / 4) / (s.fmt.block / 4)) * (s.fmt.block / 4);

/** Workgroup memory of a row-owning matmul: per group of block/4 invocations, the max |x| bits of each of its 4 rows. */
export const mxRowsDecls = (s: MxStore) => `var<workgroup> lpc_bmax: array<atomic<u32>, ${(MATMUL_WG / (s.fmt.block / 4)) * 4}>;\n`;

/**
 * WGSL storing a 4×4 matmul block (rows i0…, columns j0…, `acc(r, q)` the accumulated values) of a row-owning tile
 * (mxRowsOwned): every invocation of the workgroup runs it (a barrier). `live`: whether the invocation's rows are
 * real (the grid is padded to whole workgroups); the caller clamps the loads of the others. Loops keep one copy of
 * the rounding code (see mxChannelsStore).
 */
export function mxRowsStore(s: MxStore, out: string, acc: (r: number, q: number) => string, live: string): string {
  const G = s.fmt.block / 4, R = [0, 1, 2, 3];
  return `
  let lpc_g = ((t % ${MATMUL_WG}u) / ${G}u) * 4u;
  var lpc_v = array<f32, 16>(${R.flatMap((r) => R.map((q) => acc(r, q))).join(', ')});
  for (var r = 0u; r < 4u; r++) {
    let o = min(i0 + r, P.m - 1u) * P.n + j0;
    var lpc_m = 0u;
    for (var q = 0u; q < 4u; q++) {
      if (j0 + q < P.n) {
        let v = ${s.value('lpc_v[r * 4u + q]', '(o + q)')};
        lpc_v[r * 4u + q] = v;
        lpc_m = max(lpc_m, ${absBits('v')});
      }
    }
    atomicMax(&lpc_bmax[lpc_g + r], lpc_m);
  }
  workgroupBarrier();
  for (var r = 0u; r < 4u; r++) {
    if (${live} && i0 + r < P.m) {
      let lpc_s = ${s.scale('atomicLoad(&lpc_bmax[lpc_g + r])')};
      let o = (i0 + r) * P.n + j0;
      for (var q = 0u; q < 4u; q++) {
        if (j0 + q < P.n) { ${out}[o + q] = ${s.round('lpc_v[r * 4u + q]', 'lpc_s', '(o + q)')}; }
      }
    }
  }`;
}
