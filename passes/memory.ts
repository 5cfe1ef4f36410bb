/**
 * The memory planner (plan-memory): value lifetimes in dispatch order → buffer reuse, and peak bytes by class.
 *
 * It is an analysis, not a graph rewrite: how many dispatches a node takes and which scratch buffers its kernels
 * need are codegen facts, which passes may not import, so the caller (runtime) describes each node's kernels.
 *
 * Positions: each computing node takes as many positions as it has dispatches (at least one), in node order;
 * -1 is "before the compute pass" (input uploads, scratch clears), D is "after it" (state-update and readback
 * copies). A buffer lives on a closed interval of positions; two buffers share a slot only if their intervals are
 * disjoint. A node's output lives over all of its own dispatches (kernels may read and rewrite it, e.g. the bfp
 * epilogue quantizes in place), and its inputs live through its last dispatch, so a node never reads and writes
 * one buffer through two values.
 */
import { Graph, Module, outputAncestors } from '../ir/graph.js';
import { numel } from '../ir/types.js';
import { formatBits } from '../ir/format.js';
import { mxPackedBytes } from '../ir/quant/mx.js';
import { COMPRESS_OPS, DECOMPRESS_OPS } from './compress.js';
import { attrsOf } from '../ir/op-registry.js';
import type { ViewMap } from './channel-views.js';

export type MemClass = 'weights' | 'gradients' | 'optimizer' | 'saved_activations' | 'workspace';
export const MEM_CLASSES: MemClass[] = ['weights', 'gradients', 'optimizer', 'saved_activations', 'workspace'];

/** What codegen says about one node's kernels. */
export interface NodeKernels {
  dispatches: number;
  /** Per-node scratch (Kernel.bindings with ref.kind 'scratch'); `cleared` ones are zeroed before the compute pass. */
  scratch: { index: number; bytes: number; cleared: boolean }[];
  /** Node ids the kernels bind besides the node's own inputs and output (treated as uses). */
  binds?: number[];
}

export interface PlanOptions {
  /** Default: one dispatch and no scratch for every node that is not input, state or reshape. */
  kernels?: (nodeId: number) => NodeKernels;
  /** Bytes a buffer takes (the executor rounds to 16, minimum 16). */
  align?: (bytes: number) => number;
  /** Logical bytes of a value or state (default valueBytes: f32 storage; packedBytes: each at its format's width). */
  bytes?: (g: Graph, id: number) => number;
  /** Values placed as ranges of another value's buffer (passes/channel-views.ts): they get no buffer of their own. */
  views?: ViewMap;
}

/** One buffer the plan places: a value (a non-view, non-state node) or one scratch buffer of a node. */
export interface PlannedBuffer {
  node: number;
  /** Scratch index, for scratch buffers. */
  scratch?: number;
  /** Logical bytes (numel × 4) and the aligned bytes it occupies. */
  bytes: number;
  aligned: number;
  start: number;
  end: number;
  class: MemClass;
  slot: number;
}

export interface StateBuffer { name: string; bytes: number; aligned: number; class: MemClass }

export type ClassBytes = Record<MemClass, number>;

export interface GraphMemoryPlan {
  graph: string;
  /** Positions of the compute pass (D); see the file comment. */
  positions: number;
  /** The state this graph reads (weights, optimizer state), resident for the whole step. */
  state: StateBuffer[];
  buffers: PlannedBuffer[];
  /** Aligned bytes of each slot, largest first. */
  slots: number[];
  /** Per node: the node whose buffer holds its value (itself, or a view's root). */
  root: number[];
  /** Per class: the most bytes of that class live at one time (state: all of it). Classes peak at different times. */
  classes: ClassBytes;
  /** The most logical bytes live at one position (state included), and the split by class at that position. */
  live_peak_bytes: number;
  at_peak: ClassBytes;
  /** Bytes of the buffers allocated for this graph alone: its state plus its slots (aligned). */
  peak_bytes: number;
}

export interface ModuleMemoryPlan {
  graphs: GraphMemoryPlan[];
  /** All state, once (graphs share it). */
  state: StateBuffer[];
  /** Slot sizes shared by every graph (graphs run one at a time): the largest of each graph's i-th slot. */
  pool: number[];
  /** Bytes of every buffer an executor following the plan allocates: state plus pool (aligned). */
  allocated_bytes: number;
  /** The same with one buffer per value and scratch buffer, nothing shared (for comparison). */
  unshared_bytes: number;
}

