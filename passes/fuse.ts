/**
 * Quantizer fusion: a `quantize` node is folded into the node that produces its input, which then quantizes its
 * result in place as an epilogue (ir/ops/epilogue.ts: attributes `qfmt`/`qround`; the WGSL kernels fuse it into their final
 * store). That saves a kernel launch and a full read and write of the tensor per quantizer.
 *
 * A quantizer is fused when its producer computes (not input, state, reshape or quantize; a single-use view in
 * between is allowed for shape-independent formats), has no epilogue yet, and has no other use: no other node, graph output or state update may see the unquantized value. Quantizers to f32,
 * and quantizers of values already on their grid (a relu of a quantized value, …: onGrid), are identities and are
 * removed (their users read the input). Everything else is left as it is; node ids stay
 * 0..n-1 in topological order and every node keeps its `loc`.
 *
 * Stochastic rounding draws its bits with the producer's id as tensor id after fusion (the quantize node's before),
 * so a fused graph's random bits differ from the unfused graph's; both backends run the same fused graph.
 * Run it after autodiff: a folded quantizer no longer has a gradient rule of its own (the straight-through error
 * quantizer is placed by autodiff from the quantize node).
 */
import { Format, formatToString } from '../ir/format.js';
import { Attrs, Graph, Module, Node } from '../ir/graph.js';
import { getOp, postArgs, takesEpilogue } from '../ir/ops/index.js';
import { PostExpr, parsePost, postToString, substituteX } from '../ir/post.js';


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

const isF32 = (f: Format | undefined) => !f || f.kind === 'f32';
/** Formats whose quantization of an element does not depend on the tensor's shape. */
const layoutFree = (f: Format) => (f.kind === 'bfp' ? f.axis === 'tensor' : f.kind === 'minmax' ? f.per === 'tensor' : true);
const sameFormat = (a: Format | undefined, b: Format) => !!a && formatToString(a) === formatToString(b);

/**
 * The format whose grid node `n`'s value lies on, when its value input does and the op keeps values on it: relu and
 * relu_bwd (values kept or zeroed), max-pooling forward and, with non-overlapping windows, backward (values selected
 * or routed, never combined), and views. Requantizing such a value is exactly the identity — every value is already
 * representable and no block's max |x| grows, so a bfp block's exponent can only fall and its grid only get finer,
 * for nearest and stochastic rounding alike (stochastic rounding never moves a representable value). Pooling
 * keeps bfp blocks only along the batch or channel axis; a view keeps them only for one block per tensor.
 */
function onGrid(n: Node, grid: Map<number, Format>): Format | undefined {
  const f = grid.get(n.inputs[0]);
  if (!f) return undefined;
  const blocksAlongNC = f.kind !== 'bfp' || f.axis === 'tensor' || f.axis === 0 || f.axis === 1;
  switch (n.op) {
    case 'relu': case 'relu_bwd': return f;
    case 'maxpool': return blocksAlongNC ? f : undefined;
    case 'maxpool_bwd': return blocksAlongNC && n.attrs.k === n.attrs.stride ? f : undefined;
    case 'reshape': return f.kind !== 'bfp' || f.axis === 'tensor' ? f : undefined;
    default: return undefined;
  }
}

