/**
 * Runs compiled graphs on a Dawn device. Buffers, params uniforms and bind groups are made once; a step is
 * input uploads, one compute pass with every dispatch, state-update copies and output copies in ONE command
 * buffer, and a single readback of the outputs asked for. Value and scratch buffers come from the memory plan
 * (passes/memory.ts): one GPUBuffer per plan slot, shared by values whose lifetimes do not overlap and by the
 * graphs (they run one at a time); `memory: 'per-node'` keeps one buffer per value (for comparisons).
 */
import { Graph, Module } from '../../ir/graph.js';
import { numel } from '../../ir/types.js';
import { stepInputValue } from '../../ir/step-inputs.js';
import { Kernel, STEP_WORDS, stepWords } from '../../codegen/kernel.js';
import { Backend, Feed, StepInfo } from '../backend.js';
import { Gpu } from './device.js';
import './device.js'; // installs the WebGPU globals (GPUBufferUsage …) even when only the type is used
import { PipelineCache } from './pipelines.js';
import { BindContext, bindKernel, encodeLaunches, Launch, STEP_BYTES } from './launch.js';
import { GraphMemoryPlan, ModuleMemoryPlan } from '../../passes/memory.js';
import { moduleKernels, planModule } from '../memory.js';
import { TilePicker } from '../../codegen/kernels/tiles.js';
import type { ViewMap } from '../../passes/channel-views.js';
import { attrsOf, type OpAttrs } from '../../ir/op-registry.js';
import { PackedState, fromStorage, packedStates, toStorage } from '../packed-state.js';