const NO_KERNEL = new Set(['input', 'state', 'reshape']);
const defaultBytes = (g: Graph, id: number) => valueBytes(g, id);
export const align16 = (b: number) => Math.max(16, Math.ceil(b / 16) * 16);
const zeroClasses = (): ClassBytes => ({ weights: 0, gradients: 0, optimizer: 0, saved_activations: 0, workspace: 0 });

export function valueBytes(g: Graph, id: number): number {
  return numel(g.nodes[id].type.shape) * 4;
}

/**
 * What a value would take stored packed at its format's width, in whole u32 words: numel × bits(fmt) / 8 (a state at
 * the format its update writes: a weight quantized by W, an accumulator by ACC). A what-if: lpc stores f32 except
 * saved activations under save=… and MX weights (with ACC) and optimizer state (passes/pack-state.ts), so this is
 * the memory a build storing every role packed would allocate.
 */
export function packedBytes(g: Graph, id: number): number {
  const nd = g.nodes[id];
  if (nd.op === 'state' && nd.attrs.packed) return valueBytes(g, id); // already packed (passes/pack-state.ts)
  const upd = nd.op === 'state' ? g.updates.find((u) => u.name === nd.attrs.name) : undefined;
  const fmt = (upd ? g.nodes[upd.node] : nd).type.fmt;
  if (fmt.kind === 'mx') return mxPackedBytes(fmt, nd.type.shape); // codes and one scale byte per block
  return Math.ceil((numel(nd.type.shape) * formatBits(fmt)) / 32) * 4;
}

function stateClass(kind: unknown): MemClass {
  // BN running statistics ('buffer') are model state saved with the weights, like PyTorch's state_dict buffers.
  return kind === 'optim' ? 'optimizer' : 'weights';
}

/**
 * Saved activations and weight gradients, from the graph's structure (the IR carries no forward/backward marks):
 * forward = ancestors of the graph outputs; backward = descendants of a `fill` outside the forward (the loss seed,
 * zero gradients). Saved = a forward value a backward node reads. A weight gradient of parameter p = the first
 * backward value, along the chain that only p's update needs, with p's element count (the optimizer's input).
 * With saved-activation compression the saved values are the packed words (compress ops count as forward,
 * decompress ops as backward), so the f32 originals are forward-only values.
 */
export function classifyValues(g: Graph, root: number[]): { saved: Set<number>; gradients: Set<number> } {
  const n = g.nodes.length;
  const fwd = outputAncestors(g);
  // Compressed saved forms (passes/compress.ts) are stored in forward and restored in backward.
  for (const nd of g.nodes) if (COMPRESS_OPS.has(nd.op) && nd.inputs.every((i) => fwd[i])) fwd[nd.id] = true;
  const bwd = new Array<boolean>(n).fill(false);
  for (const nd of g.nodes)
    bwd[nd.id] = !fwd[nd.id] && (nd.op === 'fill' || DECOMPRESS_OPS.has(nd.op) || nd.inputs.some((i) => bwd[i]));
  const saved = new Set<number>();
  for (const nd of g.nodes) {
    if (!bwd[nd.id]) continue;
    for (const i of nd.inputs) {
      const r = root[i];
      if (fwd[r] && g.nodes[r].op !== 'state') saved.add(r);
    }
  }
  // Which parameters' updates (their own or their optimizer state's) each backward node feeds.
  const params = g.nodes.filter((nd) => nd.op === 'state' && nd.attrs.kind === 'param').map((nd) => attrsOf(nd, 'state').name);
  const groupOf = (state: string) => params.find((p) => state === p || state.startsWith(p + '.'));
  const reach: Set<string>[] = g.nodes.map(() => new Set());
  for (const u of g.updates) { const p = groupOf(u.name); if (p) reach[u.node].add(p); }
  for (let id = n - 1; id >= 0; id--) for (const i of g.nodes[id].inputs) for (const p of reach[id]) reach[i].add(p);
  // (the declared shape: a packed state's value is its words, passes/pack-state.ts)
  const paramNumel = new Map(g.nodes.filter((nd) => nd.op === 'state').map((nd) => [attrsOf(nd, 'state').name, numel(attrsOf(nd, 'state').shape)]));
  const own = (id: number): string | undefined => {
    if (!bwd[id] || reach[id].size !== 1) return undefined;
    const p = [...reach[id]][0];
    return numel(g.nodes[id].type.shape) === paramNumel.get(p) ? p : undefined;
  };
  const gradients = new Set<number>();
  for (const nd of g.nodes) {
    if (nd.op === 'reshape' || nd.op === 'state') continue;
    const p = own(nd.id);
    if (p && !nd.inputs.some((i) => own(i) === p)) gradients.add(nd.id);
  }
  return { saved, gradients };
}

