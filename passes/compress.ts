/**
 * The compress pass (DIVISION, research/seeds.md §4; `save=division(block=K,bits=Q)` in the precision spec): backward
 * reads of saved forward values go through a packed form, as DIVISION's modules save them:
 *
 * | backward read                                   | saved as                                    |
 * |-------------------------------------------------|---------------------------------------------|
 * | conv2d_bwd_weight's x (every conv, incl. the first on the image and 1×1 shortcuts); bn_bwd_x's and bn_bwd_sums' x | division_compress → division_decompress (LFC bf16 + Q-bit HFC) |
 * | relu_bwd's x                                    | mask_compress → mask_decompress (1 bit)     |
 * | relu6_bwd's y                                   | mask_compress{upper=6} → mask_decompress (1 bit: 0 < y < 6) |
 * | maxpool_bwd's x (padded too)                    | argmax_compress → maxpool_bwd_argmax (8 bits per output) |
 *
 * Everything else stays f32, as in DIVISION: linear layers' inputs (matmul), the logits, BN's batch statistics,
 * and maps DIVISION leaves uncompressed (not 4-D, H = 1, W smaller than the window: ir/quant/division.ts).
 *
 * `save=<format>` (fp16, bf16, float<e,m>, fixed<wl,fl> of at most 16 bits; ir/quant/save.ts) stores conv and BN
 * inputs of any shape, and also the linear layers' inputs (matmul ta=true's x), as format_compress →
 * format_decompress (the format's nearest rounding, codes packed 2 or 4 per word); ReLU and max pooling keep their
 * exact 1-bit mask (ReLU6 too) and 8-bit argmax, which are smaller and lossless.
 *
 * `save=recompute` (recomputeGraph below) saves nothing packed: cheap ops are recomputed in backward instead.
 *
 * Placement: a compress node right after the value's producer (the f32 original then dies with its last forward
 * use; the packed words live until backward), a decompress node right before the first backward reader (shared by
 * the readers of the same value). Forward = ancestors of the graph's outputs; backward = descendants of a `fill`
 * outside the forward (the loss seed), as the memory planner classifies them. Only the `train` graph changes.
 */
import { Graph, Module, outputAncestors } from '../ir/graph.js';
import { copyNode, rebuild } from '../ir/rewrite.js';
import { divisionLayout } from '../ir/quant/division.js';
import { saveFormatError } from '../ir/quant/save.js';
import { PrecisionPolicy, SaveSpec } from '../ir/precision/index.js';
import { attrsOf } from '../ir/op-registry.js';

/** Ops that store a forward value for backward (their results are saved activations) … */
export const COMPRESS_OPS: ReadonlySet<string> = new Set(['division_compress', 'format_compress', 'mask_compress', 'argmax_compress']);
/** … and the ops that restore it in backward. */
export const DECOMPRESS_OPS: ReadonlySet<string> = new Set(['division_decompress', 'format_decompress', 'mask_decompress']);

type Kind = 'division' | 'format' | 'mask' | 'mask6' | 'argmax';
/** The backward reads a ReLU-style mask restores (relu6_bwd passes the error where 0 < y < 6: its mask's upper). */
const MASK_KIND: Record<string, Kind> = { relu_bwd: 'mask', relu6_bwd: 'mask6' };
type Save = Exclude<SaveSpec, { kind: 'recompute' }>;

export function compressPass(m: Module, policy: PrecisionPolicy | undefined): Module {
  const save = policy?.save;
  if (!save) return m;
  if (save.kind === 'recompute') return { ...m, graphs: m.graphs.map((g) => (g.name === 'train' ? recomputeGraph(g) : g)) };
  if (save.kind === 'format') {
    const err = saveFormatError(save.fmt);
    if (err) throw new Error(err);
  }
  return { ...m, graphs: m.graphs.map((g) => (g.name === 'train' ? compressGraph(g, save) : g)) };
}

