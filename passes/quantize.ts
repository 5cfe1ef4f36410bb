/**
 * The quantize pass: QPyTorch's Quantizer placed after every layer of the forward graphs, as `qtorch.auto_low`
 * does. A quantize node takes the layer output to the policy's `A` format and, on the way back, the error to `E`
 * (the op's gradient rule), so it runs before autodiff. The optimizer roles (G, ACC, W, M) are OptimLP's and are
 * placed by the optimizer pass. Fusion later folds each quantizer into the kernel that produces its value.
 *
 * Explicit `quantize()` sites of the model get the formats of the spec's named classes first (./quantize-sites.ts).
 * The model's output (the logits fed to the loss) is not quantized, as in QPyTorch's SWALP example and the SWALP
 * repository, which exempt the final classifier.
 */
import { Graph, Module, Node, users } from '../ir/graph.js';
import { F32, Format } from '../ir/format.js';
import { PrecisionPolicy, RoleSpec, schedulable, scheduledRoles } from '../ir/precision/index.js';
import { LocatedError } from '../ir/types.js';
import { resolveQuantizeSites } from './quantize-sites.js';
import { copyNode, rebuild } from '../ir/rewrite.js';

/** Ops whose results are layer outputs (auto_low's conv, linear, normalization, activation and pool kinds, and the
 *  residual add). Backward and bookkeeping ops never appear in the forward graphs this pass sees. */
export const LAYER_OPS: ReadonlySet<string> = new Set(['conv2d', 'linear', 'bn_apply', 'relu', 'relu6', 'maxpool', 'avgpool', 'adaptive_avgpool', 'add']);

const LOSS_OPS = new Set(['softmax_xent', 'correct_count']);

export function quantizePass(m: Module, policy: PrecisionPolicy | undefined): Module {
  m = resolveQuantizeSites(m, policy);
  if (policy && usesCptPlacement(policy)) return { ...m, graphs: m.graphs.map((g) => cptGraph(g, cptRoles(policy))) };
  checkSchedule(policy);
  const { A, E } = policy ? scheduledRoles(policy) : { A: undefined, E: undefined };
  if (!A && !E) return m;
  return { ...m, graphs: m.graphs.map((g) => quantizeGraph(g, A, E)) };
}

/**
 * CPT's own quantizer (minmax) comes with CPT's placement (research/seeds.md §2.2): inside every convolution, the
 * input activation (`A`, per tensor) and the weight (`W`, per output channel, on its way into the conv: fp32 master
 * weights, straight-through) in forward, and the error w.r.t. the conv's output (`E`, per tensor) in backward.
 * Linear layers, BN, ReLU, pooling and residual adds stay fp32, as in CPT. A policy with any of W, A, E in minmax
 * is placed this way (G, M, ACC stay OptimLP's); the optimizer pass then leaves W alone.
 *
 * A sequence model (its input is token ids) has no convolutions: there the same quantizers go into every linear
 * and batched matmul, as CPT quantizes its Transformer (issue 29) — each operand in A with its own running range
 * (a linear's weight in W instead), the error w.r.t. the output in E — except the error of the logits, which no
 * placement quantizes. Layer norm, softmax, GELU, embeddings and residual adds stay fp32.
 */
export function usesCptPlacement(p: PrecisionPolicy): boolean {
  return (['W', 'A', 'E'] as const).some((r) => p.roles[r]?.fmt.kind === 'minmax');
}

/** The forward/backward widths of a schedule go to minmax and MXINT formats as `fwd`/`bwd` (runtime uniforms). */
function cptRoles(p: PrecisionPolicy): { W?: RoleSpec; A?: RoleSpec; E?: RoleSpec } {
  checkSchedule(p);
  return scheduledRoles(p);
}