export function planGraphMemory(g: Graph, o: PlanOptions = {}): GraphMemoryPlan {
  const align = o.align ?? align16;
  const valueBytes = (gr: Graph, id: number) => (o.bytes ?? defaultBytes)(gr, id);
  const kernels = o.kernels ?? ((id: number): NodeKernels => ({ dispatches: NO_KERNEL.has(g.nodes[id].op) ? 0 : 1, scratch: [] }));
  const n = g.nodes.length;
  const root = g.nodes.map((nd) => nd.id);
  for (const nd of g.nodes) if (nd.op === 'reshape') root[nd.id] = root[nd.inputs[0]];
  for (const [id, v] of o.views ?? []) root[id] = v.root;
  const placed = (id: number) => root[id] !== id && g.nodes[id].op !== 'reshape';

  // Positions of each computing node.
  const first = new Array<number>(n).fill(-1), last = new Array<number>(n).fill(-1);
  const info: NodeKernels[] = [];
  let pos = 0;
  for (const nd of g.nodes) {
    info[nd.id] = kernels(nd.id);
    if (nd.op === 'input' || nd.op === 'state' || nd.op === 'reshape') continue;
    first[nd.id] = pos;
    pos += Math.max(1, info[nd.id].dispatches);
    last[nd.id] = pos - 1;
  }
  const D = pos;

  // Lifetimes of roots: from definition (uploads before the pass) to last use; outputs and update sources to D.
  const start = new Array<number>(n).fill(0), end = new Array<number>(n).fill(0);
  for (const nd of g.nodes) { start[nd.id] = nd.op === 'input' ? -1 : first[nd.id]; end[nd.id] = start[nd.id]; }
  const use = (id: number, at: number) => { const r = root[id]; end[r] = Math.max(end[r], at); };
  for (const nd of g.nodes) {
    if (nd.op === 'reshape') continue;
    for (const i of nd.inputs) use(i, last[nd.id]);
    for (const i of info[nd.id].binds ?? []) if (i !== nd.id) use(i, last[nd.id]);
  }
  for (const x of [...g.outputs, ...g.updates]) use(x.node, D);
  // A root's buffer is live from the first write into any of its ranges.
  for (const nd of g.nodes) if (placed(nd.id)) start[root[nd.id]] = Math.min(start[root[nd.id]], start[nd.id]);

  const { saved, gradients } = classifyValues(g, root);
  const buffers: PlannedBuffer[] = [];
  const state: StateBuffer[] = [];
  for (const nd of g.nodes) {
    if (nd.op === 'state') {
      const bytes = valueBytes(g, nd.id);
      state.push({ name: attrsOf(nd, 'state').name, bytes, aligned: align(bytes), class: stateClass(nd.attrs.kind) });
      continue;
    }
    if (nd.op === 'reshape') continue;
    const bytes = placed(nd.id) ? 0 : valueBytes(g, nd.id);
    const cls: MemClass = gradients.has(nd.id) ? 'gradients' : saved.has(nd.id) ? 'saved_activations' : 'workspace';
    if (!placed(nd.id)) buffers.push({ node: nd.id, bytes, aligned: align(bytes), start: start[nd.id], end: end[nd.id], class: cls, slot: -1 });
    const scratch = new Map<number, { bytes: number; cleared: boolean }>();
    for (const s of info[nd.id].scratch) {
      const prev = scratch.get(s.index);
      scratch.set(s.index, { bytes: Math.max(prev?.bytes ?? 0, s.bytes), cleared: !!prev?.cleared || s.cleared });
    }
    for (const [index, s] of [...scratch].sort((a, b) => a[0] - b[0]))
      buffers.push({ node: nd.id, scratch: index, bytes: s.bytes, aligned: align(s.bytes), start: s.cleared ? -1 : first[nd.id], end: last[nd.id], class: 'workspace', slot: -1 });
  }

  const slots = assignSlots(buffers);

  // Live bytes per position, by class (logical bytes: what the values hold, not the rounding).
  const stateBytes = zeroClasses();
  for (const s of state) stateBytes[s.class] += s.bytes;
  const classes = { ...stateBytes };
  let live_peak_bytes = -1, at_peak = zeroClasses();
  for (let t = -1; t <= D; t++) {
    const live = { ...stateBytes };
    for (const b of buffers) if (b.start <= t && t <= b.end) live[b.class] += b.bytes;
    const total = MEM_CLASSES.reduce((s, c) => s + live[c], 0);
    for (const c of MEM_CLASSES) classes[c] = Math.max(classes[c], live[c]);
    if (total > live_peak_bytes) { live_peak_bytes = total; at_peak = live; }
  }
  const peak_bytes = state.reduce((s, b) => s + b.aligned, 0) + slots.reduce((s, b) => s + b, 0);
  return { graph: g.name, positions: D, state, buffers, slots, root, classes, live_peak_bytes, at_peak, peak_bytes };
}

