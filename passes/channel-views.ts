/**
 * Concatenations without copies (plan-concat-views): a planning rule that places the inputs of a `concat` as ranges
 * of the concat's own buffer, so that each input's producer writes its result straight at its offset and the concat
 * moves nothing. Chains nest: DenseNet's running concatenation c_i = concat(new_i, c_{i-1}) puts c_{i-1} inside c_i,
 * and with it every earlier map, so a dense block's feature maps become ranges of one buffer per block (its final
 * concatenation, the root). The gradient side mirrors it: the concat's error splits (slices of 4-D maps) are read in
 * place as ranges of the error, and the node that adds the later layers' part of an error to its own (the BN input
 * gradient with a post-op add) stores the sum over that range, so a block's error is one buffer too.
 *
 * A placed value of shape [..., C, ...] (axis `axis`) at `offset` in a root [..., R, ...] lives at root element
 * (i / part) * stride + off + i % part of its flat index i, where part = C·inner, stride = R·inner, off = offset·inner
 * (inner: the product of the dims after the axis): a batch stride and a channel offset. Kernels reading or writing
 * it use that map (codegen/views.ts); the CPU interpreter can run the same layout (runtime/cpu/placed.ts).
 *
 * Why this is safe: a concat's inputs partition its range, so every placed map is written once, by its producer,
 * into a range no other map covers; the root's buffer stays live from the first write to the last read of any of
 * its members (passes/memory.ts). A slice read in place is never written. An in-place sum reads each element of the
 * slice just before storing over it, and is refused when anything later still reads the range's old values
 * (lateReads) or when one kernel would bind one buffer through two values while writing it (WebGPU forbids
 * writable aliasing within a dispatch).
 *
 * Not placed (the concat copies them, as before): sources (input, state), views (reshape of or to the value),
 * graph outputs and state-update sources, a value already placed by another concat, a value appearing twice, inputs
 * of a concat with an epilogue (its quantizer or post-op applies to the joined result), non-f32 values, and values the
 * caller's `canPlace` refuses (a kernel that cannot address a strided view). Slices with an epilogue (an E
 * quantizer) keep their gather.
 */
import { Graph, Node } from '../ir/graph.js';
import { axisSplit } from '../ir/ops/index.js';
import { postArgs } from '../ir/epilogue.js';
import { shapeEq } from '../ir/types.js';

export interface ChannelView {
  /** The node whose buffer holds the value: a concat that is not itself placed. */
  root: number;
  axis: number;
  /** Start along `axis` in the root. */
  offset: number;
  /** A slice read in place (it runs no kernel); otherwise a value its producer writes at its range. */
  slice?: true;
  /**
   * The slice (read in place) this node's post-op adds and whose range the node's result takes: the kernel reads
   * each element of it and stores the sum over it (a concat gradient's running sum, accumulated in one buffer).
   */
  accumulates?: number;
}

/** Placed values by node id (roots are not in the map: they own their buffer). */
export type ViewMap = Map<number, ChannelView>;

/** The element map of a placed value: flat index i → (i / part) * stride + off + i % part in its root's buffer. */
export interface ViewIndex { part: number; stride: number; off: number }

export function viewIndex(g: Graph, id: number, v: ChannelView): ViewIndex {
  const own = axisSplit(g.nodes[id].type.shape, v.axis), root = axisSplit(g.nodes[v.root].type.shape, v.axis);
  return { part: own.len * own.inner, stride: root.len * root.inner, off: v.offset * own.inner };
}

/** The buffer a node's value lives in: its view's root, or itself. */
export const rootOf = (views: ViewMap, id: number) => views.get(id)?.root ?? id;

/** One kernel's node bindings (its own value, inputs, anything else it binds) and whether it writes them. */
export type KernelBinds = { node: number; write: boolean }[];

export interface ViewOptions {
  /** May `value` be placed as a strided view along `axis` (every kernel binding it can address one)? Default: yes. */
  canPlace?: (value: number, axis: number) => boolean;
  /** Each node's kernels' bindings; default: a kernel per concat input, one kernel reading the inputs otherwise. */
  kernels?: (node: number) => KernelBinds[];
  /** Can `node`'s kernels read post-op operand `operand` from their output (codegen/views.ts)? Default: yes. */
  canAccumulate?: (node: number, operand: number) => boolean;
}

