/**
 * SWALP's stochastic weight averaging as three extra graphs, derived from a compiled module (the runtime adds them
 * when `lpc run --swa` asks; artifacts are unchanged). The average lives in its own fp32 state — `swa.<param>`
 * for every parameter and `swa.<buffer>` for every BN running-statistics buffer — so evaluating the SWA model never
 * touches the SGD model's state, and nothing here draws random bits.
 *
 *   swa_average  swa.p ← swa.p·keep + p·alpha for every parameter p (inputs `swa_keep` = 1 − 1/(n+1) and
 *                `swa_alpha` = 1/(n+1): SWALP's utils.moving_average, an equal-weight running mean; p holds the
 *                low-precision weights the last step wrote)
 *   swa_bn       the train graph's forward in training mode on the SWA weights, with quantizers removed, updating
 *                swa.<buffer> ← swa.<buffer>·bn_keep + batch·bn_momentum (batch = [mean; unbiased var]); fed
 *                bn_momentum = b/(n+b) per batch it is SWALP's bn_update: an exact cumulative average
 *   swa_eval     the eval graph on swa.* with quantizers removed (SWALP evaluates the SWA model in full precision)
 *
 * Only parameters are averaged; BN buffers are re-estimated (SWALP's bn_update). Removing a quantizer means: a
 * `quantize` (or CPT's eval-mode `minmax_quantize`) node is replaced by its input, and a fused epilogue quantizer
 * (`epi.q`) is dropped, its qpost joining the post-ops.
 */
import { Builder, Graph, Module, Node, dce, emptyGraph, getGraph } from '../ir/graph.js';
import { withoutQuantizer } from '../ir/ops/index.js';
import { attrsOf } from '../ir/op-registry.js';

export const SWA_PREFIX = 'swa.';
export const SWA_AVERAGE = 'swa_average';
export const SWA_BN = 'swa_bn';
export const SWA_EVAL = 'swa_eval';

export interface SwaStateNames { params: string[]; buffers: string[] }

/** Parameters (averaged) and BN running buffers (re-estimated) of a module, in first-appearance order. */
export function swaStates(m: Module): SwaStateNames {
  const params: string[] = [], buffers: string[] = [];
  for (const n of getGraph(m, 'train').nodes) {
    if (n.op !== 'state') continue;
    const name = attrsOf(n, 'state').name;
    if (n.attrs.kind === 'param' && !params.includes(name)) params.push(name);
    if (n.attrs.kind === 'buffer' && !buffers.includes(name)) buffers.push(name);
  }
  return { params, buffers };
}

const scalar = (b: Builder, name: string) => b.add('input', [], { name, kind: 'scalar', shape: [1], dtype: 'f32' });

function swaStateAttrs(n: Node): Node['attrs'] {
  const a: Node['attrs'] = { ...n.attrs, name: SWA_PREFIX + attrsOf(n, 'state').name, kind: 'swa', init: n.attrs.kind === 'buffer' ? n.attrs.init : 'zeros' };
  delete a.bound;
  delete a.packed; // the average is f32 (a packed weight's twin reads it without the decode)
  return a;
}

/**
 * Copies the part of `g` that `roots` need, with quantizers removed and state nodes renamed to their swa.* twins;
 * `replace` may substitute a node (given the builder and its copied inputs). Returns the builder and the id map.
 */
function derive(g: Graph, name: string, roots: number[], replace?: (b: Builder, n: Node, ins: number[]) => number | undefined, rename = true) {
  const live = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...g.nodes[id].inputs);
  }
  const out = emptyGraph(name);
  const b = new Builder(out);
  const map = new Map<number, number>();
  for (const n of g.nodes) {
    if (!live.has(n.id)) continue;
    const ins = n.inputs.map((i) => map.get(i)!);
    if (n.op === 'quantize' || n.op === 'minmax_quantize') { map.set(n.id, ins[0]); continue; }
    const src = g.nodes[n.inputs[0]];
    if (rename && n.op === 'format_decompress' && src?.op === 'state' && src.attrs.packed) {
      // a packed weight's decode (passes/pack-state.ts) reads its f32 twin instead; a decode with post-ops folded in
      // would need them kept (no model makes one: weights feed GEMMs and gathers)
      if (n.epi) throw new Error(`swa: the decode of packed '${String(src.attrs.name)}' carries an epilogue; compile with --pack-state off`);
      map.set(n.id, ins[0]);
      continue;
    }
    const r = replace?.(b, n, ins);
    if (r !== undefined) { map.set(n.id, r); continue; }
    if (rename && n.op === 'state' && (n.attrs.kind === 'param' || n.attrs.kind === 'buffer')) {
      map.set(n.id, b.add('state', [], swaStateAttrs(n), n.loc));
      continue;
    }
    map.set(n.id, b.add(n.op, ins, n.attrs, n.loc, withoutQuantizer(n.epi)));
  }
  return { graph: out, b, map };
}