/** A schedule needs something to drive: a minmax or MXINT format among W/A (fwd) or E (bwd). */
function checkSchedule(p: PrecisionPolicy | undefined): void {
  if (!p?.schedule) return;
  if (p.schedule.fwd && !schedulable(p.roles.W?.fmt) && !schedulable(p.roles.A?.fmt))
    throw new Error("precision spec: 'schedule fwd=…' sets the width of minmax and mx<intB> formats, but neither W nor A is one (e.g. A=minmax<8,tensor> W=minmax<8,channel>, or A=mx<int8> W=mx<int8>)");
  if (p.schedule.bwd && !schedulable(p.roles.E?.fmt))
    throw new Error("precision spec: 'schedule bwd=…' sets the width of minmax and mx<intB> formats, but E is neither (e.g. E=minmax<8,tensor>:stochastic, or E=mx<int8>)");
}

/** QuantMeasure's momentum: running ← 0.9·running + 0.1·batch (as bn_running_update's, the weight of the batch). */
export const CPT_RUNNING_MOMENTUM = 0.1;

/**
 * CPT's QuantMeasure on each conv input (A = minmax<b,tensor>): a buffer `<conv>.act_range` = [zero_point, range]
 * (init 0, PyTorch's running_zero_point and running_range), named after the conv's weight. Training quantizes
 * with the batch's min/max (the quantize node) and updates the buffer with the batch's qparams, r ← 0.9·r + 0.1·b
 * (a graph update, as batchNorm's running statistics); evaluation quantizes with the buffer.
 */
function cptGraph(g0: Graph, r: { W?: RoleSpec; A?: RoleSpec; E?: RoleSpec }): Graph {
  const training = g0.name === 'train';
  const running = r.A?.fmt.kind === 'minmax' && r.A.fmt.per === 'tensor' ? r.A : undefined;
  const names = new Set<string>();
  const seq = isSequenceGraph(g0), u = seq ? users(g0) : [];
  const uses = new Map<string, number>();
  let bmm = 0;
  return rebuild(g0, (n, ins, b) => {
    const q = (x: number, spec: RoleSpec | undefined, role: string) =>
      spec ? b.add('quantize', [x], { fmt: spec.fmt, rounding: spec.rounding, role }, n.loc) : x;
    const actInput = (x: number, base = `${convName(g0, n)}.act_range`): number => {
      if (!running) return q(x, r.A, 'A');
      // a weight read by several layers (an LSTM's, unrolled over time; a tied head) gives each use its own buffer
      const k = uses.get(base) ?? 0;
      uses.set(base, k + 1);
      const name = k ? `${base}${k}` : base;
      if (names.has(name)) throw new LocatedError(n.loc, `CPT placement: two layers share the buffer '${name}' (give each conv its own weight)`);
      names.add(name);
      const st = b.add('state', [], { name, kind: 'buffer', shape: [2], init: 'zeros' }, n.loc);
      if (!training) return b.add('minmax_quantize', [x, st], { fmt: running.fmt, rounding: running.rounding }, n.loc);
      const batch = b.add('minmax_qparams', [x], {}, n.loc);
      const upd = b.add('minmax_running_update', [st, batch], { momentum: CPT_RUNNING_MOMENTUM, fmt: running.fmt }, n.loc);
      b.graph.updates.push({ name, node: upd });
      return q(x, running, 'A');
    };
    const placed = n.op === 'conv2d' || (seq && MATMUL_OPS.has(n.op));
    const inputs = n.op === 'conv2d' ? [actInput(ins[0]), q(ins[1], r.W, 'W'), ...ins.slice(2)]
      : !placed ? ins
      : n.op === 'linear' ? [actInput(ins[0], `${layerOf(g0, n)}.act_range`), q(ins[1], r.W, 'W'), ...ins.slice(2)]
      : ((k) => [actInput(ins[0], `matmul${k}.a_range`), actInput(ins[1], `matmul${k}.b_range`)])(bmm++);
    const id = b.add(n.op, inputs, n.attrs, n.loc);
    // identity in forward; on the way back the error w.r.t. the layer's output goes to E (not the logits')
    return placed && r.E && !(seq && feedsLossOnly(g0, n.id, u))
      ? b.add('quantize', [id], { fmt: F32, rounding: 'nearest', role: 'E', bwd_fmt: r.E.fmt, bwd_rounding: r.E.rounding }, n.loc)
      : id;
  });
}

