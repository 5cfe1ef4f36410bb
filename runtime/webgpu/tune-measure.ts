/**
 * Timing a node's candidate tiles on the device for tune.ts: the node alone on random data, candidates in
 * alternating rounds, the clearly slower ones dropped after each round (successive halving).
 */
import { Graph, Node, Builder, emptyGraph } from '../../ir/graph.js';
import { withoutQuantizer } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { Variant, kernelsForNode } from '../../codegen/kernels/index.js';
import { type Tile, mxStoreFusable } from '../../codegen/kernels/tiles.js';
import type { Gpu } from './device.js';
import { type BindContext, bindKernel, encodeLaunches, STEP_BYTES } from './launch.js';

/**
 * Best milliseconds per candidate by successive halving: every round times each candidate still in the race; after a
 * round, those slower than 1.25× the best so far drop out, and of the rest only the faster half (and any within 5%
 * of the best, which measurement noise cannot separate) runs again. A dropped candidate keeps its best time.
 */
export async function successiveHalving(n: number, time: (i: number) => Promise<number>, rounds: number, first?: (number | undefined)[]): Promise<number[]> {
  const best = Array.from({ length: n }, () => Infinity);
  let alive = Array.from({ length: n }, (_, i) => i);
  for (let r = 0; r < rounds && alive.length; r++) {
    // a timing the caller already has (sizing the repetitions) stands for a candidate's first round
    for (const i of alive) best[i] = Math.min(best[i], r === 0 && first?.[i] !== undefined ? first[i]! : await time(i));
    const top = Math.min(...alive.map((i) => best[i]));
    alive = alive.filter((i) => best[i] <= 1.25 * top).sort((a, b) => best[a] - best[b]);
    alive = alive.filter((i, k) => k < Math.ceil(alive.length / 2) || best[i] <= 1.05 * top);
    if (alive.length === 1) break;
  }
  return best;
}

/** A graph of inputs (random data) feeding a copy of `node` without its quantize epilogue (but MX that a tile can round in its store). */
function standalone(g: Graph, node: Node): { g: Graph; id: number; feeds: Map<number, Float32Array> } {
  const sg = emptyGraph('tune');
  const b = new Builder(sg);
  const feeds = new Map<number, Float32Array>();
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 - 0.5; };
  const ids = node.inputs.map((i, k) => {
    const shape = g.nodes[i].type.shape;
    const id = b.add('input', [], { name: `x${k}`, kind: 'data', shape, dtype: 'f32' });
    feeds.set(id, Float32Array.from({ length: numel(shape) }, rnd));
    return id;
  });
  // an MX result that some tile rounds in its store keeps its quantizer: the others pay an in-place pass
  return { g: sg, id: b.add(node.op, ids, node.attrs, undefined, mxStoreFusable(node) ? node.epi : withoutQuantizer(node.epi)), feeds };
}

/**
 * Milliseconds per run of each candidate. Buffers and bind groups are made once per candidate; a timing is `reps`
 * runs of the node's kernels in one compute pass, one submit, awaited (reps sized to ≈ 30 ms, so submit and wait
 * costs are small next to the work); best over `rounds` rounds that alternate between candidates, so drift in the
 * machine's speed hits all alike.
 */
export async function measure(gpu: Gpu, g: Graph, node: Node, tiles: Tile[], rounds: number): Promise<number[]> {
  // Dawn loads only here: the cache functions above work (and are tested) without a device.
  const { PipelineCache } = await import('./pipelines.js');
  const d = gpu.device;
  const s = standalone(g, node);
  const variant: Variant = gpu.isCpuDriver ? 'cpu-driver' : 'gpu';
  const pipelines = new PipelineCache(d);
  const owned: GPUBuffer[] = [];
  const make = (bytes: number, usage: number) => {
    const b = d.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    owned.push(b);
    return b;
  };
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const bufs = new Map<number, GPUBuffer>();
  for (const n of s.g.nodes) {
    const b = make(numel(n.type.shape) * 4, STORAGE);
    bufs.set(n.id, b);
    const v = s.feeds.get(n.id);
    if (v) d.queue.writeBuffer(b, 0, v);
  }
  const stepBuf = make(STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  try {
    const runs = tiles.map((t) => {
      const scratch = new Map<number, GPUBuffer>();
      const ctx: BindContext = {
        device: d, pipelines, step: stepBuf, node: (id) => bufs.get(id)!,
        uniform: (bytes) => make(bytes, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST),
        scratch: (index, bytes) => { if (!scratch.has(index)) scratch.set(index, make(bytes, STORAGE)); return scratch.get(index)!; },
      };
      return kernelsForNode(s.g, s.id, { variant, tiles: () => t }).map((k) => bindKernel(ctx, k));
    });
    await pipelines.check();
    const time = async (i: number, reps: number) => {
      const t0 = performance.now();
      const enc = d.createCommandEncoder();
      encodeLaunches(enc, runs[i], reps);
      d.queue.submit([enc.finish()]);
      await d.queue.onSubmittedWorkDone();
      return (performance.now() - t0) / reps;
    };
    const reps: number[] = [], first: (number | undefined)[] = [];
    for (let i = 0; i < tiles.length; i++) {
      await time(i, 1); // compile: lavapipe JITs at the first dispatch
      const t = await time(i, 1);
      reps.push(Math.max(1, Math.min(20, Math.round(30 / Math.max(0.01, t)))));
      first.push(reps[i] === 1 ? t : undefined); // a slow kernel's sizing run is a full timing already
    }
    return await successiveHalving(tiles.length, (i) => time(i, reps[i]), rounds, first);
  } finally {
    await d.queue.onSubmittedWorkDone();
    for (const b of owned) b.destroy();
  }
}
