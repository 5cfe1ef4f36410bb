/**
 * The model-zoo ops' PyTorch references (test/fixtures/zoo/op_grads.json, made by make_op_grads.py beside it) as
 * graphs: the op on data inputs, an upstream gradient `dy`, and the op's gradient rule applied to it, so the CPU
 * interpreter and the WebGPU kernels run the forward and backward nodes exactly as autodiff would add them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Attrs, Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { getOp } from '../../ir/ops/index.js';

export interface ZooCase {
  name: string;
  op: string;
  attrs: Attrs;
  inputs: { shape: number[]; data: number[] }[];
  dy: number[];
  y: { shape: number[]; data: number[] };
  grads: number[][];
}

export function zooCases(): ZooCase[] {
  const file = path.resolve(process.cwd(), 'test/fixtures/zoo/op_grads.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).cases as ZooCase[];
}

export interface CaseGraph {
  g: Graph;
  /** The forward node, and each input's gradient node (in input order). */
  y: number;
  grads: number[];
  /** Values of the input nodes (x0, x1, …, dy) by name and by node id. */
  feeds: Record<string, Float32Array>;
  byId: Map<number, Float32Array>;
}

export function caseGraph(c: ZooCase): CaseGraph {
  const g = emptyGraph('train');
  const b = new Builder(g);
  const feeds: Record<string, Float32Array> = {};
  const byId = new Map<number, Float32Array>();
  const input = (name: string, shape: number[], data: number[]) => {
    const id = b.add('input', [], { name, kind: 'data', shape, dtype: 'f32' });
    feeds[name] = Float32Array.from(data);
    byId.set(id, feeds[name]);
    return id;
  };
  const xs = c.inputs.map((x, i) => input(`x${i}`, x.shape, x.data));
  const y = b.add(c.op, xs, c.attrs);
  const dy = input('dy', c.y.shape, c.dy);
  const grads = getOp(c.op).grad!({
    x: xs, y, dy, attrs: c.attrs, inTypes: xs.map((i) => g.nodes[i].type),
    add: (op, inputs, attrs = {}) => b.add(op, inputs, attrs),
  }).map((d) => d!);
  return { g, y, grads, feeds, byId };
}
