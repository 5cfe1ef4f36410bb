/**
 * A small standalone runner for kernels of chosen nodes (tests, `lpc quant --backend webgpu`): buffers for the
 * nodes involved, host values uploaded for the fed nodes, the kernels of `run` (in that order) in one compute pass
 * of one command buffer, then readback of `read`. Everything it allocates is destroyed before it returns. The
 * training executor (executor.ts) does the same once per graph and reuses its buffers; this one is deliberately
 * simple.
 */
import { Graph } from '../../ir/graph.js';
import { numel } from '../../ir/types.js';
import { Kernel, stepWords } from '../../codegen/kernel.js';
import { kernelsForNode, Variant } from '../../codegen/kernels/index.js';
import { PipelineCache } from './pipelines.js';
import { BindContext, bindKernel, encodeLaunches, Launch, STEP_BYTES } from './launch.js';
import { TilePicker } from '../../codegen/kernels/tiles.js';

export type HostArray = Float32Array | Int32Array;

export interface RunKernelsOptions {
  /** Host values of nodes (inputs, state, or anything else to be taken as given), by node id. */
  feeds: Map<number, HostArray> | Record<number, HostArray>;
  /** Nodes whose kernels run, in order (ops without kernels, e.g. reshape, are allowed and do nothing). */
  run: number[];
  /** Nodes to read back. */
  read: number[];
  /** Per-step uniform values (stochastic rounding); default seed 0, step 0. */
  step?: { seed: number; step: number; lr?: number; bits?: { fwd: number; bwd: number } };
  variant?: Variant;
  /** GEMM tilings (default: codegen's default tile per node). */
  tiles?: TilePicker;
  /** Dispatch only the kernels this accepts (bench/profile.ts times one kernel of a node at a time); default: all. */
  only?: (k: Kernel, id: number) => boolean;
  /** Reuse a cache across calls (and count pipeline creations); default: a cache for this call only. */
  pipelines?: PipelineCache;
}

export interface RunKernelsResult {
  values: Map<number, HostArray>;
  /** The kernels dispatched, in order. */
  kernels: Kernel[];
}

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const padded = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

/** reshape is a view: the node whose buffer holds its bytes. */
function storageNode(g: Graph, id: number): number {
  while (g.nodes[id].op === 'reshape') id = g.nodes[id].inputs[0];
  return id;
}

export async function runKernels(device: GPUDevice, g: Graph, o: RunKernelsOptions): Promise<RunKernelsResult> {
  const feeds = o.feeds instanceof Map ? o.feeds : new Map(Object.entries(o.feeds).map(([k, v]) => [Number(k), v]));
  const pipelines = o.pipelines ?? new PipelineCache(device);
  const owned: GPUBuffer[] = [];
  const make = (bytes: number, usage: number, label: string) => {
    const b = device.createBuffer({ size: padded(bytes), usage, label });
    owned.push(b);
    return b;
  };
  const bufs = new Map<number, GPUBuffer>();
  const bufferOf = (id: number): GPUBuffer => {
    const sid = storageNode(g, id);
    let b = bufs.get(sid);
    if (!b) {
      const n = g.nodes[sid];
      b = make(numel(n.type.shape) * 4, STORAGE, `%${sid} ${n.op}`);
      bufs.set(sid, b);
    }
    return b;
  };

  device.pushErrorScope('validation');
  try {
    // Values: fed first, then produced by the run list in order; anything else read before it exists is an error.
    const ready = new Set<number>();
    for (const [id, v] of feeds) {
      const n = g.nodes[id];
      if (!n) throw new Error(`feed for unknown node %${id}`);
      if (v.length !== numel(n.type.shape)) throw new Error(`feed for %${id} has ${v.length} values, its type holds ${numel(n.type.shape)}`);
      device.queue.writeBuffer(bufferOf(id), 0, v.buffer, v.byteOffset, v.byteLength);
      ready.add(storageNode(g, id));
    }
    const stepBuf = make(STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step');
    device.queue.writeBuffer(stepBuf, 0, stepWords(o.step ?? {}));

    const enc = device.createCommandEncoder({ label: 'runKernels' });
    const kernels: Kernel[] = [];
    const launches: Launch[] = [];
    // A node run again (profiling repeats one) reuses its scratch: fresh buffers each time would time Dawn's
    // zero-initialisation of them, not the kernels.
    const scratchOf = new Map<number, Map<number, GPUBuffer>>();
    for (const id of o.run) {
      const node = g.nodes[id];
      if (!node) throw new Error(`run list names unknown node %${id}`);
      for (const i of node.inputs)
        if (!ready.has(storageNode(g, i))) throw new Error(`%${id} ${node.op} needs %${i} (${g.nodes[i].op}), which is neither fed nor run before it`);
      const scratch = scratchOf.get(id) ?? new Map<number, GPUBuffer>();
      scratchOf.set(id, scratch);
      const ctx: BindContext = {
        device, pipelines, step: stepBuf, node: bufferOf,
        uniform: (bytes, label) => make(bytes, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label),
        scratch: (index, bytes, label) => { if (!scratch.has(index)) scratch.set(index, make(bytes, STORAGE, label)); return scratch.get(index)!; },
      };
      for (const k of kernelsForNode(g, id, { variant: o.variant, tiles: o.tiles })) {
        if (o.only && !o.only(k, id)) continue;
        launches.push(bindKernel(ctx, k));
        kernels.push(k);
      }
      ready.add(storageNode(g, id));
    }
    await pipelines.check();
    encodeLaunches(enc, launches);
    const staging = o.read.map((id) => {
      if (!ready.has(storageNode(g, id))) throw new Error(`cannot read %${id}: it is neither fed nor run`);
      const bytes = numel(g.nodes[id].type.shape) * 4;
      const s = make(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `read %${id}`);
      enc.copyBufferToBuffer(bufferOf(id), 0, s, 0, padded(bytes));
      return { id, s, bytes };
    });
    device.queue.submit([enc.finish()]);
    const values = new Map<number, HostArray>();
    for (const { id, s, bytes } of staging) {
      await s.mapAsync(GPUMapMode.READ);
      const raw = s.getMappedRange(0, padded(bytes));
      const n = bytes / 4;
      const out = g.nodes[id].type.dtype === 'i32' ? new Int32Array(n) : new Float32Array(n);
      out.set(g.nodes[id].type.dtype === 'i32' ? new Int32Array(raw, 0, n) : new Float32Array(raw, 0, n));
      s.unmap();
      values.set(id, out);
    }
    return { values, kernels };
  } finally {
    const err = await device.popErrorScope();
    await device.queue.onSubmittedWorkDone();
    for (const b of owned) b.destroy();
    if (err) throw new Error(`WebGPU validation error in runKernels: ${err.message}`);
  }
}
