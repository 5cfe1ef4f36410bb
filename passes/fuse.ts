/**
 * Fusion, as named rewrite rules over one graph (ir/rewrite.ts), each a pass of its own in passes/pipeline.ts (so
 * `--print-after` and `--time-passes` see each), in this order:
 *
 *   fold-elementwise              an elementwise op into the node producing its operand (a post-op, ir/post.ts)
 *   drop-identity-quantizer       quantizers to f32, and of values already on their grid, are removed
 *   recompute-shared-elementwise  an elementwise value feeding a quantizer and other elementwise ops is recomputed
 *                                 by those, so that its quantizer can fold
 *   fold-quantizer                a quantizer into the store of the node producing its value (an epilogue)
 *   fold-qpost-relu               a ReLU or ReLU6 (or a backward) of a quantized value, after the quantizer (qpost)
 *   refold-elementwise            fold-elementwise again: removed quantizers join new chains
 *
 * Quantizer fusion: a `quantize` node is folded into the node that produces its input, which then quantizes its
 * result in place as an epilogue (ir/epilogue.ts: the node's `epi.q`; the WGSL kernels fuse it into
 * their final store). That saves a kernel launch and a full read and write of the tensor per quantizer.
 *
 * A quantizer is fused when its producer computes (not input, state, reshape or quantize; a single-use view in
 * between is allowed for shape-independent formats), has no epilogue yet, and has no other use: no other node, graph
 * output or state update may see the unquantized value. Quantizers to f32, and quantizers of values already on
 * their grid (a relu of a quantized value, …: onGrid), are identities and are removed (their users read the input).
 * Everything else is left as it is; node ids stay 0..n-1 in topological order and every node keeps its `loc`.
 *
 * Stochastic rounding draws its bits with the producer's id as tensor id after fusion (the quantize node's before),
 * so a fused graph's random bits differ from the unfused graph's; both backends run the same fused graph.
 * Run it after autodiff: a folded quantizer no longer has a gradient rule of its own (the straight-through error
 * quantizer is placed by autodiff from the quantize node).
 */
import { Format, formatToString } from '../ir/format.js';
import { Graph, Module, Node } from '../ir/graph.js';
import { getOp, takesEpilogue } from '../ir/ops/index.js';
import { Epilogue, postArgs } from '../ir/epilogue.js';
import { PostExpr, substituteX } from '../ir/post.js';
import { Rewrite } from '../ir/rewrite.js';
import { attrsOf } from '../ir/op-registry.js';
import { gridAfter } from '../ir/quant/grid.js';

/** A fusion rule: rewrites a graph's working copy in place and says how many rewrites it made. */
export interface FusionRule {
  /** Its pass name (passes/pipeline.ts). */
  name: string;
  apply(rw: Rewrite): number;
}

/** One rule on one graph: the rewritten graph (renumbered, types re-inferred) and the rule's count. */
export function applyRule(rule: FusionRule, g: Graph): { graph: Graph; count: number } {
  const rw = new Rewrite(g);
  const count = rule.apply(rw);
  return { graph: rw.finish(), count };
}

/** One rule on every graph of a module. */
export function applyRuleToModule(rule: FusionRule, m: Module): Module {
  return { ...m, graphs: m.graphs.map((g) => applyRule(rule, g).graph) };
}

export interface FusionStats {
  /** quantize nodes folded into their producer */
  fused: number;
  /** quantize nodes removed as identities: to f32, or of a value already on their grid */
  identities: number;
  /** quantize nodes left as they are */
  kept: number;
  /** ReLUs and ReLU backwards folded after a quantizer (qpost) */
  qpost: number;
}

const isF32 = (f: Format | undefined) => !f || f.kind === 'f32';
/** Whether node `n` quantizes its result (an epilogue quantizer to a format other than f32). */
const quantized = (n: Node) => !isF32(n.epi?.q?.fmt);
/** The node's epilogue, created empty when it has none, for a rule to fill in. */
const epiOf = (n: Node): Epilogue => (n.epi ??= { args: 0 });
const X: PostExpr = { kind: 'x' };
/** Formats whose quantization of an element does not depend on the tensor's shape. */
const layoutFree = (f: Format) => (f.kind === 'bfp' ? f.axis === 'tensor' : f.kind === 'minmax' ? f.per === 'tensor' : f.kind !== 'mx');
const sameFormat = (a: Format | undefined, b: Format) => !!a && formatToString(a) === formatToString(b);
const sameShape = (a: Node, b: Node) => a.type.shape.join(',') === b.type.shape.join(',');

/** Post-op operands a fused node may read (each is one more storage binding of its kernels). */
export const MAX_POST_OPERANDS = 3;

