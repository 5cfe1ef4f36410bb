/**
 * Tilings of the GEMM-like kernels (matmul, linear, conv2d and its two gradients) and the per-adapter choice
 * between them.
 *
 * Two families (research/webgpu-on-cpu.md §1, §8):
 * - `reg<M>x<N>`: register blocking, no shared memory and no barriers. Each invocation accumulates an M×N block in
 *   registers. For the convolutions the M side (output channels; input channels for the input gradient) is taken
 *   from the workgroup id, so it is the same for every invocation of a workgroup and its weight (or error) loads
 *   are uniform; the N side (pixels; (c,ky,kx) columns for the weight gradient) is spread over the lanes, lane-
 *   consecutive so neighbouring lanes gather neighbouring addresses. This is what wins on CPU Vulkan drivers.
 * - `win<M>x<N>` (weight gradient only): an invocation owns N (c, ky) rows of taps, every kx of each, and M output
 *   channels from the workgroup id; along ox the x values it needs form a sliding window, so one new x load per
 *   row and step feeds M·KW FMAs (conv2d-bwd-weight.ts).
 * - `smem<B>`: a workgroup of 16×16 invocations computes a B×B block of C from K-slices of A and B staged in
 *   workgroup memory (barriers), each invocation B/16 × B/16 outputs (tiles-smem.ts). What GPUs want.
 *
 * The tile is structure (it changes the WGSL), so it is part of the kernel's key through the source, and part of
 * its name (`conv2d_reg8x4`). Which tile a node gets is a TilePicker's answer; without one, defaultTile's.
 * runtime/webgpu/tune.ts measures the candidates per adapter and shape class and caches the winners on disk.
 */
import { Kernel } from '../kernel.js';
import { Graph, Node } from '../../ir/graph.js';
import { attrsOf } from '../../ir/op-registry.js';
import { BufferDecl, Epilogue, ParamValues, Variant, assembleKernel } from './builder.js';
import { mxChannelsOwned, mxRowsOwned } from './mx-store.js';

export type Tile =
  | { kind: 'reg'; m: number; n: number }
  | { kind: 'win'; m: number; n: number }
  | { kind: 'wino'; m: number; n: number }
  | { kind: 'wino4'; m: number; n: number }
  | { kind: 'smem'; b: number };

/** Ops whose generators take a tile. */
export const TILED_OPS = new Set(['matmul', 'linear', 'conv2d', 'conv2d_bwd_data', 'conv2d_bwd_weight']);
/** Whether a node's kernels take a tile: a tiled op, and not a grouped convolution (direct kernels, conv2d-grouped.ts). */
export const isTiledNode = (node: Node): boolean => TILED_OPS.has(node.op) && ((node.attrs.groups as number | undefined) ?? 1) === 1;

export function tileName(t: Tile): string {
  return t.kind === 'smem' ? `smem${t.b}` : `${t.kind}${t.kind === 'wino4' ? '_' : ''}${t.m}x${t.n}`;
}

export function parseTile(s: string): Tile {
  let m = /^(reg|wino4_|wino|win)(\d+)x(\d+)$/.exec(s);
  if (m) return { kind: m[1] === 'wino4_' ? 'wino4' : m[1] as 'reg' | 'win' | 'wino', m: +m[2], n: +m[3] };
  m = /^smem(\d+)$/.exec(s);
  if (m) return { kind: 'smem', b: +m[1] };
  throw new Error(`unknown tile '${s}' (expected reg<M>x<N>, win<M>x<N>, wino<M>x<N>, wino4_<M>x<N> or smem<B>)`);
}

/** Winograd tiles: F(2×2, 3×3) ('wino') and F(4×4, 3×3) ('wino4'). */
export type WinogradTile = Extract<Tile, { kind: 'wino' | 'wino4' }>;
export const isWinograd = (t: Tile): t is WinogradTile => t.kind === 'wino' || t.kind === 'wino4';

