/**
 * pack-state: optimizer roles whose values live only in MX are stored packed (issue 30, "Real storage"): 8/6/4-bit
 * element codes plus one E8M0 byte per block (ir/quant/mx-pack.ts), instead of f32 buffers holding MX values.
 *
 * - `W=mx<…>` with `ACC=…`: the weight is a pure quantized copy (the optimizer updates the accumulator and writes
 *   W = Q_W(acc)); the forward and the backward-data GEMM read it. Without ACC, W is the master copy the update reads
 *   and rewrites (QPyTorch OptimLP's weight_quant): it stays f32.
 * - `M=mx<…>` (SGD's momentum, Adam's exp_avg) and `V=mx<…>` (Adam's exp_avg_sq): state only the update reads.
 * Of weights of two or more axes (GEMM operands) and their optimizer state; vectors stay f32 (packableStates).
 *
 * The state node gets `packed = fmt` (its value is then the u32 words); every node that reads it gets its own
 * format_decompress right before it, so each decoded copy is a transient workspace value (one per consumer: the
 * forward's and the backward's decodes of a weight do not keep an f32 copy alive across the step); the update is
 * format_compress of the quantized value — of the quantizer's input when the role rounds to nearest, since
 * format_compress rounds to nearest itself (the same words: quantizing is idempotent on the MX grid). Restoring is
 * exact (MX codes round-trip every value the quantizer produces, −0 included), so a packed build computes the same
 * bits as one holding f32 buffers, given the same state; the runtime converts at its boundary (setState packs,
 * getState unpacks: runtime/packed-state.ts), so checkpoints still hold f32 tensors.
 */
import { Graph, Module, stateNodes } from '../ir/graph.js';
import { copyNode, rebuild } from '../ir/rewrite.js';
import type { Format } from '../ir/format.js';
import { attrsOf } from '../ir/op-registry.js';

type Mx = Extract<Format, { kind: 'mx' }>;

/**
 * The states of `train` to store packed, with their formats: MX-quantized updates of W (with ACC), M and V, of the
 * GEMM operands (a state of 2 or more axes: conv and linear weights and their optimizer state). Vectors — biases, BN's
 * γ and β, and their momenta — stay f32 buffers holding MX values: under 1% of the parameters, while a packed state
 * costs a decode per reader and an encode per step (ResNet-20 has 39 of them against 22 weights).
 */
export function packableStates(train: Graph): Map<string, Mx> {
  const nodes = stateNodes(train);
  const out = new Map<string, Mx>();
  for (const u of train.updates) {
    const q = train.nodes[u.node];
    if (q.op !== 'quantize' || (nodes.get(u.name)?.type.shape.length ?? 0) < 2) continue;
    const a = attrsOf(q, 'quantize');
    if (a.fmt.kind !== 'mx') continue;
    if (a.role === 'W' ? nodes.has(`${u.name}.acc`) : a.role === 'M' || a.role === 'V') out.set(u.name, a.fmt);
  }
  return out;
}

export function packStatePass(m: Module, enabled = true): Module {
  const train = m.graphs.find((g) => g.name === 'train');
  const packed = enabled && train ? packableStates(train) : new Map<string, Mx>();
  if (!packed.size) return m;
  return { ...m, graphs: m.graphs.map((g) => packGraph(g, packed)) };
}

function packGraph(g: Graph, packed: Map<string, Mx>): Graph {
  const fmtOf = (id: number): Mx | undefined => {
    const n = g.nodes[id];
    return n.op === 'state' ? packed.get(attrsOf(n, 'state').name) : undefined;
  };
  // what each update stores: the quantizer's input (nearest: format_compress rounds the same) or the quantizer
  // (the role then goes on the compression, so `--quant-stats` still reports the site)
  const compressAt = new Map<number, { name: string; role?: string }[]>();
  for (const u of g.updates) {
    if (!packed.has(u.name)) continue;
    const q = g.nodes[u.node], nearest = q.op === 'quantize' && attrsOf(q, 'quantize').rounding !== 'stochastic';
    const at = nearest ? q.inputs[0] : q.id;
    compressAt.set(at, [...(compressAt.get(at) ?? []), { name: u.name, ...(nearest ? { role: String(q.attrs.role) } : {}) }]);
  }
  const stored = new Map<string, number>();
  const out = rebuild(g, (n, ins, b) => {
    let id: number;
    if (n.op === 'state' && fmtOf(n.id)) {
      id = b.add('state', [], { ...n.attrs, packed: fmtOf(n.id)! }, n.loc);
    } else {
      // a decode of each packed state this node reads, right before it
      const decoded = new Map<number, number>();
      const inputs = n.inputs.map((src, k) => {
        const f = fmtOf(src);
        if (!f) return ins[k];
        if (!decoded.has(src)) decoded.set(src, b.add('format_decompress', [ins[k]], { fmt: f, shape: attrsOf(g.nodes[src], 'state').shape }, n.loc));
        return decoded.get(src)!;
      });
      id = copyNode(n, inputs, b);
    }
    for (const { name, role } of compressAt.get(n.id) ?? [])
      stored.set(name, b.add('format_compress', [id], { fmt: packed.get(name)!, ...(role ? { role } : {}) }, n.loc));
    return id;
  });
  out.updates = out.updates.map((u) => (stored.has(u.name) ? { ...u, node: stored.get(u.name)! } : u));
  return out;
}
