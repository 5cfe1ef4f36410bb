/**
 * Divergence and `lpc run --check-numerics`. A run diverges when a training step's loss, an evaluation loss or (with
 * the flag) the state a step leaves is NaN or ±Inf; it then stops with a DivergenceError (exit 1). With the flag the
 * step that first made a non-finite value is rerun on the CPU reference interpreter from the state it started from,
 * with the same inputs and random key (stochastic rounding draws the same bits: the key is (seed, step, node id)),
 * node by node, and the error names the first node whose value holds a NaN or Inf: its op, id, role, graph and the
 * model's file:line:col.
 */
import type { Graph, Node, Module } from '../../ir/graph.js';
import { getGraph } from '../../ir/graph.js';
import { locToString } from '../../ir/types.js';
import { runGraph, Feeds } from '../cpu/interpreter.js';
import type { Feed, StepInfo } from '../backend.js';

export class DivergenceError extends Error {
  /** `checked`: the message already holds --check-numerics' report. */
  constructor(message: string, readonly checked: boolean) { super(message); this.name = 'DivergenceError'; }
}

export interface NonFinite { graph: Graph; node: Node; index: number; value: number }

/** The first node of `g` (in execution order) whose value holds a non-finite element, on the CPU interpreter. */
export function firstNonFinite(g: Graph, feeds: Feeds, state: Map<string, ArrayLike<number>>, step: StepInfo): NonFinite | undefined {
  let found: NonFinite | undefined;
  runGraph(g, feeds, state, {
    precision: 'f32', seed: step.seed, step: step.step, bits: step.bits,
    stopAfter: (node, v) => {
      for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) { found = { graph: g, node, index: i, value: v[i] }; return true; }
      return false;
    },
  });
  return found;
}

/** `%12 = linear (role A; reads fc.weight, fc.bias) in graph train at model.ts:7:10` */
export function describeNode(g: Graph, n: Node): string {
  const role = n.attrs.role ?? n.epi?.q?.role;
  const name = n.attrs.name !== undefined ? ` '${String(n.attrs.name)}'` : '';
  const params = n.inputs.map((i) => g.nodes[i]).filter((p) => p.op === 'state').map((p) => String(p.attrs.name));
  const notes = [...(role !== undefined ? [`role ${String(role)}`] : []), ...(params.length ? [`reads ${params.join(', ')}`] : [])];
  return `%${n.id} = ${n.op}${name}${notes.length ? ` (${notes.join('; ')})` : ''} in graph ${g.name}` + (n.loc ? ` at ${locToString(n.loc)}` : '');
}

export function describeNonFinite(nf: NonFinite): string {
  const where = nf.node.op === 'state' ? ' (the state the step started from)' : nf.node.op === 'input' ? ' (an input fed to the step)' : '';
  return `first non-finite value: ${nf.value} at element ${nf.index} of ${describeNode(nf.graph, nf.node)}${where}`;
}

/** The first state tensor holding a non-finite value: [name, index, value]. */
export function nonFiniteState(state: Map<string, Float32Array>): [string, number, number] | undefined {
  for (const [name, v] of state) for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return [name, i, v[i]];
  return undefined;
}

/** A step to rerun: graph, inputs (copied: the loop reuses its buffers), the state before it, its random key. */
export interface StepRecord { graph: string; feeds: Record<string, Feed>; state: Map<string, Float32Array>; info: StepInfo; what: string }

export function stepRecord(graph: string, feeds: Record<string, Feed>, state: Map<string, Float32Array>, info: StepInfo, what: string): StepRecord {
  const copy = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.slice()]));
  return { graph, feeds: copy, state, info: { ...info }, what };
}

/** `observed` (what went wrong), then the CPU rerun's first non-finite node of step `r`. */
export function diagnose(m: Module, r: StepRecord, observed: string): DivergenceError {
  const nf = firstNonFinite(getGraph(m, r.graph), r.feeds, r.state, r.info);
  const report = nf ? describeNonFinite(nf)
    : `the CPU reference interpreter reruns ${r.what} without a non-finite value, so it comes from the backend's kernels (not from the model's numerics)`;
  return new DivergenceError(`${observed}; --check-numerics, ${r.what}: ${report}`, true);
}

/** An evaluation with a non-finite loss: the first batch of `batches` whose CPU rerun makes a non-finite value. */
export function diagnoseEval(m: Module, graph: string, batches: Feeds[], state: Map<string, Float32Array>, info: StepInfo, observed: string): DivergenceError {
  const g = getGraph(m, graph);
  for (let k = 0; k < batches.length; k++) {
    const nf = firstNonFinite(g, batches[k], state, info);
    if (nf) return new DivergenceError(`${observed}; --check-numerics, test batch ${k + 1} of ${batches.length} through graph ${graph}: ${describeNonFinite(nf)}`, true);
  }
  return new DivergenceError(`${observed}; --check-numerics: the CPU reference interpreter runs every test batch through graph ${graph} without a non-finite value, so it comes from the backend's kernels`, true);
}

/** The hint a diverged run without --check-numerics ends with. */
export const CHECK_NUMERICS_HINT = 'rerun with --check-numerics to find the first op (and model line) that made a non-finite value';
