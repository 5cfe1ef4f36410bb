/**
 * Kernels for one IR node. Sources (input, state) and views (reshape, which aliases its input's buffer) need none;
 * every elementwise op of the op table goes through the one elementwise generator; everything else has a
 * generator here. The variant picks tunings for the device class (register-blocked everywhere today; split
 * reductions aim for more invocations on GPUs). A node's epilogue quantizer (ir/epilogue.ts) is fused into its generator's
 * final store for fixed and float; for bfp and minmax the generator stores raw values while tracking the block
 * statistics, and the in-place quantize kernel appended here rounds them.
 */
import { Graph } from '../../ir/graph.js';
import { convGroups, getOp } from '../../ir/ops/index.js';
import { Kernel } from '../kernel.js';
import { BLOCK_STATS_SCRATCH, NodeCtx, Variant, isBlockFormat, isTrackEpilogue, nodeCtx, nodeQuant } from './builder.js';
import { computedBy } from './compress.js';
import { bnApplyKernels, bnBwdSumsKernels, bnBwdXEvalKernels, bnBwdXKernels, bnRunningUpdateKernels, bnStatsKernels } from './batchnorm.js';
import { rowKernels, sumChannelKernels } from './channel-reduce.js';
import { conv2dKernels } from './conv2d.js';
import { conv2dBwdDataKernels } from './conv2d-bwd-data.js';
import { conv2dBwdWeightKernels } from './conv2d-bwd-weight.js';
import { elementwiseKernels } from './elementwise.js';
import { fillKernels } from './fill.js';
import { dropoutKernels } from './dropout.js';
import { correctCountKernels, softmaxXentBwdKernels, softmaxXentKernels } from './loss.js';
import { linearKernels, matmulKernels } from './matmul.js';
import {
  adaptiveAvgpoolBwdKernels, adaptiveAvgpoolKernels, avgpoolBwdKernels, avgpoolKernels, maxpoolBwdKernels, maxpoolKernels,
} from './pool.js';
import { conv2dGroupedBwdDataKernels, conv2dGroupedBwdWeightKernels, conv2dGroupedKernels } from './conv2d-grouped.js';
import { concatKernels, sliceKernels } from './concat.js';
import { blockEpilogueKernels, quantizeKernels } from './quantize.js';
import { Tile, TilePicker, defaultTile } from './tiles.js';
import * as compress from './compress.js';
import * as masks from './compress-masks.js';
import * as saved from './compress-format.js';
import * as seq from './sequence.js';
import { sliceBwdKernels, stackKernels } from './slicing.js';
import { minmaxQparamsKernels, minmaxQuantizeKernels, minmaxRunningUpdateKernels } from './minmax-running.js';

export type { Variant } from './builder.js';
export { grid1d } from './builder.js';

const NO_KERNEL = new Set(['input', 'state', 'reshape']);
/** Front-end ops a pass always rewrites away (explicit quantizer sites become `quantize` in passes/quantize.ts). */
const RESOLVED_BY_PASSES = new Set(['quantize_site']);

/** GEMM-like ops: their generators take a tile (tiles.ts), chosen per adapter by a TilePicker. */
const TILED: Record<string, (c: NodeCtx, t: Tile) => Kernel[]> = {
  linear: linearKernels,
  matmul: matmulKernels,
  conv2d: conv2dKernels,
  conv2d_bwd_data: conv2dBwdDataKernels,
  conv2d_bwd_weight: conv2dBwdWeightKernels,
};

/** Convolutions with groups > 1: direct kernels (conv2d-grouped.ts), never the dense GEMM tilings. */
const GROUPED: Record<string, (c: NodeCtx) => Kernel[]> = {
  conv2d: conv2dGroupedKernels,
  conv2d_bwd_data: conv2dGroupedBwdDataKernels,
  conv2d_bwd_weight: conv2dGroupedBwdWeightKernels,
};