export function fuseGraph(g: Graph): { graph: Graph; stats: FusionStats } {
  const stats: FusionStats = { fused: 0, identities: 0, kept: 0, qpost: 0 };
  const nodes: Node[] = g.nodes.map((n) => ({ ...n, attrs: { ...n.attrs }, inputs: [...n.inputs] }));
  // gone[id]: the node that replaces removed node `id` (an earlier one; an identity may point at a fused quantizer).
  const gone = new Map<number, number>();
  const resolve = (id: number) => { while (gone.has(id)) id = gone.get(id)!; return id; };

  // 1. Identities: quantizers to f32, and quantizers of a value already on their grid (onGrid below).
  const grid = new Map<number, Format>();
  for (const n of nodes) {
    n.inputs = n.inputs.map(resolve);
    if (n.op === 'quantize') {
      const fmt = n.attrs.fmt as Format;
      if (isF32(fmt) || sameFormat(grid.get(n.inputs[0]), fmt)) { gone.set(n.id, n.inputs[0]); stats.identities++; }
      else grid.set(n.id, fmt);
      continue;
    }
    const f = isF32(n.attrs.qfmt as Format) ? onGrid(n, grid) : (n.attrs.qfmt as Format);
    if (f) grid.set(n.id, f);
  }
  const outputs = g.outputs.map((o) => ({ ...o, node: resolve(o.node) }));
  const updates = g.updates.map((u) => ({ ...u, node: resolve(u.node) }));

  // 2. Uses of each value, on the graph without the identities: every input slot, output and update counts.
  const uses = new Array<number>(nodes.length).fill(0);
  for (const n of nodes) if (!gone.has(n.id)) for (const i of n.inputs) uses[i]++;
  for (const r of [...outputs, ...updates]) uses[r.node] += 1;

  // 2b. Recompute instead of share: a quantizer whose elementwise producer P also feeds elementwise users (SGD's
  //     d = μ·m + g feeds Q_M and the weight update) would stay a pass of its own; each such user computes P's
  //     expression itself instead (its kernel reads P's inputs), leaving the quantizer P's only use.
  let recomputed = false;
  for (const qn of nodes) {
    if (gone.has(qn.id) || qn.op !== 'quantize') continue;
    const p = nodes[qn.inputs[0]];
    if (!safeOp(p.op)?.ew || !takesEpilogue(p.op) || !isF32(p.attrs.qfmt as Format) || p.attrs.qpost !== undefined ||
        p.type.dtype !== 'f32' || uses[p.id] < 2) continue;
    const users = nodes.filter((c) => !gone.has(c.id) && c.id !== qn.id && c.inputs.includes(p.id));
    if (users.length !== uses[p.id] - 1) continue; // read twice, or a graph output / state update
    const plans = users.map((c) => recomputeIn(c, p));
    if (plans.some((r) => !r)) continue;
    users.forEach((c, j) => Object.assign(c, plans[j]));
    recomputed = true;
  }
  if (recomputed) {
    uses.fill(0);
    for (const n of nodes) if (!gone.has(n.id)) for (const i of n.inputs) uses[i]++;
    for (const r of [...outputs, ...updates]) uses[r.node] += 1;
  }

  // 3. Fold each remaining quantizer into a producer it alone uses. A producer that takes an epilogue here is never
  //    a candidate again (it has one), so the use counts of step 2 stay valid.
  for (const n of nodes) {
    if (gone.has(n.id)) continue;
    n.inputs = n.inputs.map(resolve);
    if (n.op !== 'quantize') continue;
    // Through a view (flatten) the producer's flat indices are the view's: fold into the producer when the format's
    // blocks do not depend on the shape (elementwise formats, or one block per tensor); the view then carries it.
    let p = nodes[n.inputs[0]];
    const view = p.op === 'reshape' && uses[p.id] === 1 && layoutFree(n.attrs.fmt as Format) ? p : undefined;
    if (view) p = nodes[view.inputs[0]];
    if (!takesEpilogue(p.op) || !isF32(p.attrs.qfmt as Format) || p.type.dtype !== 'f32' || uses[p.id] !== 1) {
      stats.kept++;
      continue;
    }
    p.attrs.qfmt = n.attrs.fmt;
    p.attrs.qround = n.attrs.rounding;
    if (n.attrs.role !== undefined) p.attrs.qrole = n.attrs.role;
    gone.set(n.id, (view ?? p).id);
    if (!view) uses[p.id] = uses[n.id];
    stats.fused++;
  }

  // 3b. A ReLU (or ReLU's backward, through its error input) whose input is a quantized producer's only use: the
  //     producer stores relu(Q(v)) / relu_bwd(Q(v), y) (attribute qpost, applied after its quantizer; y joins its
  //     extra operands), saving a pass. The folded node's users read the producer.
  for (const c of nodes) {
    if (gone.has(c.id) || (c.op !== 'relu' && c.op !== 'relu_bwd') || c.attrs.post !== undefined || !isF32(c.attrs.qfmt as Format)) continue;
    c.inputs = c.inputs.map(resolve);
    const p = nodes[c.inputs[0]];
    if (isF32(p.attrs.qfmt as Format) || p.attrs.qpost !== undefined || uses[p.id] !== 1) continue;
    const k = postArgs(p.attrs), others = c.inputs.slice(1);
    if (others.some((o) => o >= p.id) || k + others.length > MAX_POST_OPERANDS) continue; // operands must exist at P
    p.attrs.qpost = c.op === 'relu' ? 'relu(x)' : `relu_bwd(x,$${k})`;
    if (others.length) { p.inputs.push(...others); p.attrs.post_args = k + others.length; }
    uses[p.id] = uses[c.id];
    gone.set(c.id, p.id);
    stats.qpost++;
  }

  // 4. Drop the removed nodes, renumber, and re-infer types in order (a producer's type now carries its format, and
  //    a view of a value takes that value's format).
  return {
    graph: rebuild({ ...g, outputs, updates }, nodes, (id) => gone.has(id), resolve),
    stats,
  };
}

