/**
 * The optimizer as graph ops, PyTorch's semantics:
 * - SGD with momentum and weight decay, torch.optim.SGD (g ← g + wd·w; m ← μ·m + g; w ← w − lr·m; the buffer starts
 *   at zero, which equals PyTorch's first-step copy);
 * - Adam / AdamW, torch.optim.Adam / AdamW (Adam: L2 decay g ← g + wd·p; AdamW: decoupled p ← p·(1 − lr·wd) first;
 *   m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², p ← p − (lr/(1−β1^t))·m / (sqrt(v)/sqrt(1−β2^t) + eps)), with the
 *   bias corrections step inputs (ir/step-inputs.ts: t is the run's 1-based global step, so a resumed run continues).
 * The learning rate is a runtime scalar input `lr`, so schedules never recompile (Adam's step size reads it too). The
 * precision policy's optimizer roles (G, ACC, W, M, V) are placed here, in QPyTorch OptimLP's order.
 */
import { Builder, Graph, Module, stateNodes } from '../ir/graph.js';
import { GRAD_PREFIX } from './autodiff.js';
import { PrecisionPolicy, Role, scheduledRoles } from '../ir/precision/index.js';
import { usesCptPlacement } from './quantize.js';
import { Loc } from '../ir/types.js';

export interface SgdOptions { kind: 'sgd'; lr: number; momentum: number; wd: number }
/** `adam`: L2 weight decay (torch.optim.Adam); `adamw`: decoupled weight decay (torch.optim.AdamW). */
export interface AdamOptions { kind: 'adam' | 'adamw'; lr: number; betas: [number, number]; eps: number; wd: number }
export type OptimizerOptions = SgdOptions | AdamOptions;

const DEFAULTS: Record<OptimizerOptions['kind'], OptimizerOptions> = {
  sgd: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 },
  // PyTorch's defaults (AdamW's weight_decay is 1e-2)
  adam: { kind: 'adam', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, wd: 0 },
  adamw: { kind: 'adamw', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, wd: 1e-2 },
};
const KEYS = { sgd: ['lr', 'momentum', 'wd'], adam: ['lr', 'betas', 'eps', 'wd'], adamw: ['lr', 'betas', 'eps', 'wd'] } as const;
const USAGE = 'expected sgd(lr=…,momentum=…,wd=…), adam(lr=…,betas=(β1,β2),eps=…,wd=…) or adamw(…)';
const NUM = '[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?';

/** `sgd(lr=0.05,momentum=0.9,wd=5e-4)`, `adam(lr=1e-3,betas=(0.9,0.999),eps=1e-8,wd=0)`, `adamw(…)`; absent keys default. */
export function parseOptimizer(text: string): OptimizerOptions {
  const m = /^\s*([A-Za-z]\w*)\s*(?:\((.*)\))?\s*$/s.exec(text);
  const kind = m?.[1] as OptimizerOptions['kind'] | undefined;
  if (!m || !kind || !Object.hasOwn(DEFAULTS, kind)) throw new Error(`--optimizer: ${USAGE}, got '${text}'`);
  const o = structuredClone(DEFAULTS[kind]) as unknown as Record<string, unknown>;
  const keys: readonly string[] = KEYS[kind];
  // arguments split at commas outside parentheses (betas=(0.9,0.999))
  const parts: string[] = [];
  let depth = 0, cur = '';
  for (const ch of m[2] ?? '') {
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; continue; }
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    cur += ch;
  }
  parts.push(cur);
  const seen = new Set<string>();
  for (const part of parts.map((s) => s.trim()).filter(Boolean)) {
    const kv = /^(\w+)\s*=\s*(.*)$/s.exec(part);
    const expect = `expected ${keys.map((k) => (k === 'betas' ? 'betas=(β1,β2)' : `${k}=…`)).join(', ')}`;
    if (!kv || !keys.includes(kv[1])) throw new Error(`--optimizer: ${kind}: bad argument '${part}'; ${expect}`);
    if (seen.has(kv[1])) throw new Error(`--optimizer: ${kind}: ${kv[1]} is given twice`);
    seen.add(kv[1]);
    if (kv[1] === 'betas') {
      const b = new RegExp(`^\\(\\s*(${NUM})\\s*,\\s*(${NUM})\\s*\\)$`).exec(kv[2].trim());
      if (!b) throw new Error(`--optimizer: ${kind}: bad argument '${part}'; expected betas=(β1,β2) with two numbers`);
      o.betas = [Number(b[1]), Number(b[2])];
    } else {
      if (!new RegExp(`^${NUM}$`).test(kv[2].trim())) throw new Error(`--optimizer: ${kind}: bad argument '${part}'; ${expect} with a number`);
      o[kv[1]] = Number(kv[2]);
    }
  }
  const opt = o as unknown as OptimizerOptions;
  const bad = optimizerProblem(opt);
  if (bad) throw new Error(`--optimizer: ${bad}`);
  return opt;
}