const GENERATORS: Record<string, (c: NodeCtx) => Kernel[]> = {
  fill: fillKernels,
  dropout: dropoutKernels,
  sum_channel: sumChannelKernels,
  row: rowKernels,
  maxpool: maxpoolKernels,
  avgpool: avgpoolKernels,
  maxpool_bwd: maxpoolBwdKernels,
  avgpool_bwd: avgpoolBwdKernels,
  adaptive_avgpool: adaptiveAvgpoolKernels,
  adaptive_avgpool_bwd: adaptiveAvgpoolBwdKernels,
  concat: concatKernels,
  slice: sliceKernels,
  bn_stats: bnStatsKernels,
  bn_apply: bnApplyKernels,
  bn_bwd_x: bnBwdXKernels,
  bn_bwd_x_eval: bnBwdXEvalKernels,
  bn_bwd_sums: bnBwdSumsKernels,
  bn_running_update: bnRunningUpdateKernels,
  softmax_xent: softmaxXentKernels,
  softmax_xent_bwd: softmaxXentBwdKernels,
  correct_count: correctCountKernels,
  quantize: quantizeKernels,
  minmax_qparams: minmaxQparamsKernels, minmax_running_update: minmaxRunningUpdateKernels, minmax_quantize: minmaxQuantizeKernels,
  division_compress: compress.divisionCompressKernels, division_decompress: compress.divisionDecompressKernels,
  mask_compress: masks.maskCompressKernels, mask_decompress: masks.maskDecompressKernels,
  argmax_compress: masks.argmaxCompressKernels, maxpool_bwd_argmax: masks.maxpoolBwdArgmaxKernels,
  format_compress: saved.formatCompressKernels, format_decompress: saved.formatDecompressKernels,
  // sequence models (issue 29)
  embedding: seq.embeddingKernels, embedding_bwd: seq.embeddingBwdKernels, layernorm: seq.layernormKernels,
  layernorm_stats: seq.layernormStatsKernels, layernorm_bwd_x: seq.layernormBwdXKernels, layernorm_bwd_params: seq.layernormBwdParamsKernels,
  softmax: seq.softmaxKernels, softmax_bwd: seq.softmaxBwdKernels, permute: seq.permuteKernels, batch_matmul: seq.batchMatmulKernels,
  gelu: seq.geluKernels, gelu_bwd: seq.geluBwdKernels, positions: seq.positionsKernels,
  slice_bwd: sliceBwdKernels, stack: stackKernels,
};

function isElementwise(op: string): boolean {
  try { return !!getOp(op).ew; } catch { return false; }
}

/** True if kernelsForNode can handle `op` (sources and views included). */
export function hasKernel(op: string): boolean {
  return NO_KERNEL.has(op) || RESOLVED_BY_PASSES.has(op) || op in GENERATORS || op in TILED || isElementwise(op);
}

export function kernelsForNode(g: Graph, nodeId: number, opts: { variant?: Variant; tiles?: TilePicker } = {}): Kernel[] {
  const c = nodeCtx(g, nodeId, opts.variant ?? 'cpu-driver');
  const op = c.node.op;
  if (NO_KERNEL.has(op)) return [];
  if (RESOLVED_BY_PASSES.has(op)) throw new Error(`op '${op}' (node %${nodeId} of graph '${g.name}') reached codegen: the quantize pass resolves it first`);
  // computed by the kernel of a compress node that reads it (passes/fuse-compress.ts)
  if (op === 'bn_apply' && computedBy(g, nodeId) !== undefined) return [];
  const grouped = convGroups(c.node.attrs) > 1 ? GROUPED[op] : undefined;
  const tiled = grouped ? undefined : TILED[op];
  const gen = grouped ?? (tiled
    ? (cc: NodeCtx) => tiled(cc, opts.tiles?.(g, cc.node) ?? defaultTile(g, cc.node, cc.variant))
    : GENERATORS[op] ?? (isElementwise(op) ? elementwiseKernels : undefined));
  if (!gen) throw new Error(`no WebGPU kernel for op '${op}' (node %${nodeId} of graph '${g.name}')`);
  const kernels = gen(c);
  const q = nodeQuant(c.node);
  // A generator that ignored the epilogue would silently skip post-ops or quantization: refuse instead.
  if ((c.post || (q && !isBlockFormat(q.fmt))) && !kernels.some((k) => k.epilogue))
    throw new Error(`kernels for '${op}' do not apply the quantize epilogue of %${nodeId} (graph '${g.name}')`);
  if (!q || !isBlockFormat(q.fmt)) return kernels;
  // a one-pass kernel (quantize.ts onePassBlockKernel) already stored the quantized values
  if (kernels.some((k) => k.epilogue && !isTrackEpilogue(k.epilogue))) return kernels;
  // bfp/minmax: the producer's stores tracked the block statistics in scratch BLOCK_STATS_SCRATCH (all of a node's
  // scratch is zeroed before its first kernel, so no generator may use that index for anything else); one in-place
  // quantize kernel follows. A generator without the epilogue gets a separate statistics pass into a free index.
  const used = kernels.flatMap((k) => k.bindings.map((b) => (b.ref.kind === 'scratch' ? b.ref.index : -1)));
  if (kernels.some((k) => isTrackEpilogue(k.epilogue))) return [...kernels, ...blockEpilogueKernels(c, BLOCK_STATS_SCRATCH, true)];
  if (used.includes(BLOCK_STATS_SCRATCH)) throw new Error(`kernels for '${op}' use scratch ${BLOCK_STATS_SCRATCH}, reserved for block statistics`);
  return [...kernels, ...blockEpilogueKernels(c, Math.max(-1, ...used) + 1)];
}