// ---- fold-elementwise ----

/**
 * Folds an elementwise op C into the node P producing one of its operands, when C is P's only use: P's kernel then
 * computes C in its final store (its epilogue's `post`, ir/post.ts, over P's result `x` and C's other operands, appended
 * to P's inputs). Repeats down chains: bn_apply → relu, residual add → relu, matmul/maxpool_bwd → relu_bwd, the
 * optimizer's scale → add → … The fused node stays at P's place, so C's other operands must already exist there;
 * the schedule, and with it every value's lifetime, is otherwise unchanged. Users, outputs and updates of C read the
 * fused node. Run before quantizer fusion: a quantize node between P and C stops a chain, and a folded quantizer
 * then applies after the post-ops, as it did after C.
 */
export const foldElementwise: FusionRule = {
  name: 'fold-elementwise',
  apply(rw) {
    const nodes = rw.nodes, uses = rw.uses();
    let folded = 0;
    for (const c of nodes) {
      rw.resolveInputs(c);
      const ew = safeOp(c.op)?.ew;
      if (!ew || c.epi?.post || quantized(c) || c.type.dtype !== 'f32') continue;
      const scalars = ew.scalarInputs ?? [];
      const slot = c.inputs.findIndex((id, s) => {
        const p = nodes[id];
        return !scalars.includes(s) && uses[id] === 1 && takesEpilogue(p.op) && !!safeOp(p.op) &&
          !quantized(p) && p.type.dtype === 'f32' && sameShape(p, c) &&
          postArgs(p.epi) + c.inputs.length - 1 <= MAX_POST_OPERANDS &&
          c.inputs.every((o, t) => t === s || o < id); // C's other operands exist where P is
      });
      if (slot < 0) continue;
      const p = nodes[c.inputs[slot]];
      const k = postArgs(p.epi);
      const others = c.inputs.filter((_, s) => s !== slot);
      let j = k;
      const outer: PostExpr = {
        kind: 'op', op: c.op, attrs: { ...c.attrs },
        args: c.inputs.map((_, s): PostExpr => (s === slot ? X : { kind: 'arg', index: j++ })),
      };
      p.inputs.push(...others);
      const e = epiOf(p);
      e.post = substituteX(outer, e.post ?? X);
      e.args = k + others.length;
      uses[p.id] = uses[c.id];
      rw.replaceAllUses(c.id, p.id);
      folded++;
    }
    return folded;
  },
};

/** fold-elementwise run again after the quantizer rules: removing identity quantizers (an E after max-pool backward)
 *  joins new chains. */
export const refoldElementwise: FusionRule = { ...foldElementwise, name: 'refold-elementwise' };

// ---- drop-identity-quantizer ----

/** The format whose grid node `n`'s value lies on, when its value input does and the op keeps it there (ir/quant/grid.ts). */
function onGrid(n: Node, grid: Map<number, Format>, relu6: boolean): Format | undefined {
  const f = grid.get(n.inputs[0]);
  return f && gridAfter(n.op, n.attrs, f, relu6);
}

/** Removes quantizers to f32, and quantizers of a value already on their grid (onGrid): their users read the input. */
const dropIdentityRule = (relu6: boolean): FusionRule => ({
  name: 'drop-identity-quantizer',
  apply(rw) {
    const grid = new Map<number, Format>();
    let dropped = 0;
    for (const n of rw.nodes) {
      rw.resolveInputs(n);
      if (n.op === 'quantize') {
        const { fmt } = attrsOf(n, 'quantize');
        if (isF32(fmt) || sameFormat(grid.get(n.inputs[0]), fmt)) { rw.replaceAllUses(n.id, n.inputs[0]); dropped++; }
        else grid.set(n.id, fmt);
        continue;
      }
      const f = quantized(n) ? n.epi!.q!.fmt : onGrid(n, grid, relu6);
      if (f) grid.set(n.id, f);
    }
    return dropped;
  },
});
export const dropIdentityQuantizer = dropIdentityRule(true);

// ---- recompute-shared-elementwise ----

/**
 * Recompute instead of share: a quantizer whose elementwise producer P also feeds elementwise users (SGD's
 * d = μ·m + g feeds Q_M and the weight update) would stay a pass of its own; each such user computes P's expression
 * itself instead (its kernel reads P's inputs), leaving the quantizer P's only use. Use counts are those of the
 * graph the rule starts from. Returns the number of producers so freed.
 */
