/**
 * A small toolkit for graph rewrites. `rebuild` copies a graph node by node while a pass inserts nodes (quantizers,
 * compression, recomputation: passes/quantize.ts, passes/compress.ts). `Rewrite`, for the fusion rules of
 * passes/fuse.ts, is a working copy of a graph's nodes that a
 * rule edits in place, use counts, replacing every use of a value by another (which erases the old node), and
 * `finish`, which drops the erased nodes, renumbers the rest 0..n−1 in order and re-infers every type.
 *
 * Erasing is lazy: an erased node stays in `nodes` (its id keeps indexing it) until `finish`, and its users read
 * its replacement once they are resolved (`resolveInputs`, or at `finish`). Node ids stay in topological order, so a
 * rule may compare them to ask whether a value exists at a place (`a < b`: a is computed before b).
 */
import { Builder, Graph, Node } from './graph.js';
import { getOp } from './ops/index.js';
import { copyEpilogue, normalEpilogue } from './epilogue.js';

export class Rewrite {
  /** Copies of the graph's nodes (attributes, inputs and epilogues too): edit them freely. */
  readonly nodes: Node[];
  /** erased id → the node that replaces it (an earlier one; it may itself be erased later). */
  private readonly into = new Map<number, number>();

  constructor(readonly graph: Graph) {
    this.nodes = graph.nodes.map((n) => {
      const c: Node = { ...n, attrs: { ...n.attrs }, inputs: [...n.inputs] };
      if (n.epi) c.epi = copyEpilogue(n.epi);
      return c;
    });
  }

  isErased(id: number): boolean { return this.into.has(id); }

  /** The live node that stands for `id` (itself unless erased). */
  resolve(id: number): number {
    while (this.into.has(id)) id = this.into.get(id)!;
    return id;
  }

  /** Points node `n`'s inputs at the live nodes that stand for them; returns `n`. */
  resolveInputs(n: Node): Node {
    n.inputs = n.inputs.map((i) => this.resolve(i));
    return n;
  }

  /** Nodes not erased, in order. */
  live(): Node[] { return this.nodes.filter((n) => !this.into.has(n.id)); }

  /** The graph's outputs and state updates, each at the live node that stands for it. */
  results(): { outputs: Graph['outputs']; updates: Graph['updates'] } {
    return {
      outputs: this.graph.outputs.map((o) => ({ ...o, node: this.resolve(o.node) })),
      updates: this.graph.updates.map((u) => ({ ...u, node: this.resolve(u.node) })),
    };
  }

  /**
   * Uses of each value (by id): every input slot of a live node (resolved), graph output and state update. A count
   * array a rule may keep up to date itself as it rewrites.
   */
  uses(): number[] {
    const uses = new Array<number>(this.nodes.length).fill(0);
    for (const n of this.live()) for (const i of n.inputs) uses[this.resolve(i)]++;
    const { outputs, updates } = this.results();
    for (const r of [...outputs, ...updates]) uses[r.node]++;
    return uses;
  }

  /** Live nodes that read `id` (resolved), each once. */
  users(id: number): Node[] {
    return this.live().filter((n) => n.inputs.some((i) => this.resolve(i) === id));
  }

  /** Erases node `from`: its users, outputs and updates read `to` (an earlier node) instead. */
  replaceAllUses(from: number, to: number): void {
    if (this.resolve(to) === from) throw new Error(`replaceAllUses: %${from} cannot replace itself`);
    this.into.set(from, to);
  }

  /**
   * The rewritten graph: erased nodes dropped, ids renumbered 0..n−1 in order, inputs, outputs and updates at their
   * replacements, types re-inferred in order (formats and post-ops change them; sources keep theirs).
   */
  finish(): Graph {
    const remap = new Map<number, number>();
    const out: Node[] = [];
    for (const n of this.nodes) {
      if (this.into.has(n.id)) continue;
      const id = out.length;
      remap.set(n.id, id);
      const inputs = n.inputs.map((i) => remap.get(this.resolve(i))!);
      const epi = normalEpilogue(n.epi);
      const type = n.op === 'input' || n.op === 'state' ? n.type : getOp(n.op).infer(inputs.map((i) => out[i].type), n.attrs, epi);
      const { epi: _e, ...rest } = n;
      out.push({ ...rest, id, inputs, type, ...(epi ? { epi } : {}) });
    }
    const at = (id: number) => remap.get(this.resolve(id))!;
    const g = this.graph;
    return {
      name: g.name, nodes: out,
      outputs: g.outputs.map((o) => ({ ...o, node: at(o.node) })),
      updates: g.updates.map((u) => ({ ...u, node: at(u.node) })),
    };
  }
}

/**
 * A graph rebuilt node by node, for rewrites that insert nodes (quantizers, compression, recomputation): `visit` gets
 * each node with its inputs already mapped into the new graph, the new graph's builder and the map so far, and returns
 * the id that stands for the node from now on (the copy it adds, or a node it adds after the copy). Outputs follow the
 * map; state updates follow it too, after any the visitor added (b.graph.updates).
 */
export function rebuild(g: Graph, visit: (n: Node, inputs: number[], b: Builder, remap: readonly number[]) => number): Graph {
  const out: Graph = { name: g.name, nodes: [], outputs: [], updates: [] };
  const b = new Builder(out);
  const remap: number[] = [];
  for (const n of g.nodes) remap[n.id] = visit(n, n.inputs.map((i) => remap[i]), b, remap);
  out.outputs = g.outputs.map((o) => ({ name: o.name, node: remap[o.node] }));
  out.updates.push(...g.updates.map((u) => ({ name: u.name, node: remap[u.node] })));
  return out;
}

/** The plain copy of a node in a rebuild (same op, attributes, epilogue and place). */
export const copyNode = (n: Node, inputs: number[], b: Builder): number => b.add(n.op, inputs, n.attrs, n.loc, n.epi);
