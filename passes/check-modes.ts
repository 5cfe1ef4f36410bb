/**
 * Train and eval describe one model. The front end runs the model's build function once per graph, so code that
 * differs between the runs (a counter in module state, Math.random() outside the sandbox, keys that change) could make
 * the evaluation graph compute another network than the one trained. This pass, first in the pipeline, checks that
 * `eval` is `train`'s forward part with only the documented mode differences:
 *  - dropout is in `train` only (the identity in evaluation);
 *  - batch norm: `train` has bn_stats and bn_running_update, and its bn_apply reads the batch statistics with
 *    training=true; `eval`'s bn_apply reads the running statistics (a buffer) with training=false.
 * Everything else — the parameters, the ops in order, their attributes, shapes and inputs, the outputs — must agree.
 */
import { Graph, Module, Node } from '../ir/graph.js';

const TRAIN_ONLY = new Set(['bn_stats', 'bn_running_update']);

const at = (n: Node | undefined) => (n?.loc ? ` at ${n.loc.file}:${n.loc.line}:${n.loc.col}` : '');
const show = (n: Node | undefined) => (n ? `%${n.id} = ${n.op} [${n.type.shape.join(', ')}]${at(n)}` : 'nothing');
/** An attribute's value with object keys sorted (a format is an object). */
const attrText = (v: unknown): string => JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x));

export class ModeMismatchError extends Error {
  constructor(model: string, t: Node | undefined, e: Node | undefined, why: string) {
    super(`model '${model}': its eval graph is not its train graph's forward part (${why}): train has ${show(t)}, eval has ${show(e)}; ` +
      'the build function must build the same network on every call (no counters, randomness or tensors kept between calls)');
    this.name = 'ModeMismatchError';
  }
}

/** Why node e (eval) is not node t (train) with inputs mapped by `map`, or undefined when it is. */
function difference(t: Node, e: Node, map: Map<number, number>, train: Graph, evalG: Graph): string | undefined {
  if (t.op !== e.op) return 'another op';
  if (t.type.shape.join('x') !== e.type.shape.join('x') || t.type.dtype !== e.type.dtype) return 'another shape';
  const bn = t.op === 'bn_apply';
  const keys = new Set([...Object.keys(t.attrs), ...Object.keys(e.attrs)]);
  for (const k of keys) {
    if (bn && k === 'training') continue;
    if (attrText(t.attrs[k]) !== attrText(e.attrs[k])) return `another ${k}`;
  }
  if (t.inputs.length !== e.inputs.length) return 'another number of inputs';
  for (let k = 0; k < t.inputs.length; k++) {
    if (bn && k === 1) {
      // train: the batch statistics of this bn's input; eval: a running-statistics buffer
      const stats = train.nodes[t.inputs[1]], running = evalG.nodes[e.inputs[1]];
      if (stats.op !== 'bn_stats' || map.get(stats.inputs[0]) !== e.inputs[0] || running.op !== 'state' || running.attrs.kind !== 'buffer')
        return 'other batch-norm statistics';
      continue;
    }
    if (map.get(t.inputs[k]) !== e.inputs[k]) return `another input ${k}`;
  }
  return undefined;
}

/** Throws ModeMismatchError at the first node where `eval` departs from `train`'s forward part. */
export function checkModes(m: Module): void {
  const train = m.graphs.find((g) => g.name === 'train'), evalG = m.graphs.find((g) => g.name === 'eval');
  if (!train || !evalG) return;
  const map = new Map<number, number>();
  let j = 0;
  for (const t of train.nodes) {
    if (t.op === 'dropout') { map.set(t.id, map.get(t.inputs[0])!); continue; }
    if (TRAIN_ONLY.has(t.op)) continue;
    const e = evalG.nodes[j++];
    const why = e ? difference(t, e, map, train, evalG) : 'eval ends early';
    if (why) throw new ModeMismatchError(m.name, t, e, why);
    map.set(t.id, e.id);
  }
  if (j < evalG.nodes.length) throw new ModeMismatchError(m.name, undefined, evalG.nodes[j], 'eval has more nodes');
  const outs = (g: Graph) => g.outputs.map((o) => o.name).join(',');
  if (outs(train) !== outs(evalG)) throw new ModeMismatchError(m.name, undefined, undefined, `outputs ${outs(train)} vs ${outs(evalG)}`);
  for (const o of train.outputs) {
    const e = evalG.outputs.find((x) => x.name === o.name)!;
    if (map.get(o.node) !== e.node) throw new ModeMismatchError(m.name, train.nodes[o.node], evalG.nodes[e.node], `another '${o.name}' output`);
  }
}