/** Register tiles shipped per op (M × N as described above). matmul's 4×4 block is the one research §1 measured. */
const REG_TILES: Record<string, [number, number][]> = {
  matmul: [[4, 4]],
  linear: [[4, 4]],
  conv2d: [[4, 4], [8, 4], [16, 4], [4, 8], [8, 8], [16, 8], [8, 16]],
  conv2d_bwd_data: [[4, 4], [8, 4], [16, 4], [4, 8], [8, 8], [16, 8], [8, 16]],
  // N = columns over 32 lanes: few columns (a first layer's C·KH·KW = 25) want N = 1
  conv2d_bwd_weight: [[4, 4], [8, 4], [16, 4], [4, 8], [8, 1], [16, 2], [8, 8], [16, 8]],
};
/** Sliding-window tiles (conv2d-bwd-weight.ts): M output channels × N (c, ky) rows of taps per invocation. */
const WIN_TILES: Record<string, [number, number][]> = {
  conv2d_bwd_weight: [[4, 1], [8, 1], [16, 1], [8, 2], [16, 2], [8, 4], [16, 4]],
};
/** Winograd F(2×2, 3×3) tiles (conv2d-winograd.ts): the register block (M output channels × N 2×2 tiles) of its
 *  16 products. */
const WINO_TILES: Record<string, [number, number][]> = {
  conv2d: [[16, 4], [8, 8], [16, 8], [8, 16]],
  conv2d_bwd_data: [[16, 4], [8, 8], [16, 8], [8, 16]],
  // M output channels × N input channels per lane
  conv2d_bwd_weight: [[16, 2], [8, 4], [16, 4], [16, 8]],
};
/** Winograd F(4×4, 3×3) tiles: 36 products per 4×4 output tile (2.25 per output, against 4 for F(2×2) and 9
 *  direct); the same register blocks. */
const WINO4_TILES: Record<string, [number, number][]> = {
  conv2d: [[16, 4], [8, 8], [16, 8], [8, 16]],
  conv2d_bwd_data: [[16, 4], [8, 8], [16, 8], [8, 16]],
  conv2d_bwd_weight: [[16, 2], [8, 4], [16, 4], [16, 8]],
};
const SMEM_TILES = [64, 32];

/** Every tile shipped for `op` (what the tests cover). */
export function allTiles(op: string): Tile[] {
  const reg = (REG_TILES[op] ?? []).map(([m, n]): Tile => ({ kind: 'reg', m, n }));
  const win = (WIN_TILES[op] ?? []).map(([m, n]): Tile => ({ kind: 'win', m, n }));
  const wino = (WINO_TILES[op] ?? []).map(([m, n]): Tile => ({ kind: 'wino', m, n }));
  const wino4 = (WINO4_TILES[op] ?? []).map(([m, n]): Tile => ({ kind: 'wino4', m, n }));
  return [...reg, ...win, ...wino, ...wino4, ...SMEM_TILES.map((b): Tile => ({ kind: 'smem', b }))];
}

/** A convolution node's filter shape [O, C, KH, KW]: its weight input, or its result for the weight gradient. */
const filterShape = (g: Graph, node: Node): readonly number[] =>
  node.op === 'conv2d_bwd_weight' ? node.type.shape : g.nodes[node.inputs[1]].type.shape;

/** A 3×3 stride-1 convolution or one of its gradients: what Winograd tiles compute. */
export function winogradApplies(op: string, kernelHW: readonly number[], stride: number): boolean {
  return (op === 'conv2d' || op === 'conv2d_bwd_data' || op === 'conv2d_bwd_weight') && kernelHW[0] === 3 && kernelHW[1] === 3 && stride === 1;
}

/** Whether `tile` can compute `node` (Winograd tiles: 3×3 stride-1 convolutions only; every other tile: any). */
export function tileFits(g: Graph, node: Node, tile: Tile): boolean {
  if (tile.kind === 'smem') return smemDispatchFits(gemmDims(g, node), tile.b);
  if (!isWinograd(tile)) return true;
  if (node.op !== 'conv2d' && node.op !== 'conv2d_bwd_data' && node.op !== 'conv2d_bwd_weight') return false;
  return winogradApplies(node.op, filterShape(g, node).slice(2), attrsOf(node, node.op).stride);
}

