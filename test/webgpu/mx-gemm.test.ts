/**
 * MX rounding in the store of the tiled GEMMs and convolutions (codegen/kernels/mx-store.ts, issue 30), bit for bit.
 * For each producer and register tile the node runs once without its quantizer (the raw f32 result R of that tile on
 * the GPU, post-ops applied) and once with it; the result must equal the CPU MX quantizer applied to R (then the
 * qpost), whether the store rounded (the tile owns whole blocks: one kernel, no in-place pass) or an in-place pass
 * did. Which of the two happens is decided here from the geometry alone: a conv tile of M channels per invocation
 * owns blocks when the MX axis is the channels and C ≤ M or M is a multiple of the block; the 4×4 matmul tile owns
 * blocks along the last axis when block/4 divides its workgroup of 64. Shapes are not multiples of 4, of the tiles
 * or of the blocks.
 */
import { Attrs, Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { Format, Rounding, formatToString } from '../../ir/format.js';
import { getOp } from '../../ir/ops/index.js';
import type { Epilogue } from '../../ir/epilogue.js';
import { parsePost } from '../../ir/parse.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { Tile, allTiles, tileName } from '../../codegen/kernels/tiles.js';
import { getGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom } from '../unit/helpers.js';
import { bitDiff, opOperands } from './bit-diff.js';
import { TEST_SEED } from './gpu-fixture.js';

let device: GPUDevice;
let cache: PipelineCache;
beforeAll(async () => {
  device = (await getGpu({ quiet: true })).device;
  cache = new PipelineCache(device);
});

const SEED = TEST_SEED;
const rand = seededRandom(SEED);
const uniform = (n: number, lo = -2, hi = 2) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const STEP = { seed: 0x5eed1234, step: 41, bits: { fwd: 5, bwd: 6 } };

type Mx = Extract<Format, { kind: 'mx' }>;
const COMBOS: { fmt: Mx; rounding: Rounding }[] = [
  { fmt: { kind: 'mx', elem: 'e4m3', block: 32, scale: 'rceil' }, rounding: 'nearest' }, // a torchao scale mode
  { fmt: { kind: 'mx', elem: 'e5m2', block: 32 }, rounding: 'stochastic' },
  { fmt: { kind: 'mx', elem: 'int8', block: 8 }, rounding: 'stochastic' },
  { fmt: { kind: 'mx', elem: 'e2m1', block: 4 }, rounding: 'nearest' },
  { fmt: { kind: 'mx', elem: 'e3m2', block: 16, axis: 0 }, rounding: 'nearest' }, // another axis: the in-place pass
];

interface Case { op: string; shapes: number[][]; attrs: Attrs; tag: string }
const CASES: Case[] = [
  { op: 'conv2d', shapes: [[2, 3, 7, 6], [5, 3, 3, 3], [5]], attrs: { stride: 1, pad: 1 }, tag: '5 channels, bias, padded' },
  { op: 'conv2d', shapes: [[2, 2, 9, 7], [16, 2, 3, 3]], attrs: { stride: 2, pad: 0 }, tag: '16 channels, stride 2' },
  { op: 'conv2d_bwd_data', shapes: [[2, 4, 5, 4], [4, 6, 3, 3]], attrs: { stride: 1, pad: 1, in_hw: [5, 4] }, tag: '6 channels' },
  { op: 'conv2d_bwd_data', shapes: [[2, 3, 4, 3], [3, 9, 3, 3]], attrs: { stride: 2, pad: 1, in_hw: [8, 6] }, tag: '9 channels, stride 2' },
  { op: 'matmul', shapes: [[7, 12], [12, 84]], attrs: { ta: false, tb: false }, tag: 'vec4, N 84' },
  { op: 'matmul', shapes: [[12, 10], [12, 40]], attrs: { ta: true, tb: false }, tag: 'ta vec4, N 40' },
  { op: 'matmul', shapes: [[5, 9], [70, 9]], attrs: { ta: false, tb: true }, tag: 'tb scalar, N 70' },
  { op: 'linear', shapes: [[6, 8], [37, 8], [37]], attrs: {}, tag: 'bias, N 37' },
];

/** Register tiles of both kinds for the data (4 channels: owns the 4-channel blocks only; 8 and 16: every small
 *  channel count), kept few: each tile × format is a pipeline to compile on a CPU driver. */
function tilesOf(op: string): Tile[] {
  const keep = op.startsWith('conv2d') ? ['reg4x4', 'reg8x8', 'reg16x4'] : ['reg4x4'];
  return allTiles(op).filter((t) => keep.includes(tileName(t)));
}
/** The combinations also run with a post-op and a qpost (both read an operand). */
const WITH_POST = new Set([1, 3]);

/** Whether the tile should round in its store (see the header), from the geometry alone. */
function ownsBlocks(op: string, tile: Tile, fmt: Mx, out: readonly number[]): boolean {
  if (tile.kind !== 'reg' || fmt.axis !== undefined) return false;
  if (op === 'conv2d' || op === 'conv2d_bwd_data') return out[1] <= tile.m || tile.m % fmt.block === 0;
  return fmt.block % 4 === 0 && 64 % (fmt.block / 4) === 0;
}


async function run(g: Graph, id: number, feeds: Map<number, HostArray>, tile: Tile): Promise<Float32Array> {
  const { values } = await runKernels(device, g, { feeds, run: [id], read: [id], step: STEP, pipelines: cache, variant: 'cpu-driver', tiles: () => tile });
  return values.get(id) as Float32Array;
}

describe('the tiled GEMMs round MX in their store where a tile owns whole blocks, bit-exactly', () => {
  for (const k of CASES)
    test(`${k.op} (${k.tag}): register tiles, ${COMBOS.map((c) => `${formatToString(c.fmt)}:${c.rounding}`).join(' ')}`, async () => {
      const g = emptyGraph('t'), b = new Builder(g);
      const feeds = new Map<number, HostArray>();
      const { ins, y, yv, outShape: out } = opOperands(g, b, k.op, k.shapes, k.attrs, feeds, (n) => uniform(n));
      // raw: the plain result, and with a post-op reading an operand (add(x, $0))
      const plain = b.add(k.op, ins, k.attrs);
      const withPost = b.add(k.op, [...ins, y], k.attrs, undefined, { args: 1, post: parsePost('add(x,$0)') });
      const ids: Record<string, number> = {};
      for (const [i, { fmt, rounding }] of COMBOS.entries()) {
        const q = { fmt, rounding };
        ids[`q${i}`] = b.add(k.op, ins, k.attrs, undefined, { args: 0, q } as Epilogue);
        // post-op before the rounding, a ReLU gradient after it (qpost): both read the operand
        if (WITH_POST.has(i)) ids[`p${i}`] = b.add(k.op, [...ins, y], k.attrs, undefined, { args: 1, post: parsePost('add(x,$0)'), q, qpost: parsePost('relu_bwd(x,$0)') } as Epilogue);
      }
      const relu_bwd = getOp('relu_bwd').ew!.cpu;
      for (const tile of tilesOf(k.op)) {
        const raw = await run(g, plain, feeds, tile), rawPost = await run(g, withPost, feeds, tile);
        for (const [i, { fmt, rounding }] of COMBOS.entries()) {
          const what = `${k.op} ${k.tag} ${tileName(tile)} ${formatToString(fmt)}:${rounding} (data seed ${SEED})`;
          const owns = ownsBlocks(k.op, tile, fmt, out);
          for (const id of [ids[`q${i}`], ...(WITH_POST.has(i) ? [ids[`p${i}`]] : [])]) {
            const ks = kernelsForNode(g, id, { variant: 'cpu-driver', tiles: () => tile });
            // owned: one kernel rounds in its store; else the raw store, then the in-place MX pass
            expect([what, ks.map((x) => x.name)]).toEqual([what, owns
              ? [expect.stringMatching(/_qmx(_sr)?$/)]
              : [expect.stringMatching(/_qmx_track$/), expect.stringMatching(/^quantize_inplace_mx(4|rows)?_qmx(_sr)?$/)]]);
          }
          const got = await run(g, ids[`q${i}`], feeds, tile);
          const want = quantize(raw, out, fmt, rounding, { ...STEP, tensorId: ids[`q${i}`] });
          expect([what, bitDiff(got, want, raw)]).toEqual([what, []]);
          if (!WITH_POST.has(i)) continue;
          const gotP = await run(g, ids[`p${i}`], feeds, tile);
          const wantP = Float32Array.from(quantize(rawPost, out, fmt, rounding, { ...STEP, tensorId: ids[`p${i}`] }), (v, j) => relu_bwd([v, yv[j]], {}));
          expect([`${what} post+qpost`, bitDiff(gotP, wantP, rawPost)]).toEqual([`${what} post+qpost`, []]);
        }
      }
    });
});