/** The canonical text of optimizer options (parseOptimizer reads it back). */
export function formatOptimizer(o: OptimizerOptions): string {
  return o.kind === 'sgd' ? `sgd(lr=${o.lr},momentum=${o.momentum},wd=${o.wd})`
    : `${o.kind}(lr=${o.lr},betas=(${o.betas[0]},${o.betas[1]}),eps=${o.eps},wd=${o.wd})`;
}

/** What is wrong with optimizer options (from a flag or a manifest), or undefined. */
export function optimizerProblem(o: OptimizerOptions | undefined): string | undefined {
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!o || typeof o !== 'object') return 'no optimizer';
  if (o.kind === 'sgd') return sgdProblem(o);
  if (o.kind !== 'adam' && o.kind !== 'adamw') return `unknown optimizer kind ${JSON.stringify((o as { kind: unknown }).kind)}`;
  const extra = Object.keys(o).find((k) => !['kind', ...KEYS[o.kind]].includes(k));
  if (extra) return `${o.kind}: unknown option '${extra}'`;
  const betas = Array.isArray(o.betas) && o.betas.length === 2 && o.betas.every(num) ? o.betas : undefined;
  if (!num(o.lr) || o.lr <= 0) return `${o.kind}: need lr > 0 (got lr=${o.lr})`;
  if (!betas || betas.some((b) => b < 0 || b >= 1)) return `${o.kind}: need betas in [0, 1) (got betas=${JSON.stringify(o.betas)})`;
  if (!num(o.eps) || o.eps <= 0) return `${o.kind}: need eps > 0 (got eps=${o.eps})`;
  if (!num(o.wd) || o.wd < 0) return `${o.kind}: need wd ≥ 0 (got wd=${o.wd})`;
  return undefined;
}

/** What is wrong with SGD options, or undefined. */
export function sgdProblem(o: SgdOptions | undefined): string | undefined {
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!o || o.kind !== 'sgd') return 'not sgd';
  if (!num(o.lr) || !num(o.momentum) || !num(o.wd) || o.lr <= 0 || o.momentum < 0 || o.momentum >= 1 || o.wd < 0)
    return `need lr > 0, 0 ≤ momentum < 1, wd ≥ 0 (got lr=${o.lr}, momentum=${o.momentum}, wd=${o.wd})`;
  return undefined;
}

export function optimizer(m: Module, o: OptimizerOptions, policy?: PrecisionPolicy): Module {
  // Under CPT's placement W quantizes the weight on its way into each conv (fp32 master weights): not OptimLP's W.
  // A schedule's fwd width reaches OptimLP's W too (mx<intB>): the weights rounded after step t, at step t's width.
  const roles = policy ? (usesCptPlacement(policy) ? { ...policy.roles, W: undefined } : { ...policy.roles, W: scheduledRoles(policy).W }) : {};
  return { ...m, graphs: m.graphs.map((g) => (g.name === 'train' ? step(g, o, roles, policy?.lossScale) : g)) };
}

/**
 * The step inside QPyTorch's OptimLP, in its order: g ← Q_G(g/S) (S the loss scale); with ACC the step starts from the
 * accumulator; the fp32 update (SGD: d = g + wd·p; m ← μ·m + d; p ← p − lr·m. Adam: see adamUpdate);
 * acc ← Q_ACC(p), p ← acc; p ← Q_W(p); the state after the step: SGD's m ← Q_M(m), Adam's exp_avg ← Q_M(m) and
 * exp_avg_sq ← Q_V(v) (so the next step consumes the quantized buffers; OptimLP's momentum_quant quantizes both of
 * Adam's moments, V=… the same as M=… reproduces it). A missing role is the identity.
 */
