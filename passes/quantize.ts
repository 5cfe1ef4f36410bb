/**
 * The quantize pass: QPyTorch's Quantizer placed after every layer of the forward graphs, as `qtorch.auto_low`
 * does. A quantize node takes the layer output to the policy's `A` format and, on the way back, the error to `E`
 * (the op's gradient rule), so it runs before autodiff. The optimizer roles (G, ACC, W, M) are OptimLP's and are
 * placed by the optimizer pass. Fusion later folds each quantizer into the kernel that produces its value.
 *
 * The model's output (the logits fed to the loss) is not quantized, as in QPyTorch's SWALP example and the SWALP
 * repository, which exempt the final classifier.
 */
import { Builder, Graph, Module, Node, users } from '../ir/graph.js';
import { F32 } from '../ir/format.js';
import { PrecisionPolicy } from '../ir/precision/index.js';

/** Ops whose results are layer outputs (auto_low's conv, linear, normalization, activation and pool kinds, and the
 *  residual add). Backward and bookkeeping ops never appear in the forward graphs this pass sees. */
export const LAYER_OPS: ReadonlySet<string> = new Set(['conv2d', 'linear', 'bn_apply', 'relu', 'maxpool', 'avgpool', 'add']);

const LOSS_OPS = new Set(['softmax_xent', 'correct_count']);

export function quantizePass(m: Module, policy: PrecisionPolicy | undefined): Module {
  const A = policy?.roles.A, E = policy?.roles.E;
  if (!A && !E) return m;
  return { ...m, graphs: m.graphs.map((g) => quantizeGraph(g, A, E)) };
}

function quantizeGraph(g0: Graph, A: PrecisionPolicy['roles']['A'], E: PrecisionPolicy['roles']['E']): Graph {
  const u = users(g0);
  const out: Graph = { name: g0.name, nodes: [], outputs: [], updates: [] };
  const b = new Builder(out);
  const remap: number[] = [];
  const attrs = {
    fmt: A?.fmt ?? F32, rounding: A?.rounding ?? 'nearest', role: 'A',
    ...(E ? { bwd_fmt: E.fmt, bwd_rounding: E.rounding } : {}),
  };
  for (const n of g0.nodes) {
    const id = b.add(n.op, n.inputs.map((i) => remap[i]), n.attrs, n.loc);
    remap[n.id] = isLayerOutput(g0, n, u) ? b.add('quantize', [id], attrs, n.loc) : id;
  }
  out.outputs = g0.outputs.map((o) => ({ name: o.name, node: remap[o.node] }));
  out.updates = g0.updates.map((o) => ({ name: o.name, node: remap[o.node] }));
  return out;
}

function isLayerOutput(g: Graph, n: Node, u: number[][]): boolean {
  if (!LAYER_OPS.has(n.op)) return false;
  // Follow views (flatten) to see whether the value only feeds the loss: then it is the model's output.
  const feedsLossOnly = (id: number): boolean =>
    u[id].length > 0 && u[id].every((k) => LOSS_OPS.has(g.nodes[k].op) || (g.nodes[k].op === 'reshape' && feedsLossOnly(k)));
  return !feedsLossOnly(n.id);
}
