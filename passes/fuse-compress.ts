/**
 * DIVISION's compression fused into the kernel that produces the activation (issue 6): a `division_compress` whose
 * input is a batch-norm apply (with its folded ReLU / residual add) gets `with_input=true`; its kernel then computes
 * the bn_apply values of each (b, c) plane itself, stores them (the forward still reads them) and compresses them
 * from the workgroup's own stores, while the bn_apply node emits no kernel (codegen/kernels/compress.ts). One
 * dispatch and one pass over the activation fewer; the values and packed words are the unfused kernels'.
 *
 * Conditions: the producer is a training-mode or eval bn_apply without a block-format (bfp/minmax) quantizer, which
 * would need a statistic over the whole tensor before any plane could be stored; and no node before the compress
 * node reads the producer (it computes nothing until the compress node runs). The compress pass places compress
 * nodes right after their producer, so that holds. Node ids, order and locations are unchanged.
 */
import { Format } from '../ir/format.js';
import { Graph, Module } from '../ir/graph.js';

const blockFormat = (f: Format | undefined) => f?.kind === 'bfp' || f?.kind === 'minmax' || f?.kind === 'mx';

export function fuseCompressProducers(m: Module): Module {
  return { ...m, graphs: m.graphs.map(fuseCompressGraph) };
}

export function fuseCompressGraph(g: Graph): Graph {
  const firstUse = new Array<number>(g.nodes.length).fill(Infinity);
  const compressions = new Array<number>(g.nodes.length).fill(0);
  for (const n of g.nodes) {
    for (const i of n.inputs) firstUse[i] = Math.min(firstUse[i], n.id);
    if (n.op === 'division_compress') compressions[n.inputs[0]]++;
  }
  let changed = false;
  const nodes = g.nodes.map((n) => {
    if (n.op !== 'division_compress' || n.attrs.with_input) return n;
    const p = g.nodes[n.inputs[0]];
    if (p.op !== 'bn_apply' || blockFormat(p.epi?.q?.fmt) || firstUse[p.id] !== n.id) return n;
    // the same value compressed twice (never placed so) would compute it twice: only the first takes it
    if (compressions[p.id] > 1) return n;
    changed = true;
    return { ...n, attrs: { ...n.attrs, with_input: true } };
  });
  return changed ? { ...g, nodes } : g;
}
