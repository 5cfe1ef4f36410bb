/**
 * The model-zoo ops' WebGPU kernels: forward and gradients against PyTorch (test/fixtures/zoo/op_grads.json) within
 * 1e-4 of the largest reference magnitude, on both kernel variants; each kernel (grouped convolution and its
 * gradients, padded max pooling, relu6, adaptive pooling, concat, slice) against the CPU interpreter on fresh
 * random data; and every one of those kernels with a quantize epilogue bit for bit against the CPU quantizer
 * applied to the kernel's own raw result (as test/webgpu/epilogue.test.ts does, so f32-vs-f64 sums cannot flip a
 * rounding boundary), plus the exact ones against the CPU interpreter directly.
 */
// first: opening the device module defines the WebGPU globals (GPUBufferUsage) run-kernels.ts reads when it loads
import { TEST_SEED, useGpu } from './gpu-fixture.js';
import { Attrs, Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { Format, Rounding, formatToString } from '../../ir/format.js';
import { getOp } from '../../ir/ops/index.js';
import type { Epilogue } from '../../ir/epilogue.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { Variant } from '../../codegen/kernels/builder.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom, relErr } from '../unit/helpers.js';
import { caseGraph, zooCases } from '../unit/zoo-cases.js';

const gpu = useGpu();
const SEED = TEST_SEED;
const rand = seededRandom(SEED);
const uniform = (n: number, lo = -2, hi = 2) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const STEP = { seed: 0x5eed1234, step: 7 };

async function gpuRun(g: Graph, feeds: Map<number, HostArray>, run: number[], read: number[], variant: Variant = 'cpu-driver') {
  const { values } = await runKernels(gpu.device, g, { feeds, run, read, step: STEP, pipelines: gpu.cache, variant });
  return values;
}

describe.each(zooCases().map((c) => [c.name, c] as const))(`%s: WebGPU vs PyTorch (data seed ${SEED})`, (_n, c) => {
  for (const variant of ['cpu-driver', 'gpu'] as Variant[]) {
    test(variant, async () => {
      const { g, y, grads, byId } = caseGraph(c);
      const run = g.nodes.filter((n) => n.op !== 'input').map((n) => n.id);
      const v = await gpuRun(g, byId, run, [y, ...grads], variant);
      expect(relErr(v.get(y)!, c.y.data)).toBeLessThan(1e-4);
      grads.forEach((id, i) => expect([c.name, i, relErr(v.get(id)!, c.grads[i]) < 1e-4]).toEqual([c.name, i, true]));
    });
  }
});

interface Producer { op: string; ins: number[][]; attrs?: Attrs; exact?: boolean; tag?: string; data?: (i: number, n: number) => Float32Array | undefined }
const PRODUCERS: Producer[] = [
  { op: 'conv2d', ins: [[2, 6, 7, 5], [6, 1, 3, 3], [6]], attrs: { stride: 1, pad: 1, groups: 6 }, tag: 'depthwise, bias' },
  { op: 'conv2d', ins: [[2, 6, 9, 7], [4, 3, 3, 3]], attrs: { stride: 2, pad: 1, groups: 2 }, tag: 'grouped, stride 2' },
  { op: 'conv2d_bwd_data', ins: [[2, 6, 4, 3], [6, 2, 3, 3]], attrs: { stride: 2, pad: 1, in_hw: [7, 6], groups: 3 }, tag: 'stride 2' },
  { op: 'conv2d_bwd_data', ins: [[2, 4, 7, 5], [4, 1, 3, 3]], attrs: { stride: 1, pad: 1, in_hw: [7, 5], groups: 4 }, tag: 'depthwise' },
  // a split reduction: partials in scratch 0, the epilogue on the sum
  { op: 'conv2d_bwd_weight', ins: [[2, 4, 7, 5], [2, 4, 7, 5]], attrs: { stride: 1, pad: 1, k_hw: [3, 3], groups: 4 }, tag: 'depthwise' },
  { op: 'conv2d_bwd_weight', ins: [[2, 6, 4, 3], [2, 6, 7, 6]], attrs: { stride: 2, pad: 1, k_hw: [3, 3], groups: 2 }, tag: 'grouped, stride 2' },
  { op: 'maxpool', ins: [[2, 3, 7, 6]], attrs: { k: 3, stride: 2, pad: 1 }, exact: true },
  { op: 'maxpool_bwd', ins: [[2, 3, 4, 3], [2, 3, 7, 6]], attrs: { k: 3, stride: 2, pad: 1 }, exact: true },
  { op: 'relu6', ins: [[3, 7, 5]], exact: true, data: (_i, n) => uniform(n, -3, 9) },
  { op: 'relu6_bwd', ins: [[3, 7, 5], [3, 7, 5]], exact: true, data: (i, n) => (i === 1 ? uniform(n, -3, 9).map((v) => Math.min(6, Math.max(0, v))) : undefined) },
  { op: 'adaptive_avgpool', ins: [[2, 3, 7, 5]], attrs: { out_hw: [3, 2] } },
  { op: 'adaptive_avgpool_bwd', ins: [[2, 3, 3, 2]], attrs: { in_hw: [7, 5] } },
  { op: 'concat', ins: [[2, 2, 3, 3], [2, 3, 3, 3], [2, 1, 3, 3]], attrs: { axis: 1 }, exact: true },
  { op: 'slice', ins: [[2, 6, 3, 3]], attrs: { axis: 1, start: 2, len: 3 }, exact: true },
];