function step(g0: Graph, o: OptimizerOptions, roles: PrecisionPolicy['roles'], lossScale?: number): Graph {
  const g: Graph = { ...g0, nodes: [...g0.nodes], outputs: [], updates: [...g0.updates] };
  const b = new Builder(g);
  const params = stateNodes(g0);
  const lr = b.add('input', [], { name: 'lr', kind: 'scalar', shape: [1], dtype: 'f32' });
  const q = (role: Role, x: number, loc: Loc | undefined): number => {
    const r = roles[role];
    return r ? b.add('quantize', [x], { fmt: r.fmt, rounding: r.rounding, role }, loc) : x;
  };
  const adam = o.kind === 'sgd' ? undefined : adamScalars(b, o, lr);
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
    let w: number;
    if (o.kind === 'sgd') {
      if (o.wd) d = b.add('add', [d, b.add('scale', [base], { c: o.wd }, loc)], {}, loc);
      if (o.momentum) {
        const buf = state('momentum', 'zeros');
        d = b.add('add', [b.add('scale', [buf], { c: o.momentum }, loc), d], {}, loc);
        g.updates.push({ name: `${name}.momentum`, node: q('M', d, loc) });
      }
      w = b.add('sub', [base, b.add('mul_scalar', [d, lr], {}, loc)], {}, loc);
    } else {
      const u = adamUpdate(b, o, adam!, base, d, state('exp_avg', 'zeros'), state('exp_avg_sq', 'zeros'), loc);
      g.updates.push({ name: `${name}.exp_avg`, node: q('M', u.m, loc) }, { name: `${name}.exp_avg_sq`, node: q('V', u.v, loc) });
      w = u.w;
    }
    if (acc !== undefined) {
      w = q('ACC', w, loc);
      g.updates.push({ name: `${name}.acc`, node: w });
    }
    g.updates.push({ name, node: q('W', w, loc) });
  }
  return g;
}

interface AdamScalars { stepSize: number; bc2Sqrt: number; decay?: number }

/**
 * Adam's per-step scalars, shared by every parameter: step_size = lr / (1 − β1^t) and sqrt(1 − β2^t) (the bias
 * corrections are step inputs, computed in float64 from the step as PyTorch does), and AdamW's 1 − lr·wd.
 */
function adamScalars(b: Builder, o: AdamOptions, lr: number): AdamScalars {
  const stepInput = (name: string, kind: string, beta: number) => b.add('input', [], { name, kind, shape: [1], dtype: 'f32', beta });
  const bc1 = stepInput('adam.bias_correction1', 'bias_correction', o.betas[0]);
  const bc2Sqrt = stepInput('adam.bias_correction2_sqrt', 'bias_correction_sqrt', o.betas[1]);
  const decay = o.kind === 'adamw' && o.wd ? b.add('add_const', [b.add('scale', [lr], { c: Math.fround(-o.wd) })], { c: 1 }) : undefined;
  return { stepSize: b.add('div', [lr, bc1], {}), bc2Sqrt, ...(decay !== undefined ? { decay } : {}) };
}

/**
 * One Adam/AdamW step of a parameter in f32 (torch.optim.Adam, single-tensor path; the constants rounded to f32 as a
 * tensor op rounds a Python float): AdamW p ← p·(1 − lr·wd); Adam g ← g + wd·p; m ← β1·m + (1−β1)·g;
 * v ← β2·v + (1−β2)·g·g; p ← p − (step_size·m) / (sqrt(v) / sqrt(1 − β2^t) + eps).
 */
function adamUpdate(b: Builder, o: AdamOptions, s: AdamScalars, base: number, d: number, m0: number, v0: number, loc: Loc | undefined): { m: number; v: number; w: number } {
  const f = Math.fround, [b1, b2] = o.betas;
  const scale = (x: number, c: number) => b.add('scale', [x], { c: f(c) }, loc);
  const add = (x: number, y: number) => b.add('add', [x, y], {}, loc);
  if (o.kind === 'adam' && o.wd) d = add(d, scale(base, o.wd));
  const p = s.decay !== undefined ? b.add('mul_scalar', [base, s.decay], {}, loc) : base;
  const m = add(scale(m0, b1), scale(d, 1 - b1));
  const v = add(scale(v0, b2), scale(b.add('mul', [d, d], {}, loc), 1 - b2));
  const denom = b.add('add_const', [b.add('div_scalar', [b.add('sqrt', [v], {}, loc), s.bc2Sqrt], {}, loc)], { c: f(o.eps) }, loc);
  const w = b.add('sub', [p, b.add('div', [b.add('mul_scalar', [m, s.stepSize], {}, loc), denom], {}, loc)], {}, loc);
  return { m, v, w };
}