export const recomputeSharedElementwise: FusionRule = {
  name: 'recompute-shared-elementwise',
  apply(rw) {
    const uses = rw.uses();
    let freed = 0;
    for (const qn of rw.nodes) {
      if (rw.isErased(qn.id) || qn.op !== 'quantize') continue;
      const p = rw.nodes[qn.inputs[0]];
      if (!safeOp(p.op)?.ew || !takesEpilogue(p.op) || quantized(p) || p.epi?.qpost ||
          p.type.dtype !== 'f32' || uses[p.id] < 2) continue;
      const users = rw.users(p.id).filter((c) => c.id !== qn.id);
      if (users.length !== uses[p.id] - 1) continue; // read twice, or a graph output / state update
      const plans = users.map((c) => recomputeIn(c, p));
      if (plans.some((r) => !r)) continue;
      users.forEach((c, j) => Object.assign(c, plans[j]));
      freed++;
    }
    return freed;
  },
};

const shiftArgs = (e: PostExpr, by: number): PostExpr =>
  e.kind === 'arg' ? { kind: 'arg', index: e.index + by } : e.kind === 'op' ? { ...e, args: e.args.map((a) => shiftArgs(a, by)) } : e;

/**
 * Elementwise user C of elementwise P rewritten to compute P itself: op and own inputs of P, post-op C's
 * expression over P's (extra operands: P's, C's other operands, C's); undefined when C cannot (not elementwise, reads
 * P twice or as a broadcast scalar, a qpost, too many operands).
 */
function recomputeIn(c: Node, p: Node): Pick<Node, 'op' | 'inputs' | 'attrs' | 'epi'> | undefined {
  const cdef = safeOp(c.op);
  if (!cdef?.ew || c.epi?.qpost || c.type.dtype !== 'f32') return undefined;
  const kc = postArgs(c.epi), kp = postArgs(p.epi);
  const cOwn = c.inputs.slice(0, c.inputs.length - kc), cExtras = c.inputs.slice(c.inputs.length - kc);
  const slot = cOwn.indexOf(p.id);
  if (slot < 0 || cOwn.lastIndexOf(p.id) !== slot || cExtras.includes(p.id) || (cdef.ew.scalarInputs ?? []).includes(slot)) return undefined;
  if (!sameShape(c, p)) return undefined;
  const cOthers = cOwn.filter((_, s) => s !== slot);
  const extras = [...p.inputs.slice(p.inputs.length - kp), ...cOthers, ...cExtras];
  if (extras.length > MAX_POST_OPERANDS) return undefined;
  const pExpr: PostExpr = p.epi?.post ?? X;
  let j = kp;
  const cOp: PostExpr = { kind: 'op', op: c.op, attrs: { ...c.attrs }, args: cOwn.map((_, s): PostExpr => (s === slot ? pExpr : { kind: 'arg', index: j++ })) };
  const cPost: PostExpr = c.epi?.post ? shiftArgs(c.epi.post, kp + cOthers.length) : X;
  const epi: Epilogue = { post: substituteX(cPost, cOp), args: extras.length, ...(c.epi?.q ? { q: { ...c.epi.q } } : {}) };
  return { op: p.op, inputs: [...p.inputs.slice(0, p.inputs.length - kp), ...extras], attrs: { ...p.attrs }, epi };
}

// ---- fold-quantizer ----

/**
 * Folds each quantizer into a producer it alone uses. A producer that takes an epilogue here is never a candidate
 * again (it has one), so the use counts, kept up to date as quantizers fold, stay valid.
 */
export const foldQuantizer: FusionRule = {
  name: 'fold-quantizer',
  apply(rw) {
    const nodes = rw.nodes, uses = rw.uses();
    let fused = 0;
    for (const n of nodes) {
      if (rw.isErased(n.id)) continue;
      rw.resolveInputs(n);
      if (n.op !== 'quantize') continue;
      // Through a view (flatten) the producer's flat indices are the view's: fold into the producer when the
      // format's blocks do not depend on the shape (elementwise formats, or one block per tensor); the view then
      // carries it.
      let p = nodes[n.inputs[0]];
      const view = p.op === 'reshape' && uses[p.id] === 1 && layoutFree(attrsOf(n, 'quantize').fmt) ? p : undefined;
      if (view) p = nodes[view.inputs[0]];
      if (!takesEpilogue(p.op) || quantized(p) || p.type.dtype !== 'f32' || uses[p.id] !== 1) continue;
      const { fmt, rounding, role } = attrsOf(n, 'quantize');
      epiOf(p).q = { fmt, rounding, ...(role !== undefined ? { role } : {}) };
      rw.replaceAllUses(n.id, (view ?? p).id);
      if (!view) uses[p.id] = uses[n.id];
      fused++;
    }
    return fused;
  },
};

