import { Format } from './format.js';
import { Loc, LocatedError, TensorType } from './types.js';
import { getOp } from './ops/index.js';
import { Epilogue, normalEpilogue, postArgs } from './epilogue.js';
import { attrsOf } from './op-registry.js';

export type AttrValue = number | string | boolean | number[] | Format;
export type Attrs = Record<string, AttrValue>;

/** One SSA value: `%id = op(inputs) {attrs} : type loc(...)`. Node ids are indices into `Graph.nodes`. */
export interface Node {
  id: number;
  op: string;
  inputs: number[];
  attrs: Attrs;
  type: TensorType;
  loc?: Loc;
  /** What the node's kernel applies to its result before storing it (ir/epilogue.ts); absent: nothing. */
  epi?: Epilogue;
}

/** A named computation (`train`, `eval`): nodes in topological order, named outputs, and state updates. */
export interface Graph {
  name: string;
  nodes: Node[];
  outputs: { name: string; node: number }[];
  /** After the graph runs, state `name` takes the value of `node`. */
  updates: { name: string; node: number }[];
}

export interface Module {
  version: 1;
  name: string;
  graphs: Graph[];
}

export const IR_VERSION = 1;

export function getGraph(m: Module, name: string): Graph {
  const g = m.graphs.find((x) => x.name === name);
  if (!g) throw new Error(`module '${m.name}' has no graph '${name}'`);
  return g;
}

/** Appends nodes to a graph, inferring each result type through the op table (so shape errors carry the loc). */
export class Builder {
  constructor(public readonly graph: Graph) {}

  add(op: string, inputs: number[], attrs: Attrs = {}, loc?: Loc, epilogue?: Epilogue): number {
    const def = getOp(op);
    const inTypes = inputs.map((i) => this.graph.nodes[i].type);
    const arity = def.arity;
    const [lo, hi] = typeof arity === 'number' ? [arity, arity] : arity;
    const epi = normalEpilogue(epilogue);
    const own = inputs.length - postArgs(epi); // post-op operands come on top
    if (own < lo || own > hi)
      throw new LocatedError(loc, `${op} expects ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${own}`);
    let type: TensorType;
    try {
      type = def.infer(inTypes, attrs, epi);
    } catch (e) {
      if (e instanceof LocatedError) throw e;
      throw new LocatedError(loc, (e as Error).message);
    }
    const node: Node = { id: this.graph.nodes.length, op, inputs: [...inputs], attrs, type, loc, ...(epi ? { epi } : {}) };
    this.graph.nodes.push(node);
    return node.id;
  }

  type(id: number): TensorType {
    return this.graph.nodes[id].type;
  }
}

export function emptyGraph(name: string): Graph {
  return { name, nodes: [], outputs: [], updates: [] };
}

/** Users of each node (by id). */
/** Marks the graph outputs and everything they depend on (the forward part of a training graph). */
export function outputAncestors(g: Graph): boolean[] {
  const marked = new Array<boolean>(g.nodes.length).fill(false);
  const stack = g.outputs.map((o) => o.node);
  while (stack.length) {
    const id = stack.pop()!;
    if (marked[id]) continue;
    marked[id] = true;
    stack.push(...g.nodes[id].inputs);
  }
  return marked;
}

export function users(g: Graph): number[][] {
  const u: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of n.inputs) u[i].push(n.id);
  return u;
}

/** The state nodes of a graph, by state name. */
export function stateNodes(g: Graph): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of g.nodes) if (n.op === 'state') m.set(attrsOf(n, 'state').name, n);
  return m;
}

/** Removes nodes that no output or update needs, renumbering the rest (keeps topological order). */
export function dce(g: Graph): Graph {
  const live = new Set<number>();
  const stack = [...g.outputs.map((o) => o.node), ...g.updates.map((u) => u.node)];
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...g.nodes[id].inputs);
  }
  // Keep inputs so the runtime's feeds stay stable even if unused.
  for (const n of g.nodes) if (n.op === 'input') live.add(n.id);
  const remap = new Map<number, number>();
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!live.has(n.id)) continue;
    remap.set(n.id, nodes.length);
    nodes.push({ ...n, id: nodes.length, inputs: n.inputs.map((i) => remap.get(i)!) });
  }
  return {
    name: g.name,
    nodes,
    outputs: g.outputs.map((o) => ({ name: o.name, node: remap.get(o.node)! })),
    updates: g.updates.map((u) => ({ name: u.name, node: remap.get(u.node)! })),
  };
}