/**
 * `g` (an evaluation graph) in full precision: quantizers removed as for swa_eval, state names kept, then what only
 * a removed quantizer read (CPT's running activation range) dropped. `lpc eval --fp32` runs it.
 */
export function withoutQuantizers(g: Graph, name = g.name): Graph {
  const d = derive(g, name, g.outputs.map((o) => o.node), undefined, false);
  for (const o of g.outputs) d.graph.outputs.push({ name: o.name, node: d.map.get(o.node)! });
  return dce(d.graph);
}

/** The module with the three SWA graphs added (a module that already has them is returned unchanged). */
export function withSwa(m: Module): Module {
  if (m.graphs.some((g) => g.name === SWA_AVERAGE)) return m;
  const train = getGraph(m, 'train'), evalG = getGraph(m, 'eval');
  const firstState = new Map<string, Node>();
  for (const n of train.nodes) if (n.op === 'state' && !firstState.has(attrsOf(n, 'state').name)) firstState.set(attrsOf(n, 'state').name, n);
  const { params } = swaStates(m);

  // swa_average
  const avg = emptyGraph(SWA_AVERAGE);
  const ab = new Builder(avg);
  const keep = scalar(ab, 'swa_keep'), alpha = scalar(ab, 'swa_alpha');
  for (const p of params) {
    const src = firstState.get(p)!;
    let w = ab.add('state', [], { ...src.attrs }, src.loc);
    const packed = attrsOf(src, 'state').packed; // the weight held packed (passes/pack-state.ts): decoded first
    if (packed) w = ab.add('format_decompress', [w], { fmt: packed, shape: attrsOf(src, 'state').shape }, src.loc);
    const s = ab.add('state', [], swaStateAttrs(src), src.loc);
    const v = ab.add('add', [ab.add('mul_scalar', [s, keep], {}, src.loc), ab.add('mul_scalar', [w, alpha], {}, src.loc)], {}, src.loc);
    avg.updates.push({ name: SWA_PREFIX + p, node: v });
  }

  // swa_bn: the forward of the train graph up to the running-statistics updates.
  // (CPT's activation ranges, also buffers, are not needed: the SWA model is evaluated without quantizers)
  const bnUpdates = train.updates.filter((u) => firstState.get(u.name)?.attrs.kind === 'buffer' && train.nodes[u.node].op === 'bn_running_update');
  let bnKeep = -1, bnMom = -1;
  const bn = derive(train, SWA_BN, bnUpdates.map((u) => u.node), (b, n, ins) => {
    if (n.op !== 'bn_running_update') return undefined;
    if (bnKeep < 0) { bnKeep = scalar(b, 'bn_keep'); bnMom = scalar(b, 'bn_momentum'); }
    // momentum 1 gives [batch mean; unbiased batch variance] exactly (0·r + 1·batch)
    const batch = b.add('bn_running_update', ins, { ...n.attrs, momentum: 1 }, n.loc);
    return b.add('add', [b.add('mul_scalar', [ins[0], bnKeep], {}, n.loc), b.add('mul_scalar', [batch, bnMom], {}, n.loc)], {}, n.loc);
  });
  for (const u of bnUpdates) bn.graph.updates.push({ name: SWA_PREFIX + u.name, node: bn.map.get(u.node)! });

  // swa_eval
  const ev = derive(evalG, SWA_EVAL, evalG.outputs.map((o) => o.node));
  for (const o of evalG.outputs) ev.graph.outputs.push({ name: o.name, node: ev.map.get(o.node)! });

  // dce: a removed quantizer's own inputs (CPT's running activation range) are no longer needed
  return { ...m, graphs: [...m.graphs, avg, ...(bnUpdates.length ? [bn.graph] : []), dce(ev.graph)] };
}
