/**
 * The optimizer as graph ops: SGD with momentum and weight decay, PyTorch's torch.optim.SGD semantics
 * (g ← g + wd·w; m ← μ·m + g; w ← w − lr·m; the buffer starts at zero, which equals PyTorch's first-step copy).
 * The learning rate is a runtime scalar input `lr`, so schedules never recompile. The precision policy's optimizer
 * roles (G, ACC, W, M) are placed here, in QPyTorch OptimLP's order.
 */
import { Builder, Graph, Module, stateNodes } from '../ir/graph.js';
import { GRAD_PREFIX } from './autodiff.js';
import { PrecisionPolicy, Role } from '../ir/precision/index.js';
import { usesCptPlacement } from './quantize.js';
import { Loc } from '../ir/types.js';

export interface SgdOptions { kind: 'sgd'; lr: number; momentum: number; wd: number }

export function parseOptimizer(text: string): SgdOptions {
  const m = /^\s*sgd\s*(?:\(([^)]*)\))?\s*$/.exec(text);
  if (!m) throw new Error(`--optimizer: expected sgd(lr=…,momentum=…,wd=…), got '${text}'`);
  const o: SgdOptions = { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 };
  for (const part of (m[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const kv = /^(lr|momentum|wd)\s*=\s*([-+0-9.eE]+)$/.exec(part);
    if (!kv || !Number.isFinite(Number(kv[2])))
      throw new Error(`--optimizer: bad argument '${part}'; expected lr=…, momentum=… or wd=… with a number`);
    o[kv[1] as 'lr' | 'momentum' | 'wd'] = Number(kv[2]);
  }
  const bad = sgdProblem(o);
  if (bad) throw new Error(`--optimizer: ${bad}`);
  return o;
}

/** What is wrong with SGD options (from a flag or a manifest), or undefined. */
export function sgdProblem(o: SgdOptions | undefined): string | undefined {
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!o || o.kind !== 'sgd') return 'not sgd';
  if (!num(o.lr) || !num(o.momentum) || !num(o.wd) || o.lr <= 0 || o.momentum < 0 || o.momentum >= 1 || o.wd < 0)
    return `need lr > 0, 0 ≤ momentum < 1, wd ≥ 0 (got lr=${o.lr}, momentum=${o.momentum}, wd=${o.wd})`;
  return undefined;
}

export function optimizer(m: Module, o: SgdOptions, policy?: PrecisionPolicy): Module {
  // Under CPT's placement W quantizes the weight on its way into each conv (fp32 master weights): not OptimLP's W.
  const roles = policy ? (usesCptPlacement(policy) ? { ...policy.roles, W: undefined } : policy.roles) : {};
  return { ...m, graphs: m.graphs.map((g) => (g.name === 'train' ? sgd(g, o, roles, policy?.lossScale) : g)) };
}

/**
 * SGD inside QPyTorch's OptimLP, in its order: g ← Q_G(g/S) (S the loss scale); with ACC the step starts from the accumulator;
 * the fp32 update (d = g + wd·p; m ← μ·m + d; p ← p − lr·m); acc ← Q_ACC(p), p ← acc; p ← Q_W(p);
 * m ← Q_M(m) (so the next step consumes the quantized buffer). A missing role is the identity.
 */
function sgd(g0: Graph, o: SgdOptions, roles: PrecisionPolicy['roles'], lossScale?: number): Graph {
  const g: Graph = { ...g0, nodes: [...g0.nodes], outputs: [], updates: [...g0.updates] };
  const b = new Builder(g);
  const params = stateNodes(g0);
  const lr = b.add('input', [], { name: 'lr', kind: 'scalar', shape: [1], dtype: 'f32' });
  const q = (role: Role, x: number, loc: Loc | undefined): number => {
    const r = roles[role];
    return r ? b.add('quantize', [x], { fmt: r.fmt, rounding: r.rounding, role }, loc) : x;
  };
  for (const out of g0.outputs) {
    if (!out.name.startsWith(GRAD_PREFIX)) { g.outputs.push(out); continue; }
    const name = out.name.slice(GRAD_PREFIX.length);
    const p = params.get(name)!;
    const loc = p.loc;
    const state = (suffix: string, init: string) =>
      b.add('state', [], { name: `${name}.${suffix}`, kind: 'optim', shape: p.type.shape, init }, loc);
    const acc = roles.ACC ? state('acc', `copy:${name}`) : undefined;
    const base = acc ?? p.id;
    // loss scaling: OptimLP's grad_quant(g · grad_scaling), grad_scaling = float32(1/S), one f32 multiply
    const g1 = lossScale !== undefined && lossScale !== 1 ? b.add('scale', [out.node], { c: Math.fround(1 / lossScale) }, loc) : out.node;
    let d = q('G', g1, loc);
    if (o.wd) d = b.add('add', [d, b.add('scale', [base], { c: o.wd }, loc)], {}, loc);
    if (o.momentum) {
      const buf = state('momentum', 'zeros');
      d = b.add('add', [b.add('scale', [buf], { c: o.momentum }, loc), d], {}, loc);
      g.updates.push({ name: `${name}.momentum`, node: q('M', d, loc) });
    }
    let w = b.add('sub', [base, b.add('mul_scalar', [d, lr], {}, loc)], {}, loc);
    if (acc !== undefined) {
      w = q('ACC', w, loc);
      g.updates.push({ name: `${name}.acc`, node: w });
    }
    g.updates.push({ name, node: q('W', w, loc) });
  }
  return g;
}
