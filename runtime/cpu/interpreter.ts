/**
 * The CPU reference interpreter: runs any graph through the op table's CPU semantics.
 * `f32` mode stores every value as float32 (what the GPU stores), `f64` mode keeps float64 throughout
 * (the independent reference for gradient checks).
 */
import { Graph, Node } from '../../ir/graph.js';
import { Arr, getOp } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { stepInputValue } from '../../ir/step-inputs.js';
import type { StepBits } from '../../ir/quant/rng.js';
import { attrsOf } from '../../ir/op-registry.js';
import type { ViewMap } from '../../passes/channel-views.js';
import { PlacedMemory } from './placed.js';
import { PackedState, packValues } from '../packed-state.js';

export type Precision = 'f32' | 'f64';
export type Feeds = Record<string, ArrayLike<number>>;

export interface RunResult {
  /** Every node's value (by id). */
  values: Arr[];
  outputs: Record<string, Arr>;
  /** New values of the updated state, by state name. */
  updates: Map<string, Arr>;
}

export interface RunHooks {
  /** Every quantizer's input and output (a quantize node, a minmax_quantize, an epilogue quantizer), with its node. */
  onQuantize?: (node: Node, input: ArrayLike<number>, output: ArrayLike<number>, values: Arr[]) => void;
  /** Called with each node's value as it is computed; returning true stops the run there (values then ends at it). */
  stopAfter?: (node: Node, value: Arr) => boolean;
}

export function runGraph(g: Graph, feeds: Feeds, state: Map<string, ArrayLike<number>>,
  opts: { precision?: Precision; seed?: number; step?: number; bits?: StepBits; views?: ViewMap; storedState?: boolean } & RunHooks = {}): RunResult {
  const alloc = (n: number): Arr => (opts.precision === 'f64' ? new Float64Array(n) : new Float32Array(n));
  const values: Arr[] = [];
  // with `views`, placed values live in their roots' arrays (runtime/cpu/placed.ts)
  const mem = opts.views?.size ? new PlacedMemory(g, opts.views, alloc, (id) => values[id]) : undefined;
  const read = (i: number): Arr => (mem?.placed(i) ? mem.gather(i) : values[i]);
  for (const n of g.nodes) {
    const size = numel(n.type.shape);
    let v: Arr, joined: Arr | undefined;
    if (n.op === 'input' || n.op === 'state') {
      const name = attrsOf(n, 'input', 'state').name;
      const src = n.op === 'input' ? feeds[name] ?? stepInputValue(attrsOf(n, 'input'), opts.step ?? 0) : state.get(name);
      if (!src) throw new Error(`no value for ${n.op} '${name}'`);
      v = alloc(size);
      const packed = n.op === 'state' ? attrsOf(n, 'state') : undefined;
      if (packed?.packed) {
        // a packed state (passes/pack-state.ts): its f32 values (as getState gives them), packed here, or with
        // storedState its words as bit patterns (as CpuBackend holds them)
        const words = opts.storedState ? src : packValues({ fmt: packed.packed as PackedState['fmt'], shape: packed.shape }, src);
        if (words.length !== size) throw new Error(`state '${name}' expects ${size} packed words, got ${words.length}`);
        if (!(words instanceof Float32Array)) throw new Error(`state '${name}' is packed: give its words in a Float32Array (bit patterns)`);
        if (v instanceof Float32Array) v.set(words);
        else v.set(new Uint32Array(words.buffer, words.byteOffset, words.length)); // float64 values hold words as numbers
      } else {
        if (src.length !== size) throw new Error(`${n.op} '${name}' expects ${size} values, got ${src.length}`);
        v.set(src as ArrayLike<number>);
      }
    } else if (n.op === 'reshape') {
      v = values[n.inputs[0]];
    } else if (mem?.readsInPlace(n.id)) {
      v = mem.gather(n.id);
    } else if (n.op === 'concat' && (joined = mem?.concat(n.id, read))) {
      v = joined;
    } else {
      v = alloc(size);
      getOp(n.op).cpu(n.inputs.map(read), v, {
        attrs: n.attrs, inTypes: n.inputs.map((i) => g.nodes[i].type), type: n.type, epi: n.epi,
        rng: { seed: opts.seed ?? 0, step: opts.step ?? 0, tensorId: n.id, ...(opts.bits ? { bits: opts.bits } : {}) },
        ...(opts.onQuantize ? { onQuantize: (i: ArrayLike<number>, o: ArrayLike<number>) => opts.onQuantize!(n, i, o, values) } : {}),
      });
    }
    if (mem?.placed(n.id) && !mem.readsInPlace(n.id) && !joined) mem.scatter(n.id, v);
    values.push(v);
    if (opts.stopAfter?.(n, v)) break;
  }
  // what each placed value's range holds at the end (a range overwritten after its producer shows here too)
  if (mem) values.forEach((_, id) => { if (mem.placed(id)) values[id] = mem.gather(id); });
  const outputs: Record<string, Arr> = {};
  for (const o of g.outputs) if (o.node < values.length) outputs[o.name] = values[o.node];
  const updates = new Map<string, Arr>();
  for (const u of g.updates) if (u.node < values.length) updates.set(u.name, values[u.node]);
  return { values, outputs, updates };
}