interface CompiledGraph {
  graph: Graph;
  dispatches: Launch[];
  inputs: Map<string, GPUBuffer>;
  /** Each input's attributes (step inputs are computed from the step, ir/step-inputs.ts). */
  inputAttrs: Map<string, OpAttrs['input']>;
  /** (from, to) copies that apply the state updates. */
  updates: [GPUBuffer, GPUBuffer, number][];
  /** Readback staging per output. */
  outputs: Map<string, GPUBuffer>;
  /** The buffer holding each node's value. */
  bufs: GPUBuffer[];
}

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export class WebGpuBackend implements Backend {
  readonly description: string;
  private readonly device: GPUDevice;
  private readonly pipelines: PipelineCache;
  private readonly state = new Map<string, GPUBuffer>();
  private readonly graphs = new Map<string, CompiledGraph>();
  private readonly stepBuf: GPUBuffer;
  private readonly stepData = new Uint32Array(STEP_WORDS);
  /** Every buffer created, for dispose and for the memory report. */
  private readonly owned: GPUBuffer[] = [];
  /** Bytes of every buffer created (uniforms and readback staging included). */
  bytesAllocated = 0;
  /** Bytes of the storage buffers (state, values, scratch): what the memory plan accounts for. */
  storageBytes = 0;
  /** The plan the buffers follow (absent with `memory: 'per-node'`). */
  readonly memoryPlan?: ModuleMemoryPlan;
  /** Plan slots, shared by every graph. */
  private readonly pool: GPUBuffer[] = [];
  /** States held as packed MX words (passes/pack-state.ts). */
  private readonly packed: Map<string, PackedState>;

  /**
   * `concatViews: false` makes every concat copy its inputs (for comparisons); by default, with the plan, a
   * concatenation's inputs are written in place (passes/channel-views.ts). `memory: 'per-node'` never places them.
   */
  constructor(private readonly gpu: Gpu, private readonly m: Module, opts: { variant?: 'cpu-driver' | 'gpu'; memory?: 'plan' | 'per-node'; tiles?: TilePicker; concatViews?: boolean } = {}) {
    this.device = gpu.device;
    this.packed = packedStates(m);
    this.description = `webgpu (${gpu.adapterDescription})`;
    this.pipelines = new PipelineCache(this.device);
    this.stepBuf = this.buffer(STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step');
    const variant = opts.variant ?? (gpu.isCpuDriver ? 'cpu-driver' : 'gpu');
    // GEMM tilings: the caller's picker (runtime/webgpu/tune.ts: the adapter's measured choices), else the defaults.
    const kernels = moduleKernels(m, variant, opts.tiles, { concatViews: opts.memory !== 'per-node' && opts.concatViews !== false });
    if (opts.memory !== 'per-node') {
      this.memoryPlan = planModule(m, variant, kernels);
      for (const s of this.memoryPlan.state) this.stateBuffer(s.name, s.bytes);
      this.memoryPlan.pool.forEach((bytes, i) => this.pool.push(this.buffer(bytes, STORAGE, `slot${i}`)));
    }
    m.graphs.forEach((g, i) => this.graphs.set(g.name, this.compile(g, kernels.get(g.name)!, this.memoryPlan?.graphs[i], kernels.views?.get(g.name))));
  }

  get pipelinesCreated(): number { return this.pipelines.created; }

  private buffer(bytes: number, usage: number, label: string): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const b = this.device.createBuffer({ size, usage, label });
    this.owned.push(b);
    this.bytesAllocated += size;
    if (usage === STORAGE) this.storageBytes += size;
    return b;
  }

  private stateBuffer(name: string, bytes: number): GPUBuffer {
    let b = this.state.get(name);
    if (!b) { b = this.buffer(bytes, STORAGE, `state:${name}`); this.state.set(name, b); }
    return b;
  }

  private compile(g: Graph, kernels: Kernel[][], plan?: GraphMemoryPlan, views?: ViewMap): CompiledGraph {
    const bufs: GPUBuffer[] = [];
    const inputs = new Map<string, GPUBuffer>();
    const inputAttrs: CompiledGraph['inputAttrs'] = new Map();
    const slotOf = new Map<string, number>();
    for (const b of plan?.buffers ?? []) slotOf.set(`${b.node}:${b.scratch ?? ''}`, b.slot);
    for (const n of g.nodes) {
      const bytes = numel(n.type.shape) * 4;
      if (n.op === 'state') bufs.push(this.stateBuffer(attrsOf(n, 'state').name, bytes));
      else if (n.op === 'reshape') bufs.push(bufs[n.inputs[0]]); // a view: same bytes
      else {
        const b = plan ? this.pool[slotOf.get(`${n.id}:`)!] : this.buffer(bytes, STORAGE, `%${n.id} ${n.op}`);
        if (n.op === 'input') { const a = attrsOf(n, 'input'); inputs.set(a.name, b); inputAttrs.set(a.name, a); }
        bufs.push(b);
      }
    }
    // placed values live in their root's buffer (a later node); their kernels address the range (codegen/views.ts)
    for (const [id, v] of views ?? []) bufs[id] = bufs[v.root];
    const dispatches: Launch[] = [];
    const uniform = (bytes: number, label: string) => this.buffer(bytes, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label);
    for (const n of g.nodes) {
      const scratch = new Map<number, GPUBuffer>();
      const ctx: BindContext = {
        device: this.device, pipelines: this.pipelines, step: this.stepBuf, uniform, node: (id) => bufs[id],
        scratch: (index, bytes, label) => {
          if (!scratch.has(index)) scratch.set(index, plan ? this.pool[slotOf.get(`${n.id}:${index}`)!] : this.buffer(bytes, STORAGE, label));
          return scratch.get(index)!;
        },
      };
      for (const k of kernels[n.id]) dispatches.push(bindKernel(ctx, k));
    }
    const updates: [GPUBuffer, GPUBuffer, number][] = [];
    for (const u of g.updates) {
      const to = this.state.get(u.name);
      if (!to) throw new Error(`graph '${g.name}' updates unknown state '${u.name}'`);
      const from = bufs[u.node];
      if (from !== to) updates.push([from, to, numel(g.nodes[u.node].type.shape) * 4]);
    }
    const outputs = new Map<string, GPUBuffer>();
    for (const o of g.outputs) {
      const bytes = numel(g.nodes[o.node].type.shape) * 4;
      outputs.set(o.name, this.buffer(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `read ${o.name}`));
    }
    return { graph: g, bufs, dispatches, inputs, inputAttrs, updates, outputs };
  }

  /** Kernels per step of a graph (for inspect and benchmarks). */
  kernels(graph: string): Kernel[] { return this.graphs.get(graph)!.dispatches.map((d) => d.kernel); }

  /** f32 values in; packed states (passes/pack-state.ts) are stored as their MX words. */
  async setState(state0: Map<string, Float32Array>): Promise<void> {
    const state = toStorage(this.packed, state0);
    for (const [name, buf] of this.state) {
      const v = state.get(name);
      if (!v) throw new Error(`no initial value for state '${name}'`);
      this.device.queue.writeBuffer(buf, 0, v);
    }
    await this.device.queue.onSubmittedWorkDone();
  }

  async getState(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    const enc = this.device.createCommandEncoder();
    const staging: [string, GPUBuffer][] = [];
    for (const [name, buf] of this.state) {
      const s = this.device.createBuffer({ size: buf.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.copyBufferToBuffer(buf, 0, s, 0, buf.size);
      staging.push([name, s]);
    }
    this.device.queue.submit([enc.finish()]);
    const sizes = this.stateSizes();
    for (const [name, s] of staging) {
      await s.mapAsync(GPUMapMode.READ);
      out.set(name, new Float32Array(s.getMappedRange().slice(0, sizes.get(name)! * 4)));
      s.unmap();
      s.destroy();
    }
    return fromStorage(this.packed, out);
  }

  private stateSizes(): Map<string, number> {
    const m = new Map<string, number>();
    for (const g of this.m.graphs) for (const n of g.nodes) if (n.op === 'state') m.set(attrsOf(n, 'state').name, numel(n.type.shape));
    return m;
  }

  async run(graph: string, feeds: Record<string, Feed>, step: StepInfo, read: string[]): Promise<Record<string, Float32Array>> {
    const cg = this.graphs.get(graph);
    if (!cg) throw new Error(`no graph '${graph}'`);
    const q = this.device.queue;
    for (const [name, buf] of cg.inputs) {
      const v = feeds[name] ?? stepInputValue(cg.inputAttrs.get(name)!, step.step);
      if (!v) throw new Error(`graph '${graph}' needs input '${name}'`);
      q.writeBuffer(buf, 0, v.buffer, v.byteOffset, v.byteLength);
    }
    stepWords(step, this.stepData);
    q.writeBuffer(this.stepBuf, 0, this.stepData);
    const enc = this.device.createCommandEncoder();
    // the plan keeps a cleared scratch buffer's slot to itself from the start of the step to its node's last dispatch
    encodeLaunches(enc, cg.dispatches);
    return this.finish(enc, cg, read);
  }

  private async finish(enc: GPUCommandEncoder, cg: CompiledGraph, read: string[]): Promise<Record<string, Float32Array>> {
    for (const [from, to, bytes] of cg.updates) enc.copyBufferToBuffer(from, 0, to, 0, bytes);
    const byName = new Map(cg.graph.outputs.map((o) => [o.name, o.node]));
    for (const name of read) {
      const id = byName.get(name);
      if (id === undefined) throw new Error(`graph '${cg.graph.name}' has no output '${name}'`);
      const src = cg.bufs[id], dst = cg.outputs.get(name)!;
      enc.copyBufferToBuffer(src, 0, dst, 0, numel(cg.graph.nodes[id].type.shape) * 4);
    }
    this.device.queue.submit([enc.finish()]);
    const out: Record<string, Float32Array> = {};
    await Promise.all(read.map((n) => cg.outputs.get(n)!.mapAsync(GPUMapMode.READ)));
    for (const name of read) {
      const b = cg.outputs.get(name)!;
      out[name] = new Float32Array(b.getMappedRange().slice(0, numel(cg.graph.nodes[byName.get(name)!].type.shape) * 4));
      b.unmap();
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
  }
}
