/**
 * Reverse-mode autodiff on the `train` graph: appends gradient nodes built by each op's gradient rule (ir/ops/)
 * and exposes the gradient of the loss w.r.t. each parameter as an output `grad:<param>` for the optimizer pass.
 */
import { Builder, Graph, Module } from '../ir/graph.js';
import { getOp } from '../ir/ops/index.js';
import { LocatedError } from '../ir/types.js';
import { attrsOf } from '../ir/op-registry.js';

export const GRAD_PREFIX = 'grad:';

/**
 * `wrtInputs` also exposes `grad:<input>` for data inputs (tests compare input gradients with PyTorch).
 * `lossScale` S starts backward from S·∂L/∂L = S (static loss scaling: the E quantizers see S-times larger errors and
 * the `grad:` outputs are S·∂L/∂p; the optimizer pass unscales them).
 */
export function autodiff(m: Module, opts: { wrtInputs?: boolean; lossScale?: number } = {}): Module {
  return { ...m, graphs: m.graphs.map((g) => (g.name === 'train' ? differentiate(g, !!opts.wrtInputs, opts.lossScale ?? 1) : g)) };
}

function differentiate(g0: Graph, wrtInputs: boolean, lossScale: number): Graph {
  const g: Graph = { ...g0, nodes: [...g0.nodes], outputs: [...g0.outputs], updates: [...g0.updates] };
  const b = new Builder(g);
  const lossOut = g.outputs.find((o) => o.name === 'loss');
  if (!lossOut) throw new Error(`graph '${g.name}' has no 'loss' output to differentiate`);
  const n0 = g.nodes.length;

  // Only nodes that depend on a parameter carry gradients.
  const needs = new Array<boolean>(n0).fill(false);
  const wrt = (n: Graph['nodes'][number]) =>
    (n.op === 'state' && n.attrs.kind === 'param') || (wrtInputs && n.op === 'input' && n.attrs.kind === 'data');
  for (const n of g.nodes) needs[n.id] = wrt(n) || n.inputs.some((i) => needs[i]);

  const grad = new Map<number, number>();
  const accumulate = (id: number, d: number) => {
    const prev = grad.get(id);
    grad.set(id, prev === undefined ? d : b.add('add', [prev, d], {}, g.nodes[id].loc));
  };
  grad.set(lossOut.node, b.add('fill', [], { shape: [1], value: Math.fround(lossScale) }));

  for (let id = lossOut.node; id >= 0; id--) {
    const dy = grad.get(id);
    const n = g.nodes[id];
    if (dy === undefined || !needs[id] || n.op === 'state' || n.op === 'input') continue;
    const def = getOp(n.op);
    if (!def.grad) throw new LocatedError(n.loc, `cannot differentiate through ${n.op}: it has no gradient rule`);
    const dxs = def.grad({
      x: n.inputs, y: id, dy, attrs: n.attrs, inTypes: n.inputs.map((i) => g.nodes[i].type),
      add: (op, inputs, attrs = {}) => b.add(op, inputs, attrs, n.loc),
    });
    n.inputs.forEach((inp, k) => { if (needs[inp] && dxs[k] != null) accumulate(inp, dxs[k]!); });
  }

  for (const n of g.nodes.slice(0, n0)) {
    if (!wrt(n)) continue;
    const d = grad.get(n.id) ?? b.add('fill', [], { shape: n.type.shape, value: 0 }, n.loc);
    g.outputs.push({ name: GRAD_PREFIX + attrsOf(n, 'state', 'input').name, node: d });
  }
  return g;
}
