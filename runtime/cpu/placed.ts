/**
 * The CPU interpreter on the concat views' layout (passes/channel-views.ts): the spec of what the WebGPU executor
 * does with them. A placed value exists only as its range of its root's array — its producer's result is scattered
 * there, each reader gathers it from there at the time it reads — a slice read in place computes nothing, and a
 * concat copies only its inputs that are not already in place. A wrong placement (two values on one range, a root
 * overwritten while a member is still read) therefore changes what later nodes read.
 */
import { Graph } from '../../ir/graph.js';
import { Arr } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { ViewIndex, ViewMap, placedInputs, viewIndex } from '../../passes/channel-views.js';

export class PlacedMemory {
  private readonly roots = new Map<number, Arr>();
  private readonly index = new Map<number, ViewIndex>();

  /** `value(id)`: a computed value, for roots that are ordinary values (the input of a slice read in place). */
  constructor(private readonly g: Graph, private readonly views: ViewMap, private readonly alloc: (n: number) => Arr, private readonly value: (id: number) => Arr | undefined) {
    for (const [id, v] of views) this.index.set(id, viewIndex(g, id, v));
  }

  placed(id: number): boolean { return this.views.has(id); }
  /** Runs no op: a slice read in place. */
  readsInPlace(id: number): boolean { return !!this.views.get(id)?.slice; }

  private root(r: number): Arr {
    let a = this.roots.get(r) ?? this.value(r);
    if (!a) { a = this.alloc(numel(this.g.nodes[r].type.shape)); this.roots.set(r, a); }
    return a;
  }

  /** A placed value as its range holds it now. */
  gather(id: number): Arr {
    const { part, stride, off } = this.index.get(id)!, src = this.root(this.views.get(id)!.root);
    const out = this.alloc(numel(this.g.nodes[id].type.shape));
    for (let i = 0; i < out.length; i++) out[i] = src[Math.floor(i / part) * stride + off + (i % part)];
    return out;
  }

  /** Stores a placed value's result at its range. */
  scatter(id: number, v: ArrayLike<number>): void {
    const { part, stride, off } = this.index.get(id)!, dst = this.root(this.views.get(id)!.root);
    for (let i = 0; i < v.length; i++) dst[Math.floor(i / part) * stride + off + (i % part)] = v[i];
  }

  /**
   * A concat that is a root or placed: its inputs not in place are copied to their ranges; the result is the root's
   * array (a root) or its own range. Undefined for a concat whose inputs are not placed in it (it runs as an op:
   * one with an epilogue, or untouched).
   */
  concat(id: number, read: (i: number) => ArrayLike<number>): Arr | undefined {
    const nd = this.g.nodes[id], inPlace = placedInputs(this.g, this.views, id);
    if (nd.epi || (!this.placed(id) && !inPlace.some(Boolean))) return undefined;
    const axis = nd.attrs.axis as number;
    const inner = nd.type.shape.slice(axis + 1).reduce((a, b) => a * b, 1), total = nd.type.shape[axis] * inner;
    const out = this.placed(id) ? undefined : this.root(id);
    let at = 0;
    nd.inputs.forEach((i, j) => {
      const len = this.g.nodes[i].type.shape[axis] * inner;
      if (!inPlace[j]) {
        const x = read(i);
        for (let e = 0; e < x.length; e++) {
          const flat = Math.floor(e / len) * total + at + (e % len); // the input's element in the concat's own indices
          if (out) out[flat] = x[e];
          else this.scatterAt(id, flat, x[e]);
        }
      }
      at += len;
    });
    return out ?? this.gather(id);
  }

  private scatterAt(id: number, flat: number, v: number): void {
    const { part, stride, off } = this.index.get(id)!;
    this.root(this.views.get(id)!.root)[Math.floor(flat / part) * stride + off + (flat % part)] = v;
  }
}