function build(p: Producer): { g: Graph; id: number; feeds: Map<number, HostArray>; named: Record<string, Float32Array> } {
  const g = emptyGraph('t');
  const b = new Builder(g);
  const feeds = new Map<number, HostArray>();
  const named: Record<string, Float32Array> = {};
  const ids = p.ins.map((shape, i) => {
    const data = p.data?.(i, numel(shape)) ?? uniform(numel(shape));
    const id = b.add('input', [], { name: `x${i}`, kind: 'data', shape, dtype: 'f32' });
    feeds.set(id, data);
    named[`x${i}`] = data;
    return id;
  });
  return { g, id: b.add(p.op, ids, p.attrs ?? {}), feeds, named };
}

describe(`each kernel against the CPU interpreter (float64; data seed ${SEED})`, () => {
  for (const p of PRODUCERS) {
    test(`${p.op}${p.tag ? ` (${p.tag})` : ''}`, async () => {
      const { g, id, feeds, named } = build(p);
      // grouped convolutions take the direct kernels, never a dense GEMM tiling
      if (p.op.startsWith('conv2d')) expect(kernelsForNode(g, id).map((k) => k.name).filter((n) => !n.startsWith('conv2d_grouped'))).toEqual([]);
      const got = (await gpuRun(g, feeds, [id], [id])).get(id)!;
      const want = runGraph(g, named, new Map(), { precision: 'f64' }).values[id];
      expect(relErr(got, want)).toBeLessThan(1e-5);
      // exact: the f32 interpreter's bits (a padded 3×3/2 pool gradient sums up to 4 windows: f32 additions in window
      // order, as the kernel does; the float64 sum rounded once can differ in the last bit)
      if (p.exact) expect(Array.from(got)).toEqual(Array.from(runGraph(g, named, new Map(), { precision: 'f32' }).values[id]));
    });
  }
});

const FORMATS: Format[] = [
  { kind: 'fixed', wl: 8, fl: 4 },
  { kind: 'float', exp: 5, man: 2 },
  { kind: 'bfp', wl: 8, axis: 'tensor' },
  { kind: 'bfp', wl: 6, axis: 0 },
  { kind: 'minmax', bits: 4, per: 'tensor' },
];
const COMBOS = FORMATS.flatMap((fmt) => (['nearest', 'stochastic'] as Rounding[]).map((rounding) => ({ fmt, rounding })));

function withEpilogue(g: Graph, id: number, fmt: Format, rounding: Rounding): Graph {
  return {
    ...g, nodes: g.nodes.map((n) => {
      if (n.id !== id) return n;
      const epi: Epilogue = { args: 0, q: { fmt, rounding } };
      return { ...n, epi, type: getOp(n.op).infer(n.inputs.map((i) => g.nodes[i].type), n.attrs, epi) };
    }),
  };
}
const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));

describe(`quantize epilogues bit for bit (data seed ${SEED})`, () => {
  PRODUCERS.forEach((p, i) => {
    const combos = [COMBOS[(3 * i) % COMBOS.length], COMBOS[(3 * i + 5) % COMBOS.length], COMBOS[(3 * i + 7) % COMBOS.length]];
    test(`${p.op}${p.tag ? ` (${p.tag})` : ''}: ${combos.map((c) => `${formatToString(c.fmt)}:${c.rounding}`).join(' ')}`, async () => {
      const { g, id, feeds, named } = build(p);
      const shape = g.nodes[id].type.shape;
      const raw = (await gpuRun(g, feeds, [id], [id])).get(id) as Float32Array;
      for (const { fmt, rounding } of combos) {
        const what = `${p.op} ${formatToString(fmt)}:${rounding}`;
        const gq = withEpilogue(g, id, fmt, rounding);
        const got = (await gpuRun(gq, feeds, [id], [id])).get(id)!;
        const want = quantize(raw, shape, fmt, rounding, { ...STEP, tensorId: id });
        expect([what, bits(got)]).toEqual([what, bits(want)]);
        if (p.exact) expect([what, bits(got)]).toEqual([what, bits(runGraph(gq, named, new Map(), STEP).values[id])]);
      }
    });
  });
});