/**
 * Shared-memory tiles dispatch one workgroup per B×B block of C, [⌈N/B⌉, ⌈M/B⌉] with no spill: past 65535 blocks
 * on a side (a large batch's pixels) they cannot run, and the register tiles (which spill into y) take over.
 */
export function smemDispatchFits(d: GemmDims, b: number): boolean {
  return Math.ceil(d.n / b) <= MAX_GROUPS && Math.ceil(d.m / b) <= MAX_GROUPS;
}

/**
 * The tiles worth measuring on an adapter class. CPU drivers: register and window tiles only (shared memory and
 * barriers lose 3–10× there and their pipelines take seconds to JIT, research §1–2). GPUs: every tile.
 */
export function tileCandidates(op: string, variant: Variant): Tile[] {
  return allTiles(op).filter((t) => variant === 'gpu' || t.kind !== 'smem');
}

/** tileCandidates that can compute `node`. */
export function nodeTileCandidates(g: Graph, node: Node, variant: Variant): Tile[] {
  return tileCandidates(node.op, variant).filter((t) => tileFits(g, node, t));
}

/** GEMM view of a tiled node: C[M×N] = A[M×K]·B[K×N] (what the tile's M and N sides cover). */
export interface GemmDims { m: number; n: number; k: number }

export function gemmDims(g: Graph, node: Node): GemmDims {
  const ins = node.inputs.map((i) => g.nodes[i].type.shape);
  const out = node.type.shape;
  switch (node.op) {
    case 'matmul': {
      const ta = !!node.attrs.ta;
      return { m: out[0], n: out[1], k: ta ? ins[0][0] : ins[0][1] };
    }
    case 'linear': return { m: out[0], n: out[1], k: ins[0][1] };
    case 'conv2d': {
      const [N, C] = ins[0], [, , KH, KW] = ins[1], [, O, OH, OW] = out;
      return { m: O, n: N * OH * OW, k: C * KH * KW };
    }
    case 'conv2d_bwd_data': {
      const [N, C, H, W] = out, [O, , KH, KW] = ins[1];
      return { m: C, n: N * H * W, k: O * KH * KW };
    }
    case 'conv2d_bwd_weight': {
      const [O, C, KH, KW] = out, [N, , OH, OW] = ins[0];
      return { m: O, n: C * KH * KW, k: N * OH * OW };
    }
    default: throw new Error(`'${node.op}' is not a tiled op`);
  }
}

/**
 * The tile used when nothing was measured: on CPU drivers reg 16×8 for convolutions (4×8 when M ≤ 4, 8×8 when
 * M ≤ 8: what lavapipe's measurements chose for most ResNet-20 shapes; for the weight gradient a sliding-window
 * tile, which beat every register tile on each LeNet-5 and ResNet-20 shape there: win16x2, fewer channels or units
 * when there are few), 4×4 for matmul; smem on GPUs.
 */
export function defaultTile(g: Graph, node: Node, variant: Variant): Tile {
  const d = gemmDims(g, node);
  if (variant === 'gpu') {
    const b = d.m >= 48 && d.n >= 48 ? 64 : 32;
    if (smemDispatchFits(d, b)) return { kind: 'smem', b };
  }
  if (node.op === 'matmul' || node.op === 'linear') return { kind: 'reg', m: 4, n: 4 };
  if (node.op === 'conv2d_bwd_weight') return d.m <= 4 ? { kind: 'win', m: 4, n: 1 } : { kind: 'win', m: d.m <= 8 ? 8 : 16, n: d.n < 64 ? 1 : 2 };
  return d.m <= 4 ? { kind: 'reg', m: 4, n: 8 } : d.m <= 8 ? { kind: 'reg', m: 8, n: 8 } : { kind: 'reg', m: 16, n: 8 };
}