// ---- elementwise post-ops ----

/** Post-op operands a fused node may read (each is one more storage binding of its kernels). */
export const MAX_POST_OPERANDS = 3;

export function fuseElementwise(m: Module): Module {
  return { ...m, graphs: m.graphs.map((g) => fuseElementwiseGraph(g)) };
}

/**
 * Folds an elementwise op C into the node P producing one of its operands, when C is P's only use: P's kernel then
 * computes C in its final store (ir/post.ts: attribute `post` over P's result `x` and C's other operands, appended
 * to P's inputs). Repeats down chains: bn_apply → relu, residual add → relu, matmul/maxpool_bwd → relu_bwd, the
 * optimizer's scale → add → … The fused node stays at P's place, so C's other operands must already exist there;
 * the schedule, and with it every value's lifetime, is otherwise unchanged. Users, outputs and updates of C read the
 * fused node. Run before quantizer fusion: a quantize node between P and C stops a chain, and a folded quantizer
 * then applies after the post-ops, as it did after C.
 */
export function fuseElementwiseGraph(g: Graph): Graph {
  const nodes: Node[] = g.nodes.map((n) => ({ ...n, attrs: { ...n.attrs }, inputs: [...n.inputs] }));
  const uses = new Array<number>(nodes.length).fill(0);
  for (const n of nodes) for (const i of n.inputs) uses[i]++;
  for (const r of [...g.outputs, ...g.updates]) uses[r.node]++;
  const into = new Map<number, number>(); // folded C → the fused node (its producer P)
  const at = (id: number) => into.get(id) ?? id;
  for (const c of nodes) {
    c.inputs = c.inputs.map(at);
    const ew = safeOp(c.op)?.ew;
    if (!ew || c.attrs.post !== undefined || !isF32(c.attrs.qfmt as Format) || c.type.dtype !== 'f32') continue;
    const scalars = ew.scalarInputs ?? [];
    const slot = c.inputs.findIndex((id, s) => {
      const p = nodes[id];
      return !scalars.includes(s) && uses[id] === 1 && takesEpilogue(p.op) && !!safeOp(p.op) &&
        isF32(p.attrs.qfmt as Format) && p.type.dtype === 'f32' && p.type.shape.join(',') === c.type.shape.join(',') &&
        postArgs(p.attrs) + c.inputs.length - 1 <= MAX_POST_OPERANDS &&
        c.inputs.every((o, t) => t === s || o < id); // C's other operands exist where P is
    });
    if (slot < 0) continue;
    const p = nodes[c.inputs[slot]];
    const k = postArgs(p.attrs);
    const others = c.inputs.filter((_, s) => s !== slot);
    let j = k;
    const outer: PostExpr = {
      kind: 'op', op: c.op, attrs: Object.fromEntries(Object.entries(c.attrs).filter(([a]) => a !== 'qfmt' && a !== 'qround' && a !== 'qrole')),
      args: c.inputs.map((_, s): PostExpr => (s === slot ? { kind: 'x' } : { kind: 'arg', index: j++ })),
    };
    const inner: PostExpr = p.attrs.post === undefined ? { kind: 'x' } : parsePost(p.attrs.post as string);
    p.inputs.push(...others);
    p.attrs.post = postToString(substituteX(outer, inner));
    p.attrs.post_args = k + others.length;
    if (!p.attrs.post_args) delete p.attrs.post_args;
    uses[p.id] = uses[c.id];
    into.set(c.id, p.id);
  }
  return rebuild(g, nodes, (id) => into.has(id), at);
}