// ---- fold-qpost-relu ----

/** Ops fold-qpost-relu applies after a quantizer: the activation through its value, the backward through its error. */
const QPOST_FOLDABLE = new Set(['relu', 'relu_bwd', 'relu6', 'relu6_bwd']);

/**
 * A ReLU or ReLU6 (or either's backward, through its error input) whose input is a quantized producer's only use:
 * the producer stores relu(Q(v)), relu6(Q(v)), relu_bwd(Q(v), y) … (its epilogue's qpost, applied after its quantizer;
 * y joins its extra operands), saving a pass. Only where the op keeps Q's grid (ir/quant/grid.ts: relu6 of a bfp<8>
 * value, not of an MX E4M3 or a minmax one), so the result is still Q's format, as its type says: there the unfused
 * graph's quantizer after the op was an identity and drop-identity-quantizer removed it, and it is that op, left
 * without a quantizer, that folds here. The folded node's users read the producer.
 */
const foldQpostRule = (relu6: boolean): FusionRule => ({
  name: 'fold-qpost-relu',
  apply(rw) {
    const nodes = rw.nodes, uses = rw.uses();
    let folded = 0;
    for (const c of nodes) {
      if (rw.isErased(c.id) || !QPOST_FOLDABLE.has(c.op) || c.epi?.post || quantized(c)) continue;
      rw.resolveInputs(c);
      const p = nodes[c.inputs[0]];
      if (!quantized(p) || p.epi!.qpost || uses[p.id] !== 1 || !gridAfter(c.op, c.attrs, p.epi!.q!.fmt, relu6)) continue;
      const k = postArgs(p.epi), others = c.inputs.slice(1);
      if (others.some((o) => o >= p.id) || k + others.length > MAX_POST_OPERANDS) continue; // operands must exist at P
      const e = p.epi!;
      e.qpost = { kind: 'op', op: c.op, attrs: {}, args: [X, ...others.map((_, j): PostExpr => ({ kind: 'arg', index: k + j }))] };
      if (others.length) { p.inputs.push(...others); e.args = k + others.length; }
      uses[p.id] = uses[c.id];
      rw.replaceAllUses(c.id, p.id);
      folded++;
    }
    return folded;
  },
});
export const foldQpostRelu = foldQpostRule(true);

/** The fusion rules in pipeline order (passes/pipeline.ts runs each as a pass). */
export const FUSION_RULES: FusionRule[] = [
  foldElementwise, dropIdentityQuantizer, recomputeSharedElementwise, foldQuantizer, foldQpostRelu, refoldElementwise,
];

/**
 * The same rules with relu6 and relu6_bwd not claimed on-grid, so neither their quantizers go nor they fold after
 * one: relu6 runs as its own kernel storing through its own quantizer, as before (bench/relu6-fusion.ts compares).
 */
export const FUSION_RULES_WITHOUT_RELU6: FusionRule[] = [
  foldElementwise, dropIdentityRule(false), recomputeSharedElementwise, foldQuantizer, foldQpostRule(false), refoldElementwise,
];

// ---- the quantizer rules together (tests, `lpc inspect`) ----

/** The quantizer rules on one graph, in pipeline order, with their counts. */
export function fuseGraph(g: Graph): { graph: Graph; stats: FusionStats } {
  const identities = applyRule(dropIdentityQuantizer, g);
  const recomputed = applyRule(recomputeSharedElementwise, identities.graph);
  const fused = applyRule(foldQuantizer, recomputed.graph);
  const qpost = applyRule(foldQpostRelu, fused.graph);
  const kept = qpost.graph.nodes.filter((n) => n.op === 'quantize').length;
  return { graph: qpost.graph, stats: { fused: fused.count, identities: identities.count, kept, qpost: qpost.count } };
}

export function fuseQuantizers(m: Module): Module {
  return { ...m, graphs: m.graphs.map((g) => fuseGraph(g).graph) };
}

/** Counts over a module's graphs (for tests, `lpc inspect`). */
export function fusionStats(m: Module): FusionStats {
  const s: FusionStats = { fused: 0, identities: 0, kept: 0, qpost: 0 };
  for (const g of m.graphs) {
    const t = fuseGraph(g).stats;
    s.fused += t.fused; s.identities += t.identities; s.kept += t.kept; s.qpost += t.qpost;
  }
  return s;
}

export function fuseElementwiseGraph(g: Graph): Graph { return applyRule(foldElementwise, g).graph; }

export function fuseElementwise(m: Module): Module { return applyRuleToModule(foldElementwise, m); }

function safeOp(op: string) { try { return getOp(op); } catch { return undefined; } }