const NO_KERNEL = new Set(['input', 'state', 'reshape']);

function isJoin(nd: Node): boolean {
  return nd.op === 'concat' && !nd.epi && nd.type.dtype === 'f32';
}

/** The views of one graph. */
export function concatViews(g: Graph, o: ViewOptions = {}): ViewMap {
  const excluded = new Set<number>();
  for (;;) {
    const views = place(g, excluded, o.canPlace ?? (() => true), o.canAccumulate ?? (() => true));
    const kernels = o.kernels ?? defaultKernels(g);
    const bad = conflicts(g, views, kernels);
    for (const id of lateReads(g, views, kernels)) bad.add(id);
    if (!bad.size) return views;
    for (const id of bad) excluded.add(id);
  }
}

/** As codegen makes them: a concat copies each input with a kernel of its own, other nodes take one kernel. */
function defaultKernels(g: Graph) {
  return (id: number): KernelBinds[] => {
    const nd = g.nodes[id], self = { node: id, write: true };
    if (isJoin(nd)) return nd.inputs.map((i) => [{ node: i, write: false }, self]);
    return [[...nd.inputs.map((i) => ({ node: i, write: false })), self]];
  };
}

/** A slice read in place: the channel range of its input's buffer (4-D maps only: sequence slices keep their gathers). */
function isRangeRead(nd: Node): boolean {
  return nd.op === 'slice' && !nd.epi && nd.type.dtype === 'f32' && nd.type.shape.length === 4 && (nd.attrs.axis as number) >= 1;
}

function place(g: Graph, excluded: Set<number>, canPlace: (v: number, axis: number) => boolean, canAccumulate: (n: number, s: number) => boolean): ViewMap {
  const pinned = new Set<number>([...g.outputs.map((x) => x.node), ...g.updates.map((x) => x.node)]);
  for (const nd of g.nodes) if (nd.op === 'reshape') { pinned.add(nd.id); pinned.add(nd.inputs[0]); }
  const views: ViewMap = new Map();
  // Last concat first: an outer concat claims its inputs before they are considered as roots themselves.
  for (let id = g.nodes.length - 1; id >= 0; id--) {
    const nd = g.nodes[id];
    if (!isJoin(nd)) continue;
    const axis = nd.attrs.axis as number, self = views.get(id);
    const root = self?.root ?? id, base = self?.offset ?? 0;
    let at = 0;
    for (const i of nd.inputs) {
      const x = g.nodes[i], len = x.type.shape[axis];
      const ok = !NO_KERNEL.has(x.op) && x.type.dtype === 'f32' && !pinned.has(i) && !views.has(i) && !excluded.has(i)
        && nd.inputs.indexOf(i) === nd.inputs.lastIndexOf(i) && canPlace(i, axis);
      if (ok) views.set(i, { root, axis, offset: base + at });
      at += len;
    }
  }
  // Slices (a concat's gradient split) read their range of the input's buffer in place, first to last (a slice of a
  // slice composes). The input's buffer then stays live until the slice's last reader. A node adding such a slice
  // in its post-op (the next error: the BN input gradient plus the later layers' part) takes the slice's range.
  const users = new Map<number, number[]>();
  for (const nd of g.nodes) for (const i of nd.inputs) users.set(i, [...(users.get(i) ?? []), nd.id]);
  for (const nd of g.nodes) {
    if (views.has(nd.id) || pinned.has(nd.id) || excluded.has(nd.id)) continue;
    if (isRangeRead(nd)) {
      const x = nd.inputs[0], axis = nd.attrs.axis as number, xv = views.get(x);
      if (NO_KERNEL.has(g.nodes[x].op) || (xv && xv.axis !== axis) || !canPlace(nd.id, axis)) continue;
      views.set(nd.id, { root: xv?.root ?? x, axis, offset: (xv?.offset ?? 0) + (nd.attrs.start as number), slice: true });
      continue;
    }
    const k = postArgs(nd.epi);
    const s = nd.inputs.slice(nd.inputs.length - k).find((i) => views.get(i)?.slice);
    if (s === undefined || nd.type.dtype !== 'f32' || !shapeEq(nd.type.shape, g.nodes[s].type.shape)) continue;
    if (users.get(s)!.length !== 1 || nd.inputs.indexOf(s) !== nd.inputs.lastIndexOf(s) || !canAccumulate(nd.id, s)) continue;
    const sv = views.get(s)!;
    if (!canPlace(nd.id, sv.axis)) continue;
    views.set(nd.id, { root: sv.root, axis: sv.axis, offset: sv.offset, accumulates: s });
  }
  return views;
}

