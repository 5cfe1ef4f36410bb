/**
 * Explicit quantizer sites (the DSL's `quantize(x, 'low')`, QPyTorch's hand-placed `Quantizer` modules) take the
 * formats of the precision spec's named classes (`low=float<3,1>:stochastic`): each `quantize_site` becomes a
 * `quantize` node (forward class → fmt, backward class → bwd_fmt) or, when the spec gives neither class, the
 * identity. Runs first in the quantize pass, before autodiff, like the automatic A/E placement.
 *
 * A spec that defines classes must define every class the model's sites use (or say `hi=f32`), and every class it
 * defines must be used by a role or a site: a mistyped name is an error, not a silently unquantized tensor.
 */
import { Builder, Graph, Module, Node } from '../ir/graph.js';
import { F32 } from '../ir/format.js';
import { PrecisionPolicy, RoleSpec } from '../ir/precision/index.js';
import { LocatedError } from '../ir/types.js';
import { attrsOf } from '../ir/op-registry.js';

export function resolveQuantizeSites(m: Module, policy: PrecisionPolicy | undefined): Module {
  const classes = policy?.classes ?? {};
  const defined = Object.keys(classes);
  const used = new Set(Object.values(policy?.roleClasses ?? {}));
  let sites = 0;
  for (const g of m.graphs)
    for (const n of g.nodes) {
      if (n.op !== 'quantize_site') continue;
      sites++;
      for (const k of ['fwd', 'bwd'] as const) {
        const c = attrsOf(n, 'quantize_site')[k];
        if (c === undefined) continue;
        used.add(c);
        if (defined.length && !classes[c])
          throw new LocatedError(n.loc, `quantize(…, '${c}'): the precision spec defines no class '${c}' (it defines ${defined.join(', ')}); add ${c}=<format>, or ${c}=f32 to leave it unquantized`);
      }
    }
  const unused = defined.filter((c) => !used.has(c));
  if (unused.length)
    throw new Error(`precision spec: class '${unused[0]}' is used by no role and by no quantize() site of model '${m.name}'` +
      (sites ? '' : ' (the model has no quantize() sites)'));
  if (!sites) return m;
  return { ...m, graphs: m.graphs.map((g) => resolveGraph(g, classes)) };
}

function resolveGraph(g0: Graph, classes: Record<string, RoleSpec>): Graph {
  const out: Graph = { name: g0.name, nodes: [], outputs: [], updates: [] };
  const b = new Builder(out);
  const remap: number[] = [];
  for (const n of g0.nodes) {
    const inputs = n.inputs.map((i) => remap[i]);
    remap[n.id] = n.op === 'quantize_site' ? site(b, n, inputs[0], classes) : b.add(n.op, inputs, n.attrs, n.loc);
  }
  out.outputs = g0.outputs.map((o) => ({ name: o.name, node: remap[o.node] }));
  out.updates = g0.updates.map((o) => ({ name: o.name, node: remap[o.node] }));
  return out;
}

function site(b: Builder, n: Node, x: number, classes: Record<string, RoleSpec>): number {
  const { fwd: fwdName, bwd: bwdName } = attrsOf(n, 'quantize_site');
  const fwd = fwdName !== undefined ? classes[fwdName] : undefined;
  const bwd = bwdName !== undefined ? classes[bwdName] : undefined;
  const quantizes = (s: RoleSpec | undefined) => s !== undefined && s.fmt.kind !== 'f32';
  if (!quantizes(fwd) && !quantizes(bwd)) return x;
  return b.add('quantize', [x], {
    fmt: quantizes(fwd) ? fwd!.fmt : F32, rounding: quantizes(fwd) ? fwd!.rounding : 'nearest',
    // the role names the site's classes, so --print-after quantize tells explicit sites from the A/E placement
    role: `site:${fwdName ?? '-'}/${bwdName ?? '-'}`,
    ...(quantizes(bwd) ? { bwd_fmt: bwd!.fmt, bwd_rounding: bwd!.rounding } : {}),
  }, n.loc);
}