/**
 * The graph of `nodes` without the dropped ones: ids renumbered 0..n−1 in order, inputs, outputs and updates of a
 * dropped node read its replacement (`resolve`), types re-inferred in order (formats and post-ops change them).
 */
function rebuild(g: Graph, nodes: Node[], dropped: (id: number) => boolean, resolve: (id: number) => number): Graph {
  const remap = new Map<number, number>();
  const out: Node[] = [];
  for (const n of nodes) {
    if (dropped(n.id)) continue;
    const id = out.length;
    remap.set(n.id, id);
    const inputs = n.inputs.map((i) => remap.get(resolve(i))!);
    const type = n.op === 'input' || n.op === 'state' ? n.type : getOp(n.op).infer(inputs.map((i) => out[i].type), n.attrs);
    out.push({ ...n, id, inputs, type });
  }
  const at = (id: number) => remap.get(resolve(id))!;
  return {
    name: g.name, nodes: out,
    outputs: g.outputs.map((o) => ({ ...o, node: at(o.node) })),
    updates: g.updates.map((u) => ({ ...u, node: at(u.node) })),
  };
}

const EPILOGUE_KEYS = new Set(['qfmt', 'qround', 'qrole', 'post', 'post_args', 'qpost']);
const opAttrs = (n: Node) => Object.fromEntries(Object.entries(n.attrs).filter(([k]) => !EPILOGUE_KEYS.has(k)));
const shiftArgs = (e: PostExpr, by: number): PostExpr =>
  e.kind === 'arg' ? { kind: 'arg', index: e.index + by } : e.kind === 'op' ? { ...e, args: e.args.map((a) => shiftArgs(a, by)) } : e;

/**
 * Elementwise user C of elementwise P rewritten to compute P itself: op and own inputs of P, post-op C's
 * expression over P's (extra operands: P's, C's other operands, C's); undefined when C cannot (not elementwise, reads
 * P twice or as a broadcast scalar, a qpost, too many operands).
 */
function recomputeIn(c: Node, p: Node): Pick<Node, 'op' | 'inputs' | 'attrs'> | undefined {
  const cdef = safeOp(c.op);
  if (!cdef?.ew || c.attrs.qpost !== undefined || c.type.dtype !== 'f32') return undefined;
  const kc = postArgs(c.attrs), kp = postArgs(p.attrs);
  const cOwn = c.inputs.slice(0, c.inputs.length - kc), cExtras = c.inputs.slice(c.inputs.length - kc);
  const slot = cOwn.indexOf(p.id);
  if (slot < 0 || cOwn.lastIndexOf(p.id) !== slot || cExtras.includes(p.id) || (cdef.ew.scalarInputs ?? []).includes(slot)) return undefined;
  if (c.type.shape.join(',') !== p.type.shape.join(',')) return undefined;
  const cOthers = cOwn.filter((_, s) => s !== slot);
  const extras = [...p.inputs.slice(p.inputs.length - kp), ...cOthers, ...cExtras];
  if (extras.length > MAX_POST_OPERANDS) return undefined;
  const pExpr: PostExpr = p.attrs.post === undefined ? { kind: 'x' } : parsePost(p.attrs.post as string);
  let j = kp;
  const cOp: PostExpr = { kind: 'op', op: c.op, attrs: opAttrs(c), args: cOwn.map((_, s): PostExpr => (s === slot ? pExpr : { kind: 'arg', index: j++ })) };
  const cPost: PostExpr = c.attrs.post === undefined ? { kind: 'x' } : shiftArgs(parsePost(c.attrs.post as string), kp + cOthers.length);
  const attrs: Attrs = { ...opAttrs(p), post: postToString(substituteX(cPost, cOp)), post_args: extras.length };
  if (c.attrs.qfmt !== undefined) { attrs.qfmt = c.attrs.qfmt; attrs.qround = c.attrs.qround; if (c.attrs.qrole !== undefined) attrs.qrole = c.attrs.qrole; }
  return { op: p.op, inputs: [...p.inputs.slice(0, p.inputs.length - kp), ...extras], attrs };
}

function safeOp(op: string) { try { return getOp(op); } catch { return undefined; } }