/**
 * Greedy by size: largest buffer first, each into the smallest slot whose buffers' lifetimes are all disjoint from
 * its own (every slot is already at least as large), else a new slot. Slots come out largest first.
 */
function assignSlots(buffers: PlannedBuffer[]): number[] {
  const order = [...buffers].sort((a, b) => b.aligned - a.aligned || a.start - b.start || a.node - b.node || (a.scratch ?? -1) - (b.scratch ?? -1));
  const slots: { bytes: number; members: PlannedBuffer[] }[] = [];
  for (const b of order) {
    let best = -1;
    for (let s = 0; s < slots.length; s++) {
      if (slots[s].members.some((m) => m.start <= b.end && b.start <= m.end)) continue;
      if (best < 0 || slots[s].bytes < slots[best].bytes) best = s;
    }
    if (best < 0) { best = slots.length; slots.push({ bytes: b.aligned, members: [] }); }
    slots[best].members.push(b);
    b.slot = best;
  }
  return slots.map((s) => s.bytes);
}

/** Plans every graph; graphs never run at once, so they share slots by index (sizes: the largest). */
export function planModuleMemory(m: Module, kernels?: (g: Graph) => (nodeId: number) => NodeKernels, align?: (b: number) => number, bytes?: PlanOptions['bytes'], views?: (g: Graph) => ViewMap | undefined): ModuleMemoryPlan {
  const graphs = m.graphs.map((g) => planGraphMemory(g, { kernels: kernels?.(g), align, bytes, views: views?.(g) }));
  const pool: number[] = [];
  for (const p of graphs) p.slots.forEach((b, i) => { pool[i] = Math.max(pool[i] ?? 0, b); });
  const state = new Map<string, StateBuffer>();
  for (const p of graphs) for (const s of p.state) state.set(s.name, s);
  const stateBytes = [...state.values()].reduce((s, b) => s + b.aligned, 0);
  const allocated_bytes = stateBytes + pool.reduce((s, b) => s + b, 0);
  const unshared_bytes = stateBytes + graphs.reduce((s, p) => s + p.buffers.reduce((t, b) => t + b.aligned, 0), 0);
  return { graphs, state: [...state.values()], pool, allocated_bytes, unshared_bytes };
}

/** The plan as plan.json and `lpc mem --json` carry it: per-graph figures by class, slots, and every buffer. */
export function memoryPlanJson(p: ModuleMemoryPlan, detail = true) {
  const sum = (c: MemClass, s: StateBuffer[]) => s.filter((x) => x.class === c).reduce((t, x) => t + x.bytes, 0);
  return {
    weights_bytes: sum('weights', p.state),
    optimizer_bytes: sum('optimizer', p.state),
    allocated_bytes: p.allocated_bytes,
    unshared_bytes: p.unshared_bytes,
    pool: p.pool,
    graphs: p.graphs.map((g) => ({
      name: g.graph,
      weights_bytes: g.classes.weights,
      gradients_bytes: g.classes.gradients,
      optimizer_bytes: g.classes.optimizer,
      saved_activations_bytes: g.classes.saved_activations,
      workspace_bytes: g.classes.workspace,
      peak_bytes: g.peak_bytes,
      live_peak_bytes: g.live_peak_bytes,
      at_peak: g.at_peak,
      slots: g.slots,
      ...(detail ? { buffers: g.buffers.map((b) => ({ node: b.node, ...(b.scratch !== undefined ? { scratch: b.scratch } : {}), bytes: b.bytes, class: b.class, live: [b.start, b.end], slot: b.slot })) } : {}),
    })),
  };
}
