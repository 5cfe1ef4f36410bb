/** Hand-built test graphs for the fusion tests: every node gets its own loc (line = order of creation). */
import { Attrs, Builder, emptyGraph, Graph, Module } from '../../ir/graph.js';
import { Format } from '../../ir/format.js';
import type { Epilogue } from '../../ir/epilogue.js';
import { printEpilogue } from '../../ir/print.js';
import { numel } from '../../ir/types.js';
import { rand } from './helpers.js';

export function testGraph() {
  const g = emptyGraph('g');
  const b = new Builder(g);
  let line = 0;
  const add = (op: string, inputs: number[], attrs: Attrs = {}, epi?: Epilogue) => b.add(op, inputs, attrs, { file: 'm.ts', line: ++line, col: 1 }, epi);
  const q = (x: number, fmt: Format, rounding = 'nearest') => add('quantize', [x], { fmt, rounding, role: 'A' });
  const input = (name: string, shape: number[] = [3, 4]) => add('input', [], { name, kind: 'data', shape, dtype: 'f32' });
  const out = (name: string, node: number) => g.outputs.push({ name, node });
  return { g, add, q, input, out };
}

/** A node's epilogue as the IR text prints it ('' without one). */
export const epiText = (n: { epi?: Epilogue }) => (n.epi ? printEpilogue(n.epi) : '');

export const moduleOf = (g: Graph): Module => ({ version: 1, name: 'm', graphs: [g] });

/** Feeds for every input of `g`: uniform in [−2, 2) from `seed`. */
export function feedsFor(g: Graph, seed: number): Record<string, Float32Array> {
  const r = rand(seed);
  const feeds: Record<string, Float32Array> = {};
  for (const n of g.nodes)
    if (n.op === 'input') feeds[n.attrs.name as string] = Float32Array.from({ length: numel(n.type.shape) }, () => 4 * r() - 2);
  return feeds;
}

/** float32 bit patterns, for exact comparisons. */
export const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