/** Forward and backward marks (see the file comment). */
export function forwardBackward(g: Graph): { fwd: boolean[]; bwd: boolean[] } {
  const n = g.nodes.length;
  const fwd = outputAncestors(g);
  const bwd = new Array<boolean>(n).fill(false);
  for (const nd of g.nodes) bwd[nd.id] = !fwd[nd.id] && (nd.op === 'fill' || nd.inputs.some((i) => bwd[i]));
  return { fwd, bwd };
}

function compressGraph(g: Graph, save: Save): Graph {
  const { fwd, bwd } = forwardBackward(g);
  const kindOf = (nd: Graph['nodes'][number], slot: number, src: number): Kind | undefined => {
    const t = g.nodes[src].type, op = nd.op;
    if (slot !== 1 || t.dtype !== 'f32') return undefined;
    if (op === 'conv2d_bwd_weight' || op === 'bn_bwd_x' || op === 'bn_bwd_sums') {
      if (save.kind === 'format') return 'format';
      return divisionLayout(t.shape, save.block, save.bits) ? 'division' : undefined;
    }
    // the linear layer's input, read by its weight gradient dW = dyᵀ·x (DIVISION leaves it f32)
    if (op === 'matmul' && nd.attrs.ta === true && save.kind === 'format') return 'format';
    if (MASK_KIND[op]) return MASK_KIND[op];
    return undefined;
  };
  // What each saved value needs: compress kinds (argmax per window shape).
  const need = new Map<number, Set<string>>();
  const want = (v: number, key: string) => { if (!need.has(v)) need.set(v, new Set()); need.get(v)!.add(key); };
  for (const nd of g.nodes) {
    if (!bwd[nd.id]) continue;
    nd.inputs.forEach((v, slot) => {
      if (!fwd[v] || g.nodes[v].op === 'state') return;
      if (nd.op === 'maxpool_bwd' && slot === 1 && attrsOf(nd, 'maxpool_bwd').k <= 16) want(v, `argmax:${nd.attrs.k}:${nd.attrs.stride}:${attrsOf(nd, 'maxpool_bwd').pad ?? 0}`);
      else { const k = kindOf(nd, slot, v); if (k) want(v, k); }
    });
  }
  // relu_bwd reads relu's output; where backward also reads that value raw (a linear layer's input, …) the f32
  // value is kept anyway and a mask would only add bytes.
  for (const nd of g.nodes) {
    if (!bwd[nd.id]) continue;
    nd.inputs.forEach((v, slot) => {
      if (!fwd[v] || g.nodes[v].op === 'state' || MASK_KIND[nd.op]) return;
      if (nd.op === 'maxpool_bwd' && slot === 1) return;
      if (!kindOf(nd, slot, v)) { need.get(v)?.delete('mask'); need.get(v)?.delete('mask6'); }
    });
  }
  for (const [v, keys] of need) if (!keys.size) need.delete(v);
  if (!need.size) return g;

  const packed = new Map<string, number>(); // `${value}:${key}` → compress node
  const restored = new Map<string, number>(); // `${value}:${kind}` → decompress node
  return rebuild(g, (nd, ins, b) => {
    if (bwd[nd.id] && nd.inputs.some((v) => need.has(v))) {
      const x = nd.inputs[1];
      const shape = g.nodes[x]?.type.shape;
      const pad = nd.op === 'maxpool_bwd' ? attrsOf(nd, 'maxpool_bwd').pad ?? 0 : 0;
      const argmax = `${x}:argmax:${nd.attrs.k}:${nd.attrs.stride}:${pad}`;
      if (nd.op === 'maxpool_bwd' && packed.has(argmax)) {
        return b.add('maxpool_bwd_argmax', [ins[0], packed.get(argmax)!],
          { k: nd.attrs.k, stride: nd.attrs.stride, in_shape: shape, ...(pad ? { pad } : {}) }, nd.loc);
      }
      const kind = kindOf(nd, 1, x);
      const key = `${x}:${kind}`;
      if ((kind === 'division' || kind === 'format' || kind === 'mask' || kind === 'mask6') && packed.has(key)) {
        let r = restored.get(key);
        if (r === undefined) {
          r = kind === 'division' && save.kind === 'division'
            ? b.add('division_decompress', [packed.get(key)!], { block: save.block, bits: save.bits, shape }, nd.loc)
            : kind === 'format' && save.kind === 'format'
              ? b.add('format_decompress', [packed.get(key)!], { fmt: save.fmt, shape }, nd.loc)
              : b.add('mask_decompress', [packed.get(key)!], { shape }, nd.loc);
          restored.set(key, r);
        }
        ins[1] = r;
      }
    }
    const id = copyNode(nd, ins, b);
    for (const key of need.get(nd.id) ?? []) {
      const [kind, k, stride, pad] = key.split(':');
      const c = kind === 'division' && save.kind === 'division' ? b.add('division_compress', [id], { block: save.block, bits: save.bits }, nd.loc)
        : kind === 'format' && save.kind === 'format' ? b.add('format_compress', [id], { fmt: save.fmt }, nd.loc)
        : kind === 'mask' ? b.add('mask_compress', [id], {}, nd.loc)
        : kind === 'mask6' ? b.add('mask_compress', [id], { upper: 6 }, nd.loc)
          : b.add('argmax_compress', [id], { k: Number(k), stride: Number(stride), ...(Number(pad) ? { pad: Number(pad) } : {}) }, nd.loc);
      packed.set(`${nd.id}:${key}`, c);
    }
    return id;
  });
}

