/**
 * `npm run build && node dist/bench/depthwise.js [--batch N] [--reps R]`: depthwise convolutions (MobileNetV2's
 * 3×3, groups = channels) on the WebGPU adapter, forward and both gradients, by lpc's direct grouped kernels
 * (codegen/kernels/conv2d-grouped.ts) against the same convolution as a dense one whose weight is zero off the
 * diagonal (what running a depthwise conv through the dense GEMM kernels would cost: C× the multiply-adds and
 * weight bytes). Each node is timed as bench/profile.ts does: once and 1 + R times, the difference over R (uploads,
 * submit and readback cancel), median of `--reps`. Shapes: MobileNetV2 (CIFAR, stride-1 stem) stages at batch N.
 *
 * Then the direct kernels' bandwidth against the adapter's: each pass's least traffic (every input element read
 * once, every output element written once) over its time, against an elementwise copy kernel (lpc's `scale` by 1:
 * one read and one write per element) over the same input tensor, timed the same way, and a 64 MB copy for the
 * adapter's elementwise bandwidth. A depthwise pass near the copy's bytes/s is as fast as its data allows.
 */
import { Attrs, Builder, Graph, emptyGraph } from '../ir/graph.js';
import { numel } from '../ir/types.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { PipelineCache } from '../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../runtime/webgpu/run-kernels.js';
import { Flags } from './common.js';

const f = new Flags();
const batch = f.int('--batch', 16), reps = f.int('--reps', 3);
const gpu = await getGpu({ quiet: true });
const pipelines = new PipelineCache(gpu.device);
const variant = gpu.isCpuDriver ? 'cpu-driver' as const : 'gpu' as const;

/** One node on inputs of the given shapes (values do not change the time). */
function graph(op: string, shapes: number[][], attrs: Attrs): { g: Graph; id: number; feeds: Map<number, HostArray> } {
  const g = emptyGraph('t'), b = new Builder(g), feeds = new Map<number, HostArray>();
  const ids = shapes.map((shape, i) => {
    const id = b.add('input', [], { name: `x${i}`, kind: 'data', shape, dtype: 'f32' });
    feeds.set(id, Float32Array.from({ length: numel(shape) }, (_, k) => ((k * 7919) % 1751) / 1000 - 0.875));
    return id;
  });
  return { g, id: b.add(op, ids, attrs), feeds };
}

async function time(op: string, shapes: number[][], attrs: Attrs): Promise<number> {
  const { g, id, feeds } = graph(op, shapes, attrs);
  const run = async (n: number) => {
    const t0 = performance.now();
    await runKernels(gpu.device, g, { feeds, run: Array(n).fill(id), read: [], pipelines, variant });
    return performance.now() - t0;
  };
  const once = await run(1);
  const R = Math.min(100, Math.max(2, Math.ceil(40 / Math.max(once, 0.05))));
  const est: number[] = [];
  for (let r = 0; r < reps; r++) est.push(((await run(1 + R)) - (await run(1))) / R);
  est.sort((a, b) => a - b);
  return Math.max(1e-3, est[est.length >> 1]);
}

const SHAPES: [number, number][] = [[144, 16], [192, 8], [576, 4]]; // [channels, map size]
const gbps = (bytes: number, ms: number) => bytes / ms / 1e6;
const bw: string[] = [];
console.log(`depthwise 3×3 convolutions, batch ${batch}, on ${gpu.adapterDescription}`);
console.log('| input | pass | direct grouped (ms) | dense with zeros (ms) | dense / direct |\n|---|---|---|---|---|');
for (const [C, S] of SHAPES) {
  const x = [batch, C, S, S], a = { stride: 1, pad: 1 };
  const passes: [string, string, number[][], Attrs][] = [
    ['forward', 'conv2d', [x, [C, 1, 3, 3]], a],
    ['data gradient', 'conv2d_bwd_data', [x, [C, 1, 3, 3]], { ...a, in_hw: [S, S] }],
    ['weight gradient', 'conv2d_bwd_weight', [x, x], { ...a, k_hw: [3, 3] }],
  ];
  for (const [label, op, shapes, attrs] of passes) {
    const direct = await time(op, shapes, { ...attrs, groups: C });
    const bytes = 4 * (shapes.reduce((a, sh) => a + numel(sh), 0) + (op === 'conv2d_bwd_weight' ? 9 * C : numel(x)));
    const copy = await time('scale', [x], { c: 1 });
    const copyBytes = 8 * numel(x);
    bw.push(`| ${x.join('×')} | ${label} | ${direct.toFixed(3)} | ${(bytes / 1e6).toFixed(2)} | ${gbps(bytes, direct).toFixed(2)} | ` +
      `${gbps(copyBytes, copy).toFixed(2)} | ${(gbps(bytes, direct) / gbps(copyBytes, copy)).toFixed(2)} |`);
    const denseShapes = shapes.map((s) => (s.length === 4 && s[1] === 1 ? [C, C, 3, 3] : s));
    const dense = await time(op, denseShapes, attrs);
    console.log(`| ${x.join('×')} | ${label} | ${direct.toFixed(3)} | ${dense.toFixed(3)} | ${(dense / direct).toFixed(1)}× |`);
  }
}
const big = [16, 1024, 1024]; // 16 M floats: 64 MB read, 64 MB written
const bigMs = await time('scale', [big], { c: 1 });
console.log(`\ndirect depthwise kernels' bandwidth (least bytes: inputs read once, output written once) against an elementwise copy ` +
  `of the same input; a 64 MB elementwise copy runs at ${gbps(8 * numel(big), bigMs).toFixed(2)} GB/s on this adapter`);
console.log('| input | pass | direct (ms) | least bytes (MB) | direct GB/s | copy GB/s (same input) | direct / copy |\n|---|---|---|---|---|---|---|');
for (const r of bw) console.log(r);
await shutdownGpu();