/**
 * Placed values that would share a buffer with another value a kernel binds while one of them is written (the
 * concat's own copies of its placed inputs do not run, so they do not count): the written ones go back to buffers
 * of their own, or, where the kernel writes the root itself, the placed values it reads.
 */
function conflicts(g: Graph, views: ViewMap, kernels: (node: number) => KernelBinds[]): Set<number> {
  const bad = new Set<number>();
  for (const nd of g.nodes) {
    if (NO_KERNEL.has(nd.op) || views.get(nd.id)?.slice) continue;
    const merged = views.get(nd.id)?.accumulates;
    kernels(nd.id).forEach((all, k) => {
      if (isJoin(nd) && views.get(nd.inputs[k])?.root === rootOf(views, nd.id)) return; // skipped copy
      const binds = all.filter((b) => b.node !== merged); // read from the output itself
      const byRoot = new Map<number, { values: Set<number>; written: Set<number> }>();
      for (const b of binds) {
        const r = rootOf(views, b.node);
        const e = byRoot.get(r) ?? { values: new Set<number>(), written: new Set<number>() };
        e.values.add(b.node);
        if (b.write) e.written.add(b.node);
        byRoot.set(r, e);
      }
      for (const e of byRoot.values()) {
        if (!e.written.size || e.values.size < 2) continue;
        const movable = [...e.written].filter((v) => views.has(v));
        for (const v of movable.length ? movable : [...e.values].filter((x) => views.has(x))) bad.add(v);
      }
    });
  }
  return bad;
}

/**
 * Accumulating nodes whose range someone still reads after them as it was before: a kernel of a later node binding,
 * for reading, a value of the same buffer whose range overlaps and whose data was written before the accumulating
 * node (a slice's data is its input's; reading the accumulated result or anything written later is what is wanted).
 */
function lateReads(g: Graph, views: ViewMap, kernels: (node: number) => KernelBinds[]): Set<number> {
  const acc = [...views].filter(([, v]) => v.accumulates !== undefined);
  const bad = new Set<number>();
  if (!acc.length) return bad;
  const range = (id: number): [number, number] => {
    const v = views.get(id), ax = v?.axis ?? 1;
    const at = v?.offset ?? 0;
    return [at, at + g.nodes[id].type.shape[ax]];
  };
  const written = (id: number): number => (views.get(id)?.slice ? written(g.nodes[id].inputs[0]) : id);
  const byRoot = new Map<number, [number, [number, number]][]>();
  for (const [n, v] of acc) byRoot.set(v.root, [...(byRoot.get(v.root) ?? []), [n, range(n)]]);
  for (const nd of g.nodes) {
    if (NO_KERNEL.has(nd.op) || views.get(nd.id)?.slice) continue;
    const merged = views.get(nd.id)?.accumulates;
    kernels(nd.id).forEach((binds, k) => {
      if (isJoin(nd) && views.get(nd.inputs[k])?.root === rootOf(views, nd.id)) return;
      for (const b of binds) {
        if (b.write || b.node === merged || b.node === nd.id) continue;
        const sums = byRoot.get(rootOf(views, b.node));
        if (!sums) continue;
        const [lo, hi] = range(b.node), at = written(b.node);
        for (const [n, [a, z]] of sums) if (nd.id > n && at < n && lo < z && a < hi) bad.add(n);
      }
    });
  }
  return bad;
}

/** Does the node run no kernel under the views (a slice read in place)? */
export const readsInPlace = (views: ViewMap, id: number) => !!views.get(id)?.slice;

/** Inputs of a concat node whose copy does not run (they are already in place). */
export function placedInputs(g: Graph, views: ViewMap, concat: number): boolean[] {
  const r = rootOf(views, concat);
  return g.nodes[concat].inputs.map((i) => views.get(i)?.root === r);
}
