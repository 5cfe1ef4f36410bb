/**
 * The quantize epilogue (a node's `epi.q`, ir/epilogue.ts) in every kernel generator, bit for bit. For each producer the
 * node runs once without the epilogue (its raw fp32 result R on the GPU) and once per sampled format × rounding
 * with it; the fused result must equal the CPU quantizer applied to R (ir/quant/quantize.ts, tensor id = the
 * node's id, the same seed and step). Comparing against the GPU's own raw result keeps ops that reduce in f32
 * (matmul, conv, bn, pooling averages) exact: the CPU computes them in float64, and one ulp of difference before
 * quantization can flip a value at a rounding boundary. Ops whose raw result is exact in f32 (elementwise, fill,
 * max pooling, counts) are also compared with the CPU interpreter directly. Shapes are not multiples of 4 or of
 * the register tiles. Last, lenet5 with every quantizer fused trains on the executor as on the CPU interpreter.
 */
import { Attrs, Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { Format, Rounding, formatToString } from '../../ir/format.js';
import { getOp } from '../../ir/ops/index.js';
import type { Epilogue } from '../../ir/epilogue.js';
import { parsePost } from '../../ir/parse.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { BLOCK_STATS_SCRATCH, Variant, isTrackEpilogue } from '../../codegen/kernels/builder.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { fuseQuantizers } from '../../passes/fuse.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { Gpu, getGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom } from '../unit/helpers.js';
import { bitDiff, opOperands } from './bit-diff.js';
import { TEST_SEED, expectLenetStepsLikeCpu } from './gpu-fixture.js';

let gpu: Gpu;
let device: GPUDevice;
let cache: PipelineCache;
beforeAll(async () => {
  gpu = await getGpu({ quiet: true });
  device = gpu.device;
  cache = new PipelineCache(device);
});

// ---- fresh random data, reproducible from the seed printed on failure ----
const SEED = TEST_SEED;
const rand = seededRandom(SEED);
const uniform = (n: number, lo = -2, hi = 2) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const labels = (n: number, k: number) => Int32Array.from({ length: n }, () => (rand() < 0.2 ? -1 : Math.floor(rand() * k)));
/** Batch-norm statistics [2, C]: any means, positive variances. */
const stats = (C: number) => Float32Array.from([...uniform(C), ...uniform(C, 0.2, 2)]);

const STEP = { seed: 0x5eed1234, step: 41, bits: { fwd: 5, bwd: 6 } };
const FORMATS: Format[] = [
  { kind: 'fixed', wl: 8, fl: 4 },
  { kind: 'fixed', wl: 4, fl: 2, sym: true },
  { kind: 'float', exp: 5, man: 2 },
  { kind: 'bfp', wl: 8, axis: 'tensor' },
  { kind: 'bfp', wl: 8, axis: 0 },
  { kind: 'minmax', bits: 4, per: 'tensor' },
  { kind: 'minmax', bits: 8, per: 'channel', sched: 'fwd' }, // 5 bits from the step uniform
  { kind: 'mx', elem: 'e2m1', block: 8 }, // the default axis (channels of 4-D, else the last): strided, partial blocks
  { kind: 'mx', elem: 'e4m3', block: 4, axis: 0 },
];
const ROUNDINGS: Rounding[] = ['nearest', 'stochastic'];
const COMBOS = FORMATS.flatMap((fmt) => ROUNDINGS.map((rounding) => ({ fmt, rounding })));
/** MX on shapes that take kernels/mx.ts's vector walks (blocks of 4 channel lanes; rows of 4) as well as scalar ones. */
const MX_COMBOS: { fmt: Format; rounding: Rounding }[] = [
  { fmt: { kind: 'mx', elem: 'e5m2', block: 32 }, rounding: 'stochastic' },
  { fmt: { kind: 'mx', elem: 'e4m3', block: 32 }, rounding: 'nearest' },
  { fmt: { kind: 'mx', elem: 'int8', block: 8 }, rounding: 'stochastic' },
  { fmt: { kind: 'mx', elem: 'e2m1', block: 16, axis: 0 }, rounding: 'nearest' },
];
/** Ops whose kernel computes, rounds and stores MX blocks in one dispatch (the rest: a raw store, then a pass). */
const MX_FUSED = new Set(['add', 'relu', 'scale', 'mul_scalar', 'relu_bwd', 'row', 'maxpool', 'maxpool_bwd', 'conv2d_bwd_weight', 'sum_channel', 'bn_bwd_sums']);

/**
 * Whether a tiled GEMM's default tile (the CPU driver's) owns whole MX blocks, so its store rounds (mx-store.ts):
 * a convolution's (4, 8 or 16 channels for up to 4, 8, more) along channels when they all fit or the tile is whole
 * blocks; the 4×4 matmul tile along the last axis when block/4 neighbours fit a workgroup of 64.
 */
function storeRounds(op: string, fmt: Format, out: readonly number[]): boolean {
  if (fmt.kind !== 'mx' || fmt.axis !== undefined) return false;
  if (op === 'conv2d' || op === 'conv2d_bwd_data') {
    const m = out[1] <= 4 ? 4 : out[1] <= 8 ? 8 : 16;
    return out[1] <= m || m % fmt.block === 0;
  }
  return (op === 'matmul' || op === 'linear') && out.length === 2 && fmt.block % 4 === 0 && 64 % (fmt.block / 4) === 0;
}

interface In { shape: number[]; data?: HostArray }
interface Producer {
  op: string;
  ins: In[];
  attrs?: Attrs;
  /** The raw f32 result equals the CPU interpreter's (no f32-vs-f64 rounding): compare with it directly too. */
  exact?: boolean;
  /** Test every format × rounding (default: two combinations, rotating so every one is covered many times). */
  all?: boolean;
  tag?: string;
  /** Test the MX combinations only (MX_COMBOS). */
  mx?: boolean;
  /** A tiled GEMM whose default tile owns whole MX blocks of `fmt` (codegen/kernels/mx-store.ts): its store rounds. */
  mxStore?: (fmt: Format) => boolean;
}

const conv = { n: 2, c: 3, h: 9, w: 7, o: 5, k: 3 };
const convOut = (s: number, p: number) => [conv.n, conv.o, Math.floor((conv.h + 2 * p - conv.k) / s) + 1, Math.floor((conv.w + 2 * p - conv.k) / s) + 1];
const X4 = [conv.n, conv.c, conv.h, conv.w], W4 = [conv.o, conv.c, conv.k, conv.k];
const bnShape = [3, 5, 4, 7], C = 5;

const PRODUCERS: Producer[] = [
  { op: 'add', ins: [{ shape: [4, 9] }, { shape: [4, 9] }], exact: true, all: true, tag: 'vec4' },
  { op: 'add', ins: [{ shape: [3, 7] }, { shape: [3, 7] }], exact: true, all: true, tag: 'scalar' },
  // blocks too big for one workgroup: bfp/minmax take the tracked two-kernel path instead of the one-pass kernel
  { op: 'add', ins: [{ shape: [2, 9000] }, { shape: [2, 9000] }], exact: true, all: true, tag: 'large blocks' },
  { op: 'relu', ins: [{ shape: [2, 10] }], exact: true, tag: 'vec4' },
  { op: 'relu', ins: [{ shape: [5, 3] }], exact: true, tag: 'scalar' },
  { op: 'scale', ins: [{ shape: [6, 2] }], attrs: { c: -1.5 }, exact: true, tag: 'vec4' },
  { op: 'scale', ins: [{ shape: [1, 13] }], attrs: { c: 0.375 }, exact: true, tag: 'scalar' },
  { op: 'mul_scalar', ins: [{ shape: [3, 5] }, { shape: [1] }], exact: true },
  { op: 'relu_bwd', ins: [{ shape: [4, 4] }, { shape: [4, 4] }], exact: true },
  { op: 'fill', ins: [], attrs: { shape: [3, 5], value: 0.7 }, exact: true },
  { op: 'linear', ins: [{ shape: [5, 13] }, { shape: [7, 13] }, { shape: [7] }], tag: 'bias, scalar' },
  { op: 'matmul', ins: [{ shape: [7, 12] }, { shape: [12, 9] }], attrs: { ta: false, tb: false }, all: true, tag: 'vec4' },
  { op: 'matmul', ins: [{ shape: [11, 6] }, { shape: [9, 11] }], attrs: { ta: true, tb: true }, tag: 'ta tb, scalar' },
  { op: 'conv2d', ins: [{ shape: X4 }, { shape: W4 }, { shape: [conv.o] }], attrs: { stride: 1, pad: 1 }, tag: 'bias, pad' },
  { op: 'conv2d', ins: [{ shape: X4 }, { shape: W4 }], attrs: { stride: 2, pad: 0 }, tag: 'no pad' },
  { op: 'conv2d_bwd_data', ins: [{ shape: convOut(2, 1) }, { shape: W4 }], attrs: { stride: 2, pad: 1, in_hw: [conv.h, conv.w] } },
  // a split reduction (partials in scratch 0): the epilogue goes on the final sum, bfp takes scratch 1
  { op: 'conv2d_bwd_weight', ins: [{ shape: convOut(1, 1) }, { shape: X4 }], attrs: { stride: 1, pad: 1, k_hw: [conv.k, conv.k] }, all: true },
  { op: 'maxpool', ins: [{ shape: [2, 3, 7, 5] }], attrs: { k: 2, stride: 2 }, exact: true },
  { op: 'avgpool', ins: [{ shape: [1, 2, 9, 8] }], attrs: { k: 3, stride: 2 } },
  { op: 'maxpool_bwd', ins: [{ shape: [2, 3, 3, 2] }, { shape: [2, 3, 7, 5] }], attrs: { k: 2, stride: 2 }, exact: true, tag: 'cells' },
  { op: 'maxpool_bwd', ins: [{ shape: [1, 2, 4, 3] }, { shape: [1, 2, 9, 8] }], attrs: { k: 3, stride: 2 }, tag: 'overlapping' },
  { op: 'avgpool_bwd', ins: [{ shape: [2, 3, 3, 2] }], attrs: { k: 2, stride: 2, in_hw: [7, 5] }, tag: 'cells' },
  { op: 'avgpool_bwd', ins: [{ shape: [1, 2, 4, 3] }], attrs: { k: 3, stride: 2, in_hw: [9, 8] }, tag: 'overlapping' },
  { op: 'bn_stats', ins: [{ shape: bnShape }] },
  { op: 'bn_apply', ins: [{ shape: bnShape }, { shape: [2, C], data: stats(C) }, { shape: [C] }, { shape: [C] }], attrs: { eps: 1e-5, training: true } },
  { op: 'bn_bwd_x', ins: [{ shape: bnShape }, { shape: bnShape }, { shape: [2, C], data: stats(C) }, { shape: [C] }, { shape: [2, C] }], attrs: { eps: 1e-5 } },
  { op: 'bn_bwd_x_eval', ins: [{ shape: bnShape }, { shape: [2, C], data: stats(C) }, { shape: [C] }], attrs: { eps: 1e-5 } },
  // a split reduction whose sum kernel finishes row 1 with inv
  { op: 'bn_bwd_sums', ins: [{ shape: bnShape }, { shape: bnShape }, { shape: [2, C], data: stats(C) }], attrs: { eps: 1e-5 } },
  { op: 'row', ins: [{ shape: [2, C] }], attrs: { index: 1 } },
  { op: 'bn_running_update', ins: [{ shape: [2, C], data: stats(C) }, { shape: [2, C], data: stats(C) }], attrs: { momentum: 0.1, count: 60 } },
  { op: 'sum_channel', ins: [{ shape: bnShape }] },
  { op: 'softmax_xent', ins: [{ shape: [9, 10] }, { shape: [9], data: labels(9, 10) }] },
  { op: 'softmax_xent_bwd', ins: [{ shape: [9, 10] }, { shape: [9], data: labels(9, 10) }, { shape: [1], data: uniform(1, 0.5, 2) }] },
  { op: 'correct_count', ins: [{ shape: [33, 10] }, { shape: [33], data: labels(33, 10) }], exact: true },
  // the sequence models' ops (issue 29): their kernels take the same fused quantizers as the convolutional ones
  { op: 'batch_matmul', ins: [{ shape: [2, 3, 5, 4] }, { shape: [2, 3, 4, 6] }], attrs: { ta: false, tb: false }, tag: 'attention-like' },
  { op: 'batch_matmul', ins: [{ shape: [2, 4, 5] }, { shape: [2, 7, 4] }], attrs: { ta: true, tb: true }, tag: 'ta tb' },
  { op: 'layernorm', ins: [{ shape: [3, 10] }, { shape: [10] }, { shape: [10] }], attrs: { eps: 1e-5 } },
  { op: 'softmax', ins: [{ shape: [2, 5, 7] }], attrs: { causal: false } },
  { op: 'softmax', ins: [{ shape: [1, 2, 5, 5] }], attrs: { causal: true }, tag: 'causal' },
  { op: 'softmax_bwd', ins: [{ shape: [3, 6] }, { shape: [3, 6] }] },
  { op: 'gelu', ins: [{ shape: [3, 9] }] },
  { op: 'gelu_bwd', ins: [{ shape: [3, 9] }, { shape: [3, 9] }] },
  // MX's walks (kernels/mx.ts): channel lanes (inner a multiple of 4), rows of 4 (the last axis), partial blocks
  { op: 'relu_bwd', ins: [{ shape: [2, 40, 2, 2] }, { shape: [2, 40, 2, 2] }], exact: true, mx: true, tag: 'mx lanes' },
  { op: 'add', ins: [{ shape: [3, 72] }, { shape: [3, 72] }], exact: true, mx: true, tag: 'mx rows' },
  { op: 'maxpool', ins: [{ shape: [2, 6, 8, 8] }], attrs: { k: 2, stride: 2 }, exact: true, mx: true, tag: 'mx lanes' },
  { op: 'maxpool_bwd', ins: [{ shape: [2, 6, 4, 4] }, { shape: [2, 6, 8, 8] }], attrs: { k: 2, stride: 2 }, exact: true, mx: true, tag: 'mx lanes' },
  // 2×2/2 on widths that are multiples of 4: 4 elements (2 windows) at a time; an odd height leaves a row uncovered
  { op: 'maxpool_bwd', ins: [{ shape: [1, 4, 3, 4] }, { shape: [1, 4, 7, 8] }], attrs: { k: 2, stride: 2 }, exact: true, mx: true, tag: 'mx quads, odd height' },
  { op: 'maxpool_bwd', ins: [{ shape: [1, 3, 4, 3] }, { shape: [1, 3, 9, 8] }], attrs: { k: 3, stride: 2 }, exact: true, mx: true, tag: 'mx overlapping' },
  { op: 'sum_channel', ins: [{ shape: [3, 40, 2, 3] }], mx: true, tag: 'mx rows' },
  // the weight gradient [6, 8, 2, 2]: channel lanes
  { op: 'conv2d_bwd_weight', ins: [{ shape: [2, 6, 4, 4] }, { shape: [2, 8, 5, 5] }], attrs: { stride: 1, pad: 0, k_hw: [2, 2] }, mx: true, tag: 'mx lanes' },
  // the default axis: blocks along the tile's rows (workgroup max) or channels (registers); axis 0: the in-place pass
  { op: 'matmul', ins: [{ shape: [7, 12] }, { shape: [12, 40] }], attrs: { ta: false, tb: false }, mx: true, mxStore: (f) => f.kind === 'mx' && f.axis === undefined, tag: 'mx rows, rounded in the store or in place' },
  { op: 'conv2d', ins: [{ shape: [2, 3, 6, 6] }, { shape: [8, 3, 3, 3] }], attrs: { stride: 1, pad: 1 }, mx: true, mxStore: (f) => f.kind === 'mx' && f.axis === undefined, tag: 'mx lanes, rounded in the store or in place' },
  // 20 channels over the default 16-channel tile: blocks of 32 in place, blocks of 8 in the store
  { op: 'conv2d', ins: [{ shape: [1, 2, 5, 5] }, { shape: [20, 2, 3, 3] }], attrs: { stride: 1, pad: 1 }, mx: true, mxStore: (f) => f.kind === 'mx' && f.axis === undefined && f.block === 8, tag: 'mx, 20 channels' },
];

/** A graph of input nodes feeding one `op` node. */
function build(p: Producer): { g: Graph; id: number; feeds: Map<number, HostArray>; named: Record<string, HostArray> } {
  const g = emptyGraph('t');
  const b = new Builder(g);
  const feeds = new Map<number, HostArray>();
  const named: Record<string, HostArray> = {};
  const ids = p.ins.map((x, i) => {
    const data = x.data ?? uniform(numel(x.shape));
    const id = b.add('input', [], { name: `x${i}`, kind: 'data', shape: x.shape, dtype: data instanceof Int32Array ? 'i32' : 'f32' });
    feeds.set(id, data);
    named[`x${i}`] = data;
    return id;
  });
  return { g, id: b.add(p.op, ids, p.attrs ?? {}), feeds, named };
}

/** The same graph with the node's epilogue set (and its type carrying the format, as the op table infers). */
function withEpilogue(g: Graph, id: number, fmt: Format, rounding: Rounding, qpost?: string): Graph {
  const nodes = g.nodes.map((n) => {
    if (n.id !== id) return n;
    const epi: Epilogue = { args: 0, q: { fmt, rounding }, ...(qpost ? { qpost: parsePost(qpost) } : {}) };
    return { ...n, epi, type: getOp(n.op).infer(n.inputs.map((i) => g.nodes[i].type), n.attrs, epi) };
  });
  return { ...g, nodes };
}

async function gpuRun(g: Graph, id: number, feeds: Map<number, HostArray>, variant: Variant = 'cpu-driver'): Promise<Float32Array> {
  const { values } = await runKernels(device, g, { feeds, run: [id], read: [id], step: STEP, pipelines: cache, variant });
  return values.get(id) as Float32Array;
}


describe('every generator applies the epilogue quantizer bit-exactly', () => {
  PRODUCERS.forEach((p, i) => {
    const combos = p.mx ? MX_COMBOS : p.all ? COMBOS : [COMBOS[(3 * i) % COMBOS.length], COMBOS[(3 * i + 5) % COMBOS.length]];
    test(`${p.op}${p.tag ? ` (${p.tag})` : ''}: ${combos.map((c) => `${formatToString(c.fmt)}:${c.rounding}`).join(' ')}`, async () => {
      const { g, id, feeds, named } = build(p);
      const shape = g.nodes[id].type.shape;
      const rawKernels = kernelsForNode(g, id);
      const raw = await gpuRun(g, id, feeds);
      for (const { fmt, rounding } of combos) {
        const what = `${p.op} ${formatToString(fmt)} ${rounding} (data seed ${SEED})`;
        const gq = withEpilogue(g, id, fmt, rounding);
        const ks = kernelsForNode(gq, id);
        const onePass = ks.some((k) => k.name.includes('_onepass'));
        if (onePass) {
          // small contiguous blocks: the final kernel computes the statistic and quantizes in one dispatch
          expect(ks).toHaveLength(rawKernels.length);
          expect(ks[ks.length - 1].name).toMatch(new RegExp(`_onepass_q${fmt.kind}${rounding === 'stochastic' ? '_sr' : ''}$`));
          expect(ks.some((k) => k.bindings.some((b) => b.ref.kind === 'scratch' && b.ref.index === BLOCK_STATS_SCRATCH))).toBe(false);
        } else if (fmt.kind === 'bfp' || fmt.kind === 'minmax') {
          // the raw kernels, the final store also folding |x| into the block maxima (a scratch index no raw kernel
          // uses), then the in-place quantizer: no separate max-|x| pass
          const sr = rounding === 'stochastic' ? '_sr' : '';
          expect(ks.map((k) => k.name.replace(`_q${fmt.kind}_track`, '').replace('_inplace_vec4', '_inplace'))).toEqual([...rawKernels.map((k) => k.name), `quantize_inplace_q${fmt.kind}${sr}`]);
          expect(ks.filter((k) => isTrackEpilogue(k.epilogue)).length).toBeGreaterThan(0);
          const rawScratch = rawKernels.flatMap((k) => k.bindings.map((b) => (b.ref.kind === 'scratch' ? b.ref.index : -1)));
          expect(rawScratch).not.toContain(BLOCK_STATS_SCRATCH);
          expect(ks[ks.length - 1].bindings.some((b) => b.ref.kind === 'scratch' && b.ref.index === BLOCK_STATS_SCRATCH)).toBe(true);
        } else if (fmt.kind === 'mx') {
          const sr = rounding === 'stochastic' ? '_sr' : '';
          if (p.mxStore?.(fmt) ?? storeRounds(p.op, fmt, shape)) {
            // the tile owns whole blocks: the GEMM's store rounds, no in-place pass (mx-store.ts)
            expect(ks.map((k) => k.name)).toEqual(rawKernels.map((k) => `${k.name}_qmx${sr}`));
          } else if (MX_FUSED.has(p.op) && !(p.op === 'maxpool' && g.nodes[id].attrs.pad)) {
            // the producer owns whole blocks (kernels/mx.ts): it computes, rounds and stores in its last kernel
            expect(ks).toHaveLength(rawKernels.length);
            expect(ks[ks.length - 1].name).toMatch(new RegExp(`_mx(4|rows)?_qmx${sr}$`));
          } else {
            // the raw kernels (their store untouched), then one in-place kernel: an invocation owns whole blocks
            expect(ks.map((k) => k.name.replace('_qmx_track', ''))).toEqual([...rawKernels.map((k) => k.name), expect.stringMatching(new RegExp(`^quantize_inplace_mx(4|rows)?_qmx${sr}$`))]);
          }
        } else {
          expect(ks).toHaveLength(rawKernels.length); // fused into the final store: no extra kernel
          expect(ks[ks.length - 1].epilogue).toBe(`${fmt.kind}${rounding === 'stochastic' ? '_sr' : ''}`);
        }
        const got = await gpuRun(gq, id, feeds);
        const want = quantize(raw, shape, fmt, rounding, { ...STEP, tensorId: id });
        expect([what, bitDiff(got, want, raw)]).toEqual([what, []]);
        if (onePass) {
          // GPUs take the workgroup-per-block layout (CPU drivers an invocation per small block): same bits
          // (its raw kernels may sum in another order: compare with the quantized raw result of that variant)
          const rawGpu = await gpuRun(g, id, feeds, 'gpu');
          const gotGpu = await gpuRun(gq, id, feeds, 'gpu');
          const wantGpu = quantize(rawGpu, shape, fmt, rounding, { ...STEP, tensorId: id });
          expect([`${what} gpu variant`, bitDiff(gotGpu, wantGpu, rawGpu)]).toEqual([`${what} gpu variant`, []]);
        }
        if (p.exact) {
          const cpu = runGraph(gq, named, new Map(), STEP).values[id];
          expect([`${what} vs CPU interpreter`, bitDiff(got, cpu, raw)]).toEqual([`${what} vs CPU interpreter`, []]);
        }
        if (fmt === combos[0].fmt && shape.length > 0) {
          // qpost (a ReLU folded after the quantizer): relu of the quantized values, wherever the rounding happens
          const relu = getOp('relu').ew!.cpu;
          const gotP = await gpuRun(withEpilogue(g, id, fmt, rounding, 'relu(x)'), id, feeds);
          const wantP = Float32Array.from(want, (v) => relu([v], {}));
          expect([`${what} qpost relu`, bitDiff(gotP, wantP, raw)]).toEqual([`${what} qpost relu`, []]);
        }
      }
    });
  });
});

test('qpost with an operand: relu_bwd(Q(dy), y) from the rounding store, the in-place pass and a one-pass kernel', async () => {
  const cases: { op: string; shapes: number[][]; attrs: Attrs }[] = [
    { op: 'matmul', shapes: [[13, 9], [9, 11]], attrs: { ta: false, tb: false } }, // [13, 11]
    { op: 'conv2d', shapes: [[2, 3, 7, 6], [5, 3, 3, 3]], attrs: { stride: 1, pad: 1 } }, // [2, 5, 7, 6]
    { op: 'sum_channel', shapes: [[6, 4, 3, 5]], attrs: {} }, // [4]: a split reduction's one-pass final kernel
  ];
  for (const k of cases)
    for (const { fmt, rounding } of [
      { fmt: { kind: 'bfp', wl: 6, axis: 'tensor' } as Format, rounding: 'stochastic' as Rounding },
      { fmt: { kind: 'fixed', wl: 8, fl: 3 } as Format, rounding: 'stochastic' as Rounding },
    ]) {
      const g = emptyGraph('t'), b = new Builder(g);
      const feeds = new Map<number, HostArray>();
      const { ins, y, yv, outShape } = opOperands(g, b, k.op, k.shapes, k.attrs, feeds, (n) => uniform(n));
      const rawId = b.add(k.op, ins, k.attrs);
      const id = b.add(k.op, [...ins, y], k.attrs, undefined, { args: 1, q: { fmt, rounding }, qpost: parsePost('relu_bwd(x,$0)') });
      const raw = await gpuRun(g, rawId, feeds);
      const got = await gpuRun(g, id, feeds);
      const relu_bwd = getOp('relu_bwd').ew!.cpu;
      const want = Float32Array.from(quantize(raw, outShape, fmt, rounding, { ...STEP, tensorId: id }), (v, i) => relu_bwd([v, yv[i]], {}));
      const what = `${k.op} ${formatToString(fmt)}:${rounding} (data seed ${SEED})`;
      expect([what, bitDiff(got, want, raw)]).toEqual([what, []]);
    }
});

test('widths are params: every fixed format shares one pipeline, the quantized values differ', async () => {
  const p: Producer = { op: 'matmul', ins: [{ shape: [5, 7] }, { shape: [7, 6] }], attrs: { ta: false, tb: false } };
  const { g, id, feeds } = build(p);
  const a = withEpilogue(g, id, { kind: 'fixed', wl: 8, fl: 4 }, 'nearest');
  const b = withEpilogue(g, id, { kind: 'fixed', wl: 5, fl: 3, sym: true }, 'nearest');
  const [ka] = kernelsForNode(a, id), [kb] = kernelsForNode(b, id), [kr] = kernelsForNode(g, id);
  expect(ka.key).toBe(kb.key);
  expect([...ka.params]).not.toEqual([...kb.params]);
  expect(ka.key).not.toBe(kr.key); // the epilogue is structure: a raw kernel stays free of it
  expect(kernelsForNode(withEpilogue(g, id, { kind: 'fixed', wl: 8, fl: 4 }, 'stochastic'), id)[0].key).not.toBe(ka.key);
  expect(await gpuRun(a, id, feeds)).not.toEqual(await gpuRun(b, id, feeds));
});

test('lenet5, quantizers fused: the executor runs fewer kernels and trains like the CPU interpreter', async () => {
  const policy = parsePolicy('W=fixed<8,6> A=fixed<8,4>:stochastic E=bfp<8,tensor>:stochastic G=float<5,2> M=bfp<8,axis=0> ACC=fixed<16,12>');
  const m = runPasses(frontEnd('models/lenet5.ts', 4), { batch: 4, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: policy, fuse: false });
  const fused = fuseQuantizers(m);
  const unfusedKernels = new WebGpuBackend(gpu, m);
  const count = unfusedKernels.kernels('train').length;
  await unfusedKernels.dispose();
  const web = new WebGpuBackend(gpu, fused), cpu = new CpuBackend(fused);
  expect(web.kernels('train').length).toBeLessThan(count);
  expect(web.kernels('train').some((k) => k.epilogue)).toBe(true);
  await expectLenetStepsLikeCpu(fused, web, cpu);
});