/**
 * Whether some register tile of the node rounds its MX result in its store (mx-store.ts) rather than leaving it to
 * an in-place pass: which tile is fastest then depends on the rounding too.
 */
export function mxStoreFusable(node: Node): boolean {
  if (!isTiledNode(node)) return false;
  if (node.op === 'matmul' || node.op === 'linear') return mxRowsOwned(node);
  return node.op !== 'conv2d_bwd_weight' && (REG_TILES[node.op] ?? []).some(([m]) => mxChannelsOwned(node, m));
}

/** Chooses a node's tile (undefined: the default). */
export type TilePicker = (g: Graph, node: Node) => Tile | undefined;

const pow2 = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(1, x)));

/**
 * The shape class a tuning result is stored under: the op, what changes the WGSL other than the tile (transposes,
 * bias, kernel size, stride, whether there is padding, vec4 alignment), and the GEMM sides rounded up to powers of
 * two (so nearby shapes, e.g. another batch size's tail, share a measurement).
 */
export function shapeClass(g: Graph, node: Node): string {
  const d = gemmDims(g, node);
  const a = node.attrs;
  const parts: string[] = [node.op];
  if (node.op === 'matmul') parts.push(`${a.ta ? 'ta' : ''}${a.tb ? 'tb' : ''}` || 'nn');
  if (node.op === 'matmul' || node.op === 'linear') parts.push(d.k % 4 === 0 ? 'k4' : 'k1');
  if (node.op === 'linear' || node.op === 'conv2d') parts.push(node.inputs.length > 2 ? 'bias' : 'nobias');
  if (node.op.startsWith('conv2d')) {
    const w = filterShape(g, node);
    const { stride, pad } = attrsOf(node, 'conv2d', 'conv2d_bwd_data', 'conv2d_bwd_weight');
    parts.push(`k${w[2]}x${w[3]}`, `s${stride}`, `p${pad > 0 ? 1 : 0}`);
  }
  // a result some register tile rounds to MX in its store: a class of its own, timed with its quantizer (tune-measure.ts)
  if (mxStoreFusable(node)) parts.push('mx');
  parts.push(`m${pow2(d.m)}`, `n${pow2(d.n)}`, `k${pow2(d.k)}`);
  return parts.join(' ');
}

// ---- the kernel assembler for tiled kernels ----

/**
 * Like builder.makeKernel (both go through builder.assembleKernel: the same bindings, epilogue and key), but with
 * the workgroup shape, the dispatch and the builtins the tilings need: `lid` (local id), `li`
 * (local index), `wid` (workgroup id), `nwg`. There is no early return: bodies guard their own loads and stores,
 * and shared-memory bodies keep barriers in uniform control flow.
 */
export interface TiledSpec {
  name: string;
  buffers: BufferDecl[];
  params: ParamValues;
  body: string;
  decls?: string;
  epilogue?: Epilogue;
  workgroup: [number, number, number];
  dispatch: [number, number, number];
  usesStep?: boolean;
  clears?: number[];
  flops?: number;
}

const MAX_GROUPS = 65535;

/** Workgroup counts [x, y] covering `groups` (y spills past 65535); bodies use `wid.x + wid.y * nwg.x`. */
export function spill(groups: number): [number, number] {
  const g = Math.max(1, groups);
  if (g <= MAX_GROUPS) return [g, 1];
  const y = Math.ceil(g / MAX_GROUPS);
  if (y > MAX_GROUPS) throw new Error(`${g} workgroups exceed ${MAX_GROUPS}²`);
  return [Math.ceil(g / y), y];
}

export function makeTiledKernel(s: TiledSpec): Kernel {
  for (const d of s.dispatch) if (d < 1 || d > MAX_GROUPS) throw new Error(`${s.name}: dispatch ${s.dispatch} out of range`);
  return assembleKernel({
    ...s, workgroup: s.workgroup.join(', '), prelude: '',
    builtins: `@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>`,
  });
}

export const range = (n: number) => [...Array(n).keys()];
export const XYZW = 'xyzw';
