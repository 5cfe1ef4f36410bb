/**
 * Quantizer fusion: a `quantize` node is folded into the node that produces its input, which then quantizes its
 * result in place as an epilogue (ir/ops.ts: attributes `qfmt`/`qround`; the WGSL kernels fuse it into their final
 * store). That saves a kernel launch and a full read and write of the tensor per quantizer.
 *
 * A quantizer is fused when its producer computes (not input, state, reshape or quantize), has no epilogue yet, and
 * has no other use: no other node, graph output or state update may see the unquantized value. Quantizers to f32
 * are identities and are removed (their users read the input). Everything else is left as it is; node ids stay
 * 0..n-1 in topological order and every node keeps its `loc`.
 *
 * Stochastic rounding draws its bits with the producer's id as tensor id after fusion (the quantize node's before),
 * so a fused graph's random bits differ from the unfused graph's; both backends run the same fused graph.
 * Run it after autodiff: a folded quantizer no longer has a gradient rule of its own (the straight-through error
 * quantizer is placed by autodiff from the quantize node).
 */
import { Format } from '../ir/format.js';
import { Graph, Module, Node } from '../ir/graph.js';
import { getOp } from '../ir/ops.js';

const NO_EPILOGUE = new Set(['input', 'state', 'reshape', 'quantize']);

export interface FusionStats {
  /** quantize nodes folded into their producer */
  fused: number;
  /** f32 quantize nodes removed */
  identities: number;
  /** quantize nodes left as they are */
  kept: number;
}

export function fuseQuantizers(m: Module): Module {
  return { ...m, graphs: m.graphs.map((g) => fuseGraph(g).graph) };
}

/** Counts over a module's graphs (for tests, `lpc inspect`). */
export function fusionStats(m: Module): FusionStats {
  const s: FusionStats = { fused: 0, identities: 0, kept: 0 };
  for (const g of m.graphs) {
    const t = fuseGraph(g).stats;
    s.fused += t.fused; s.identities += t.identities; s.kept += t.kept;
  }
  return s;
}

const isF32 = (f: Format | undefined) => !f || f.kind === 'f32';

export function fuseGraph(g: Graph): { graph: Graph; stats: FusionStats } {
  const stats: FusionStats = { fused: 0, identities: 0, kept: 0 };
  const nodes: Node[] = g.nodes.map((n) => ({ ...n, attrs: { ...n.attrs }, inputs: [...n.inputs] }));
  // gone[id]: the node that replaces removed node `id` (an earlier one; an identity may point at a fused quantizer).
  const gone = new Map<number, number>();
  const resolve = (id: number) => { while (gone.has(id)) id = gone.get(id)!; return id; };

  // 1. f32 quantizers are identities.
  for (const n of nodes) {
    n.inputs = n.inputs.map(resolve);
    if (n.op === 'quantize' && isF32(n.attrs.fmt as Format)) { gone.set(n.id, n.inputs[0]); stats.identities++; }
  }
  const outputs = g.outputs.map((o) => ({ ...o, node: resolve(o.node) }));
  const updates = g.updates.map((u) => ({ ...u, node: resolve(u.node) }));

  // 2. Uses of each value, on the graph without the identities: every input slot, output and update counts.
  const uses = new Array<number>(nodes.length).fill(0);
  for (const n of nodes) if (!gone.has(n.id)) for (const i of n.inputs) uses[i]++;
  for (const r of [...outputs, ...updates]) uses[r.node] += 1;

  // 3. Fold each remaining quantizer into a producer it alone uses. A producer that takes an epilogue here is never
  //    a candidate again (it has one), so the use counts of step 2 stay valid.
  for (const n of nodes) {
    if (gone.has(n.id)) continue;
    n.inputs = n.inputs.map(resolve);
    if (n.op !== 'quantize') continue;
    const p = nodes[n.inputs[0]];
    if (NO_EPILOGUE.has(p.op) || !isF32(p.attrs.qfmt as Format) || p.type.dtype !== 'f32' || uses[p.id] !== 1) {
      stats.kept++;
      continue;
    }
    p.attrs.qfmt = n.attrs.fmt;
    p.attrs.qround = n.attrs.rounding;
    gone.set(n.id, p.id);
    stats.fused++;
  }

  // 4. Drop the removed nodes, renumber, and re-infer types in order (a producer's type now carries its format, and
  //    a view of a value takes that value's format).
  const remap = new Map<number, number>();
  const out: Node[] = [];
  for (const n of nodes) {
    if (gone.has(n.id)) continue;
    const id = out.length;
    remap.set(n.id, id);
    const inputs = n.inputs.map((i) => remap.get(resolve(i))!);
    const type = n.op === 'input' || n.op === 'state' ? n.type : getOp(n.op).infer(inputs.map((i) => out[i].type), n.attrs);
    out.push({ ...n, id, inputs, type });
  }
  const at = (id: number) => remap.get(resolve(id))!;
  return {
    graph: {
      name: g.name,
      nodes: out,
      outputs: outputs.map((o) => ({ ...o, node: at(o.node) })),
      updates: updates.map((u) => ({ ...u, node: at(u.node) })),
    },
    stats,
  };
}
