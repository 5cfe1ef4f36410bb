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
import { F32, Format } from '../ir/format.js';
import { PrecisionPolicy, RoleSpec } from '../ir/precision/index.js';

/** Ops whose results are layer outputs (auto_low's conv, linear, normalization, activation and pool kinds, and the
 *  residual add). Backward and bookkeeping ops never appear in the forward graphs this pass sees. */
export const LAYER_OPS: ReadonlySet<string> = new Set(['conv2d', 'linear', 'bn_apply', 'relu', 'maxpool', 'avgpool', 'add']);

const LOSS_OPS = new Set(['softmax_xent', 'correct_count']);

export function quantizePass(m: Module, policy: PrecisionPolicy | undefined): Module {
  if (policy && usesCptPlacement(policy)) return { ...m, graphs: m.graphs.map((g) => cptGraph(g, cptRoles(policy))) };
  checkSchedule(policy);
  const A = policy?.roles.A, E = policy?.roles.E;
  if (!A && !E) return m;
  return { ...m, graphs: m.graphs.map((g) => quantizeGraph(g, A, E)) };
}

/**
 * CPT's own quantizer (minmax) comes with CPT's placement (research/seeds.md §2.2): inside every convolution, the
 * input activation (`A`, per tensor) and the weight (`W`, per output channel, on its way into the conv: fp32 master
 * weights, straight-through) in forward, and the error w.r.t. the conv's output (`E`, per tensor) in backward.
 * Linear layers, BN, ReLU, pooling and residual adds stay fp32, as in CPT. A policy with any of W, A, E in minmax
 * is placed this way (G, M, ACC stay OptimLP's); the optimizer pass then leaves W alone.
 */
export function usesCptPlacement(p: PrecisionPolicy): boolean {
  return (['W', 'A', 'E'] as const).some((r) => p.roles[r]?.fmt.kind === 'minmax');
}

/** The forward/backward widths of a schedule go to minmax formats as `fwd`/`bwd` (runtime uniforms). */
function cptRoles(p: PrecisionPolicy): { W?: RoleSpec; A?: RoleSpec; E?: RoleSpec } {
  checkSchedule(p);
  const sched = (r: RoleSpec | undefined, which: 'fwd' | 'bwd'): RoleSpec | undefined => {
    if (!r || r.fmt.kind !== 'minmax' || !p.schedule?.[which]) return r;
    return { ...r, fmt: { ...r.fmt, sched: which } as Format };
  };
  return { W: sched(p.roles.W, 'fwd'), A: sched(p.roles.A, 'fwd'), E: sched(p.roles.E, 'bwd') };
}

/** A schedule needs something to drive: a minmax format among W/A (fwd) or E (bwd). */
function checkSchedule(p: PrecisionPolicy | undefined): void {
  if (!p?.schedule) return;
  const mm = (r: RoleSpec | undefined) => r?.fmt.kind === 'minmax';
  if (p.schedule.fwd && !mm(p.roles.W) && !mm(p.roles.A))
    throw new Error("precision spec: 'schedule fwd=…' sets the width of minmax formats, but neither W nor A is minmax<…> (e.g. A=minmax<8,tensor> W=minmax<8,channel>)");
  if (p.schedule.bwd && !mm(p.roles.E))
    throw new Error("precision spec: 'schedule bwd=…' sets the width of minmax formats, but E is not minmax<…> (e.g. E=minmax<8,tensor>:stochastic)");
}

function cptGraph(g0: Graph, r: { W?: RoleSpec; A?: RoleSpec; E?: RoleSpec }): Graph {
  const out: Graph = { name: g0.name, nodes: [], outputs: [], updates: [] };
  const b = new Builder(out);
  const remap: number[] = [];
  const q = (x: number, spec: RoleSpec | undefined, role: string, loc: Node['loc']) =>
    spec ? b.add('quantize', [x], { fmt: spec.fmt, rounding: spec.rounding, role }, loc) : x;
  for (const n of g0.nodes) {
    let inputs = n.inputs.map((i) => remap[i]);
    if (n.op === 'conv2d') inputs = [q(inputs[0], r.A, 'A', n.loc), q(inputs[1], r.W, 'W', n.loc), ...inputs.slice(2)];
    const id = b.add(n.op, inputs, n.attrs, n.loc);
    // identity in forward; on the way back the error w.r.t. the conv output goes to E
    remap[n.id] = n.op === 'conv2d' && r.E
      ? b.add('quantize', [id], { fmt: F32, rounding: 'nearest', role: 'E', bwd_fmt: r.E.fmt, bwd_rounding: r.E.rounding }, n.loc)
      : id;
  }
  out.outputs = g0.outputs.map((o) => ({ name: o.name, node: remap[o.node] }));
  out.updates = g0.updates.map((o) => ({ name: o.name, node: remap[o.node] }));
  return out;
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