/**
 * `save=recompute`: cheap forward ops whose inputs backward keeps anyway are run again in backward instead of having
 * their results saved. Recomputable: relu, bn_apply (from the saved BN input and batch statistics), add, max/avg
 * pooling, reshape, and quantize with nearest rounding — deterministic ops, so the recomputed value has the bits of
 * the original and training is bit-identical to saving it. A value is recomputed when its producer is one of those
 * and each of its inputs is a state or graph input, a value backward reads anyway and that is not itself
 * recomputable (so stays saved: a conv output, BN statistics, …), or recomputable in turn (chains such as relu(add(bn_apply(…), …))).
 * The clones go right before the first backward reader that needs them (shared by later readers); the original
 * then dies in the forward. Only the `train` graph changes.
 */
const RECOMPUTE_OPS: ReadonlySet<string> = new Set(['relu', 'bn_apply', 'add', 'maxpool', 'avgpool', 'reshape', 'quantize']);

function recomputeGraph(g: Graph): Graph {
  const { fwd, bwd } = forwardBackward(g);
  const readByBwd = new Array<boolean>(g.nodes.length).fill(false);
  for (const nd of g.nodes) if (bwd[nd.id]) for (const v of nd.inputs) if (fwd[v]) readByBwd[v] = true;
  const isSource = (v: number) => g.nodes[v].op === 'state' || g.nodes[v].op === 'input';
  const memo = new Map<number, boolean>();
  const recomputable = (v: number): boolean => {
    if (memo.has(v)) return memo.get(v)!;
    memo.set(v, false); // no cycles in a DAG, but keep the recursion finite regardless
    const nd = g.nodes[v];
    let ok = fwd[v] && RECOMPUTE_OPS.has(nd.op) && !nd.epi?.q && !nd.epi?.post &&
      (nd.op !== 'quantize' || (nd.attrs.rounding ?? 'nearest') === 'nearest');
    if (ok) ok = nd.inputs.every((u) => isSource(u) || recomputable(u) || readByBwd[u]);
    memo.set(v, ok);
    return ok;
  };
  const targets = new Set(g.nodes.filter((nd) => readByBwd[nd.id] && !isSource(nd.id) && recomputable(nd.id)).map((nd) => nd.id));
  if (!targets.size) return g;

  const clone = new Map<number, number>();
  return rebuild(g, (nd, ins, b, remap) => {
    const recompute = (v: number): number => {
      if (isSource(v) || !recomputable(v)) return remap[v];
      let c = clone.get(v);
      if (c === undefined) {
        const n = g.nodes[v];
        c = b.add(n.op, n.inputs.map(recompute), n.attrs, n.loc);
        clone.set(v, c);
      }
      return c;
    };
    return copyNode(nd, bwd[nd.id] ? nd.inputs.map((v) => (targets.has(v) ? recompute(v) : remap[v])) : ins, b);
  });
}
