/**
 * The CPU reference interpreter: runs any graph through the op table's CPU semantics.
 * `f32` mode stores every value as float32 (what the GPU stores), `f64` mode keeps float64 throughout
 * (the independent reference for gradient checks).
 */
import { Graph } from '../../ir/graph.js';
import { Arr, getOp } from '../../ir/ops.js';
import { numel } from '../../ir/types.js';
import type { StepBits } from '../../ir/quant/rng.js';

export type Precision = 'f32' | 'f64';
export type Feeds = Record<string, ArrayLike<number>>;

export interface RunResult {
  /** Every node's value (by id). */
  values: Arr[];
  outputs: Record<string, Arr>;
  /** New values of the updated state, by state name. */
  updates: Map<string, Arr>;
}

export function runGraph(g: Graph, feeds: Feeds, state: Map<string, ArrayLike<number>>,
  opts: { precision?: Precision; seed?: number; step?: number; bits?: StepBits } = {}): RunResult {
  const alloc = (n: number): Arr => (opts.precision === 'f64' ? new Float64Array(n) : new Float32Array(n));
  const values: Arr[] = [];
  for (const n of g.nodes) {
    const size = numel(n.type.shape);
    let v: Arr;
    if (n.op === 'input' || n.op === 'state') {
      const name = n.attrs.name as string;
      const src = n.op === 'input' ? feeds[name] : state.get(name);
      if (!src) throw new Error(`no value for ${n.op} '${name}'`);
      if (src.length !== size) throw new Error(`${n.op} '${name}' expects ${size} values, got ${src.length}`);
      v = alloc(size);
      v.set(src as ArrayLike<number>);
    } else if (n.op === 'reshape') {
      v = values[n.inputs[0]];
    } else {
      v = alloc(size);
      getOp(n.op).cpu(n.inputs.map((i) => values[i]), v, {
        attrs: n.attrs, inTypes: n.inputs.map((i) => g.nodes[i].type), type: n.type,
        rng: { seed: opts.seed ?? 0, step: opts.step ?? 0, tensorId: n.id, ...(opts.bits ? { bits: opts.bits } : {}) },
      });
    }
    values.push(v);
  }
  const outputs: Record<string, Arr> = {};
  for (const o of g.outputs) outputs[o.name] = values[o.node];
  const updates = new Map<string, Arr>();
  for (const u of g.updates) updates.set(u.name, values[u.node]);
  return { values, outputs, updates };
}
