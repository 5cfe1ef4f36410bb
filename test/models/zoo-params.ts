/** The parameters of a traced model by name and shape, as the zoo tests compare them with PyTorch's (torch_params.json). */
import { Graph, Module } from '../../ir/graph.js';

export const trainGraph = (m: Module): Graph => m.graphs.find((g) => g.name === 'train')!;

export function params(g: Graph): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const n of g.nodes) if (n.op === 'state' && n.attrs.kind === 'param') out[n.attrs.name as string] = n.attrs.shape as number[];
  return out;
}

export const count = (ps: Record<string, number[]>): number => Object.values(ps).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
