/**
 * The runtime's side of packed state (passes/pack-state.ts): a backend holds a packed state as its MX words, while
 * everything outside it (initialisation, checkpoints, `--init-from`, `lpc eval`, SWA, `--check-numerics`) sees f32
 * tensors of the declared shape. setState packs (nearest rounding: values already on the grid, as every value a
 * training step stores is, pack losslessly; an f32 initial weight is rounded once), getState unpacks. Words travel in
 * Float32Arrays as bit patterns (the interpreter's and the buffers' storage), never as numbers.
 */
import { Module } from '../ir/graph.js';
import type { Format } from '../ir/format.js';
import { numel } from '../ir/types.js';
import { mxPack, mxUnpack } from '../ir/quant/mx-pack.js';
import { attrsOf } from '../ir/op-registry.js';

type Mx = Extract<Format, { kind: 'mx' }>;
export interface PackedState { fmt: Mx; shape: number[] }

/** The packed states of a module, by name. */
export function packedStates(m: Module): Map<string, PackedState> {
  const out = new Map<string, PackedState>();
  for (const g of m.graphs)
    for (const n of g.nodes) {
      if (n.op !== 'state') continue;
      const a = attrsOf(n, 'state');
      if (a.packed) out.set(a.name, { fmt: a.packed as Mx, shape: a.shape });
    }
  return out;
}

/** f32 values of the declared shape → the packed words, as f32 bit patterns. */
export function packValues(p: PackedState, v: ArrayLike<number>): Float32Array {
  if (v.length !== numel(p.shape)) throw new Error(`packed state expects ${numel(p.shape)} values, got ${v.length}`);
  const w = mxPack(v instanceof Float32Array ? v : Float32Array.from(v), p.shape, p.fmt);
  return new Float32Array(w.buffer, w.byteOffset, w.length);
}

/** Packed words (f32 bit patterns) → the f32 values. */
export function unpackValues(p: PackedState, words: Float32Array): Float32Array {
  const out = new Float32Array(numel(p.shape));
  mxUnpack(new Uint32Array(words.buffer, words.byteOffset, words.length), p.shape, p.fmt, out);
  return out;
}

/** A state map as a backend stores it (packed states as words). */
export function toStorage(packed: Map<string, PackedState>, state: Map<string, Float32Array>): Map<string, Float32Array> {
  if (!packed.size) return state;
  return new Map([...state].map(([k, v]) => [k, packed.has(k) ? packValues(packed.get(k)!, v) : v]));
}

/** A stored state map as f32 tensors. */
export function fromStorage(packed: Map<string, PackedState>, state: Map<string, Float32Array>): Map<string, Float32Array> {
  if (!packed.size) return state;
  return new Map([...state].map(([k, v]) => [k, packed.has(k) ? unpackValues(packed.get(k)!, v) : v]));
}
