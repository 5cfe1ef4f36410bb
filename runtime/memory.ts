/**
 * The memory planner fed with codegen's facts (dispatches and scratch per node), as the executor, the artifact's
 * plan.json and `lpc mem` all need it: one place, so the three always agree.
 */
import { Graph, Module } from '../ir/graph.js';
import { Kernel } from '../codegen/kernel.js';
import { Variant, kernelsForNode } from '../codegen/kernels/index.js';
import { TilePicker } from '../codegen/kernels/tiles.js';
import { ModuleMemoryPlan, NodeKernels, align16, planModuleMemory } from '../passes/memory.js';

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

/**
 * Kernels of every node of every graph, by graph name. `tiles` picks the GEMM tilings (the tune cache at run
 * time); without it every node gets the default tile, as plan.json assumes. Scratch sizes depend on the tile (the
 * weight gradient's split), so a plan is only valid for the kernels it was made from.
 */
export function moduleKernels(m: Module, variant: Variant, tiles?: TilePicker): Map<string, Kernel[][]> {
  return new Map(m.graphs.map((g) => [g.name, g.nodes.map((n) => kernelsForNode(g, n.id, { variant, tiles }))]));
}

/** The executor's plan: `kernels` lets a caller that already generated them avoid doing it twice. */
export function planModule(m: Module, variant: Variant, kernels = moduleKernels(m, variant)): ModuleMemoryPlan {
  return planModuleMemory(m, (g) => (id) => nodeKernels(g, id, kernels.get(g.name)![id]), align16);
}