/** A sequence model's graph: its data input is token ids (dsl tokens()), not an image. */
function isSequenceGraph(g: Graph): boolean {
  return g.nodes.some((n) => n.op === 'input' && n.attrs.kind === 'data' && n.attrs.dtype === 'i32');
}

/** A linear's layer name, from its weight's state name (`h0.attn0.q.weight` → `h0.attn0.q`; `lstm0.weight_ih_l0` as is). */
function layerOf(g: Graph, n: Node): string {
  const w = g.nodes[n.inputs[1]];
  if (w?.op !== 'state') throw new LocatedError(n.loc, `CPT placement: the linear's weight is not a parameter (got ${w?.op ?? 'nothing'}), so its activation buffer cannot be named`);
  const name = String(w.attrs.name);
  return name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
}

/** The conv's layer name, from its weight's state name (`conv0.weight` → `conv0`). */
function convName(g: Graph, conv: Node): string {
  const w = g.nodes[conv.inputs[1]];
  const name = w?.op === 'state' ? String(w.attrs.name) : '';
  if (!name.endsWith('.weight'))
    throw new LocatedError(conv.loc, `CPT placement: the conv's weight is not a parameter named '<layer>.weight' (got ${name ? `'${name}'` : w?.op ?? 'nothing'}), so its activation buffer cannot be named`);
  return name.slice(0, -'.weight'.length);
}

function quantizeGraph(g0: Graph, A: PrecisionPolicy['roles']['A'], E: PrecisionPolicy['roles']['E']): Graph {
  const u = users(g0);
  const attrs = {
    fmt: A?.fmt ?? F32, rounding: A?.rounding ?? 'nearest', role: 'A',
    ...(E ? { bwd_fmt: E.fmt, bwd_rounding: E.rounding } : {}),
  };
  // a permutation keeps a value on the grid of a format without a per-axis layout
  const views = A && A.fmt.kind !== 'f32' && !layoutFree(A.fmt) ? ['reshape'] : ['reshape', 'permute'];
  return rebuild(g0, (n, ins, b) => {
    // the operands of linear and batched matmul are their inputs in A (as CPT quantizes its Transformer) where they
    // come from the sequence ops' f32 outputs (layer norm, softmax, GELU, …), which no layer quantizer covers
    const q = MATMUL_OPS.has(n.op) ? ins.map((x, k) => (unquantizedActivation(g0, n.inputs[k], u, views) ? b.add('quantize', [x], attrs, n.loc) : x)) : ins;
    const id = copyNode(n, q, b);
    return isLayerOutput(g0, n, u) ? b.add('quantize', [id], attrs, n.loc) : id;
  });
}

const MATMUL_OPS = new Set(['linear', 'batch_matmul']);
/** Ops of the sequence models whose outputs stay f32 unless a matmul reads them (ir/ops/sequence.ts, activation.ts). */
const SEQ_F32_OUTPUTS = new Set(['layernorm', 'softmax', 'gelu', 'tanh', 'sigmoid', 'batch_matmul', 'permute', 'embedding', 'scale', 'mul', 'slice']);
const layoutFree = (f: Format) => (f.kind === 'bfp' ? f.axis === 'tensor' : f.kind === 'minmax' ? f.per === 'tensor' : true);
function unquantizedActivation(g: Graph, id: number, u: number[][], views: string[]): boolean {
  while (views.includes(g.nodes[id].op)) id = g.nodes[id].inputs[0];
  const n = g.nodes[id];
  return SEQ_F32_OUTPUTS.has(n.op) && !isLayerOutput(g, n, u);
}

function isLayerOutput(g: Graph, n: Node, u: number[][]): boolean {
  if (!LAYER_OPS.has(n.op)) return false;
  return !feedsLossOnly(g, n.id, u);
}

/** Whether a value only feeds the loss (the model's output), following views (flatten) and explicit quantizer
 *  sites on the logits (PEPPP's high-precision one). */
function feedsLossOnly(g: Graph, id: number, u: number[][]): boolean {
  return u[id].length > 0 && u[id].every((k) => LOSS_OPS.has(g.nodes[k].op) || ((g.nodes[k].op === 'reshape' || g.nodes[k].op === 'quantize') && feedsLossOnly(g, k, u)));
}
