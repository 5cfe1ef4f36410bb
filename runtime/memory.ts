/**
 * The memory planner fed with codegen's facts (dispatches and scratch per node), as the executor, the artifact's
 * plan.json and `lpc mem` all need it: one place, so the three always agree. Here too the concat views are decided
 * (passes/channel-views.ts: which values live as ranges of a concatenation's buffer), from the kernels' own
 * bindings, and the kernels touching them rewritten to address the views (codegen/views.ts).
 */
import { Graph, Module } from '../ir/graph.js';
import { Kernel } from '../codegen/kernel.js';
import { Variant, kernelsForNode } from '../codegen/kernels/index.js';
import { TilePicker } from '../codegen/kernels/tiles.js';
import { canAddressView, canMergeOperand, mergeOperand, viewKernel } from '../codegen/views.js';
import { ModuleMemoryPlan, NodeKernels, align16, planModuleMemory } from '../passes/memory.js';
import { ViewIndex, ViewMap, concatViews, placedInputs, readsInPlace, viewIndex } from '../passes/channel-views.js';
import { axisSplit } from '../ir/ops/index.js';

/** Kernels of every node of every graph, by graph name, and the views they address (absent: none). */
export type ModuleKernels = Map<string, Kernel[][]> & { views?: Map<string, ViewMap> };

export function nodeKernels(g: Graph, id: number, ks: Kernel[]): NodeKernels {
  const inputs = new Set(g.nodes[id].inputs);
  const binds = new Set<number>();
  const scratch: NodeKernels['scratch'] = [];
  for (const k of ks)
    for (const b of k.bindings) {
      if (b.ref.kind === 'scratch') scratch.push({ index: b.ref.index, bytes: b.ref.bytes, cleared: (k.clears ?? []).includes(b.ref.index) });
      else if (b.ref.id !== id && !inputs.has(b.ref.id)) binds.add(b.ref.id);
    }
  return { dispatches: ks.length, scratch, ...(binds.size ? { binds: [...binds] } : {}) };
}

export interface KernelOptions {
  /** Place concatenations' inputs in their buffers (default true; false: every concat copies, for comparisons). */
  concatViews?: boolean;
}

/**
 * Kernels of every node of every graph, by graph name. `tiles` picks the GEMM tilings (the tune cache at run
 * time); without it every node gets the default tile, as plan.json assumes. Scratch sizes depend on the tile (the
 * weight gradient's split), so a plan is only valid for the kernels it was made from.
 */
export function moduleKernels(m: Module, variant: Variant, tiles?: TilePicker, o: KernelOptions = {}): ModuleKernels {
  const ks = new Map(m.graphs.map((g) => [g.name, g.nodes.map((n) => kernelsForNode(g, n.id, { variant, tiles }))]));
  return o.concatViews === false ? ks : withViews(m, ks);
}

/** The kernels with the concat views decided and applied (kernels made without views). */
export function withViews(m: Module, kernels: Map<string, Kernel[][]>): ModuleKernels {
  const out: ModuleKernels = new Map();
  out.views = new Map();
  for (const g of m.graphs) {
    const ks = kernels.get(g.name)!;
    const v = graphViews(g, ks);
    out.views.set(g.name, v);
    out.set(g.name, v.size ? applyViews(g, ks, v) : ks);
  }
  return out;
}

/** Which values are placed: every kernel binding one must be able to address it as a view. */
function graphViews(g: Graph, ks: Kernel[][]): ViewMap {
  const bound = new Map<number, [Kernel, number][]>();
  ks.forEach((list) => list.forEach((k) => k.bindings.forEach((b, i) => {
    if (b.ref.kind !== 'node') return;
    const l = bound.get(b.ref.id) ?? [];
    l.push([k, i]);
    bound.set(b.ref.id, l);
  })));
  return concatViews(g, {
    canPlace: (value, axis) => {
      const unit = axisSplit(g.nodes[value].type.shape, axis).inner;
      return (bound.get(value) ?? []).every(([k, i]) => canAddressView(k, i, unit));
    },
    kernels: (id) => ks[id].map((k) => k.bindings.flatMap((b) => (b.ref.kind === 'node' ? [{ node: b.ref.id, write: b.access === 'read_write' }] : []))),
    // one kernel of the node binds the operand, and it writes the node's output: that kernel reads it from there
    canAccumulate: (id, operand) => {
      const using = (bound.get(operand) ?? []).filter(([k]) => !ks[operand].includes(k)); // the slice's own kernel does not run
      if (using.length !== 1 || !ks[id].includes(using[0][0])) return false;
      const [k, i] = using[0], out = k.bindings.findIndex((b) => b.ref.kind === 'node' && b.ref.id === id && b.access === 'read_write');
      return out >= 0 && canMergeOperand(k, i, out);
    },
  });
}

function applyViews(g: Graph, ks: Kernel[][], views: ViewMap): Kernel[][] {
  const idx = new Map<number, ViewIndex>();
  for (const [id, v] of views) idx.set(id, viewIndex(g, id, v));
  return ks.map((list, id) => {
    if (readsInPlace(views, id)) return [];
    const skip = g.nodes[id].op === 'concat' ? placedInputs(g, views, id) : [];
    const merged = views.get(id)?.accumulates;
    return list.filter((_, j) => !skip[j]).map((k0) => {
      const i = k0.bindings.findIndex((b) => b.ref.kind === 'node' && b.ref.id === merged);
      const k = i < 0 ? k0 : mergeOperand(k0, i, k0.bindings.findIndex((b) => b.ref.kind === 'node' && b.ref.id === id && b.access === 'read_write'));
      const vs = new Map<number, ViewIndex>();
      k.bindings.forEach((b, i) => { if (b.ref.kind === 'node' && idx.has(b.ref.id)) vs.set(i, idx.get(b.ref.id)!); });
      return viewKernel(k, vs);
    });
  });
}

/** The executor's plan: `kernels` lets a caller that already generated them avoid doing it twice. */
export function planModule(m: Module, variant: Variant, kernels: ModuleKernels = moduleKernels(m, variant)): ModuleMemoryPlan {
  return planModuleMemory(m, (g) => (id) => nodeKernels(g, id, kernels.get(g.name)![id]), align16, undefined, (g) => kernels.views?.get(g.name));
}
