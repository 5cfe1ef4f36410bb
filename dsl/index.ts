/**
 * The model-authoring API. A model file imports only this module ("lpc/dsl") and is ordinary TypeScript:
 * helper functions and loops are fine because the compiler traces the model by running it.
 */
import { checkOwnTensor, currentTrace, madeBy, TraceContext } from './trace.js';
import { CLASS_NAME } from '../ir/precision/policy.js';
import { MAX_CONCAT_INPUTS } from '../ir/ops/helpers.js';

/** A traced tensor. `shape` includes the batch dimension. */
export class Tensor {
  /** @internal */
  constructor(readonly id: number, readonly shape: readonly number[]) {}
}

/**
 * What the user asked for at compile time (`lpc compile --input 1x28x28 --classes 100`); a field is undefined when
 * not given, so a model writes its own default: `input(o.input ?? [3, 32, 32])`, `linear(h, o.classes ?? 10)`.
 * The compiler checks that the traced model honoured each given option (input shape, logits width; depth and width
 * it must read).
 */
export interface ModelOptions {
  /** One sample's shape, without the batch dimension, e.g. [1, 28, 28]. */
  readonly input?: number[];
  /** The number of classes: the width of the logits. */
  readonly classes?: number;
  /** `--depth N`: the network's depth as the model defines it (WRN's 28 in WRN-28-10). */
  readonly depth?: number;
  /** `--width K`: the network's width as the model defines it (WRN's widen factor, the 10 in WRN-28-10). */
  readonly width?: number;
}

export interface ModelDef {
  readonly kind: 'lpc.model';
  readonly name: string;
  /** Builds the forward graph from the compile options; returns the logits [N, classes]. */
  readonly build: (options: ModelOptions) => Tensor;
}

/** Declares a model. The function runs at compile time, once per traced graph (train, eval). */
export function model(name: string, build: (options: ModelOptions) => Tensor): ModelDef {
  if (!/^[A-Za-z_][\w.-]*$/.test(name)) throw new Error(`model name '${name}' must be an identifier`);
  if (typeof build !== 'function') throw new Error(`model '${name}': the second argument must be the build function (options) => logits`);
  return { kind: 'lpc.model', name, build };
}

function ctx(what: string): TraceContext { return currentTrace(what); }
function node(c: TraceContext, op: string, inputs: Tensor[], attrs: Record<string, number | boolean | number[] | string> = {}): Tensor {
  const id = c.builder.add(op, inputs.map((t) => t.id), attrs, c.loc);
  return madeBy(new Tensor(id, c.builder.type(id).shape), c);
}
function check(cond: boolean, msg: string): void { if (!cond) throw new Error(msg); }
function posInt(v: unknown, what: string): number {
  check(Number.isInteger(v) && (v as number) > 0, `${what} must be a positive integer, got ${String(v)}`);
  return v as number;
}
function nonNegInt(v: unknown, what: string): number {
  check(Number.isInteger(v) && (v as number) >= 0, `${what} must be a non-negative integer, got ${String(v)}`);
  return v as number;
}
function tensorArg(x: unknown, what: string): Tensor {
  check(x instanceof Tensor, `${what} expects a Tensor, got ${typeof x}`);
  checkOwnTensor(x as Tensor, what);
  return x as Tensor;
}

/** A parameter (or buffer) of the layer being built, named `<layer>.<field>` like PyTorch's state_dict. */
function state(c: TraceContext, layer: string, field: string, shape: number[], init: string, bound = 0, kind = 'param'): Tensor {
  const name = `${layer}.${field}`;
  check(!c.stateNames.has(name), `layer name '${layer}' is used twice (its '${name}' exists already); give each layer its own name`);
  c.stateNames.add(name);
  const attrs: Record<string, string | number[] | number> = { name, kind, shape, init };
  if (init === 'uniform') attrs.bound = bound;
  if (init === 'normal') attrs.std = bound;
  return node(c, 'state', [], attrs);
}
/** A weight drawn from `init` (default: PyTorch's uniform ±1/√fan_in). */
function weight(c: TraceContext, layer: string, shape: number[], fanIn: number, fanOut: number, init?: Init): Tensor {
  if (init === undefined) return state(c, layer, 'weight', shape, 'uniform', 1 / Math.sqrt(fanIn));
  check(isInit(init), `init must come from kaimingNormal(), kaimingUniform(), normal() or uniform(), got ${typeof init}`);
  const s = init.scale(fanIn, fanOut);
  return state(c, layer, 'weight', shape, init.dist, s);
}
function layerName(c: TraceContext, kind: string, name?: string): string {
  const prefix = c.scopes.length ? `${c.scopes.join('.')}.` : '';
  if (name !== undefined) return prefix + name;
  const key = `${prefix}|${kind}`;
  const k = c.counters.get(key) ?? 0;
  c.counters.set(key, k + 1);
  return `${prefix}${kind}${k}`;
}
/** Marks t as the output of a module-like call (see TraceContext.records). */
function rec(c: TraceContext, t: Tensor): Tensor { c.records.push(t.id); return t; }

/** How a layer's weight is initialised: a distribution and its scale (std or bound) from the layer's fans. */
export interface Init {
  readonly kind: 'lpc.init';
  readonly dist: 'normal' | 'uniform';
  /** std (normal) or bound (uniform) from fan_in and fan_out (conv: channels × k × k, as PyTorch computes them). */
  readonly scale: (fanIn: number, fanOut: number) => number;
}
function isInit(v: unknown): v is Init { return typeof v === 'object' && v !== null && (v as Init).kind === 'lpc.init'; }
function fanMode(mode: unknown): 'fan_in' | 'fan_out' {
  check(mode === 'fan_in' || mode === 'fan_out', `init mode must be 'fan_in' or 'fan_out', got ${String(mode)}`);
  return mode as 'fan_in' | 'fan_out';
}
function positive(v: unknown, what: string): number {
  check(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what} must be a positive number, got ${String(v)}`);
  return v as number;
}
/** He/Kaiming normal: N(0, gain²/fan), gain √2 (ReLU) as torch.nn.init.kaiming_normal_. */
export function kaimingNormal(mode: 'fan_in' | 'fan_out' = 'fan_in', gain = Math.SQRT2): Init {
  const m = fanMode(mode), g = positive(gain, 'kaimingNormal gain');
  return { kind: 'lpc.init', dist: 'normal', scale: (i, o) => g / Math.sqrt(m === 'fan_in' ? i : o) };
}
/** He/Kaiming uniform: U(±gain·√(3/fan)), as torch.nn.init.kaiming_uniform_. */
export function kaimingUniform(mode: 'fan_in' | 'fan_out' = 'fan_in', gain = Math.SQRT2): Init {
  const m = fanMode(mode), g = positive(gain, 'kaimingUniform gain');
  return { kind: 'lpc.init', dist: 'uniform', scale: (i, o) => g * Math.sqrt(3 / (m === 'fan_in' ? i : o)) };
}
/** N(0, std²). */
export function normal(std: number): Init {
  const s = positive(std, 'normal std');
  return { kind: 'lpc.init', dist: 'normal', scale: () => s };
}
/** U(−bound, bound). */
export function uniform(bound: number): Init {
  const b = positive(bound, 'uniform bound');
  return { kind: 'lpc.init', dist: 'uniform', scale: () => b };
}

/**
 * Layers built inside `fn` are named `<name>.<layer>` (`scope('layer1.0', () => conv2d(h, { out: 64, kernel: 3,
 * name: 'conv1' }))` makes `layer1.0.conv1.weight`), as a PyTorch submodule names its state_dict entries; automatic
 * names (conv0, bn0, …) count from 0 in each scope. Returns what fn returns; a returned tensor counts as the
 * block's output (a module call, for PEPPP's memory accounting).
 */
export function scope<T>(name: string, fn: () => T): T {
  const c = ctx('scope');
  check(typeof name === 'string' && /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(name), `scope name must be dot-separated identifiers or numbers like 'layer1.0', got ${JSON.stringify(name)}`);
  check(typeof fn === 'function', 'scope expects a function as its second argument');
  c.scopes.push(name);
  try {
    const out = fn();
    if (out instanceof Tensor) { checkOwnTensor(out, `scope('${name}')`); rec(c, out); }
    return out;
  } finally {
    c.scopes.pop();
  }
}

/** Precision classes of an explicit quantizer site: forward and backward (either may be left out: identity). */
export interface QuantizeClasses { forward?: string; backward?: string }
/**
 * An explicit quantizer site, QPyTorch's `Quantizer(forward_number, backward_number)`: the forward value is rounded
 * to the precision class's format and, on the way back, the error to the backward class's (the gradient otherwise
 * passes straight through). `quantize(x, 'low')` uses one class both ways. The precision spec defines the classes
 * (`--precision 'low=float<3,1>:stochastic high=…'`); a site whose class the spec leaves out is the identity.
 */
export function quantize(x: Tensor, cls: string | QuantizeClasses): Tensor {
  const c = ctx('quantize');
  tensorArg(x, 'quantize');
  const o: QuantizeClasses = typeof cls === 'string' ? { forward: cls, backward: cls } : cls;
  check(typeof o === 'object' && o !== null, `quantize expects a class name like 'low' or { forward, backward }, got ${String(cls)}`);
  check(o.forward !== undefined || o.backward !== undefined, 'quantize needs a forward or a backward class');
  const attrs: Record<string, string> = {};
  for (const [k, v] of [['fwd', o.forward], ['bwd', o.backward]] as const) {
    if (v === undefined) continue;
    check(typeof v === 'string' && CLASS_NAME.test(v), `quantize: a precision class is a lower-case name like 'low', got ${JSON.stringify(v)}`);
    attrs[k] = v;
  }
  return rec(c, node(c, 'quantize_site', [x], attrs));
}

/** The model input: one sample's shape, e.g. [1, 28, 28]; the batch dimension is added at compile time. */
export function input(shape: number[]): Tensor {
  const c = ctx('input');
  check(Array.isArray(shape) && shape.length > 0, 'input expects a non-empty shape like [1, 28, 28]');
  shape.forEach((d, i) => posInt(d, `input shape[${i}]`));
  check(c.inputId === undefined, 'a model has exactly one input()');
  const t = node(c, 'input', [], { name: 'x', kind: 'data', shape: [c.opts.batch, ...shape], dtype: 'f32' });
  c.inputId = t.id;
  return t;
}

export interface Conv2dOptions {
  out: number; kernel: number; stride?: number; pad?: number; bias?: boolean; name?: string; init?: Init;
  /** Grouped convolution (torch.nn.Conv2d groups): must divide the input and output channels; = channels is
   *  depthwise. Weights [out, in/groups, k, k]. */
  groups?: number;
}
/** 2-D convolution, NCHW, weights [out, in/groups, k, k]; PyTorch's default init (uniform ±1/√fan_in). */
export function conv2d(x: Tensor, o: Conv2dOptions): Tensor {
  const c = ctx('conv2d');
  tensorArg(x, 'conv2d');
  check(x.shape.length === 4, `conv2d expects 4-D input [N, C, H, W], got [${x.shape.join(', ')}]`);
  const out = posInt(o.out, 'conv2d out'), k = posInt(o.kernel, 'conv2d kernel');
  const stride = posInt(o.stride ?? 1, 'conv2d stride'), pad = nonNegInt(o.pad ?? 0, 'conv2d pad');
  const groups = posInt(o.groups ?? 1, 'conv2d groups');
  check(x.shape[1] % groups === 0 && out % groups === 0,
    `conv2d: groups ${groups} must divide the input channels (${x.shape[1]}) and the output channels (${out})`);
  // PyTorch's fans of a grouped conv (torch.nn.init._calculate_fan_in_and_fan_out): in = (in/groups)·k², out = out·k²
  const name = layerName(c, 'conv', o.name), cin = x.shape[1] / groups, bound = 1 / Math.sqrt(cin * k * k);
  const w = weight(c, name, [out, cin, k, k], cin * k * k, out * k * k, o.init);
  const ins = [x, w];
  if (o.bias ?? true) ins.push(state(c, name, 'bias', [out], 'uniform', bound));
  return rec(c, node(c, 'conv2d', ins, groups === 1 ? { stride, pad } : { stride, pad, groups }));
}

export interface LinearOptions {
  bias?: boolean; name?: string; init?: Init;
  /** The output of an embedding whose weight [vocab, dim] this layer uses as its own W [out, in] (weight tying, GPT-2's
   *  `lm_head.weight = wte.weight`): one parameter, its gradient the sum of both uses; the layer's bias stays its own. */
  tiedTo?: Tensor;
}
/** y = x·Wᵀ + b, W [out, in]. */
export function linear(x: Tensor, out: number, o: LinearOptions = {}): Tensor {
  const c = ctx('linear');
  tensorArg(x, 'linear');
  // [N, T, features] too (a sequence; the last axis, as torch.nn.Linear); a 4-D map is a missing flatten()
  check(x.shape.length === 2 || x.shape.length === 3, `linear expects 2-D input [N, features], got [${x.shape.join(', ')}]; use flatten() first (or [N, T, features] for a sequence)`);
  posInt(out, 'linear out');
  const K = x.shape[x.shape.length - 1];
  const name = layerName(c, 'linear', o.name), bound = 1 / Math.sqrt(K);
  // [N, T, K] is applied as [N·T, K], viewed back afterwards
  const flat = x.shape.length === 2 ? x : node(c, 'reshape', [x], { shape: [x.shape.slice(0, -1).reduce((a, b) => a * b, 1), K] });
  const ins = [flat, o.tiedTo === undefined ? weight(c, name, [out, K], K, out, o.init) : tiedWeight(c, o.tiedTo, [out, K], o.init)];
  if (o.bias ?? true) ins.push(state(c, name, 'bias', [out], 'uniform', bound));
  const y = node(c, 'linear', ins);
  return rec(c, x.shape.length === 2 ? y : node(c, 'reshape', [y], { shape: [...x.shape.slice(0, -1), out] }));
}

/** The weight of the embedding that produced `emb`, checked to be a linear weight of `shape` (see LinearOptions.tiedTo). */
function tiedWeight(c: TraceContext, emb: unknown, shape: number[], init?: Init): Tensor {
  check(init === undefined, 'linear: a tied weight (tiedTo) is the embedding\'s, so it takes no init of its own');
  const e = tensorArg(emb, 'linear tiedTo');
  const n = c.builder.graph.nodes[e.id];
  check(n.op === 'embedding', `linear tiedTo expects the output of embedding(), got the output of ${n.op}`);
  const w = c.builder.graph.nodes[n.inputs[1]];
  const ws = c.builder.type(w.id).shape;
  check(ws.join('x') === shape.join('x'), `linear tiedTo: the embedding's weight [${ws.join(', ')}] is not this layer's weight [${shape.join(', ')}] ` +
    '(the embedding\'s vocabulary must be the output width and its dimension the input width)');
  return new Tensor(w.id, ws);
}

export function relu(x: Tensor): Tensor { const c = ctx('relu'); return rec(c, node(c, 'relu', [tensorArg(x, 'relu')])); }
/** min(max(x, 0), 6), as torch.nn.ReLU6 (MobileNetV2). */
export function relu6(x: Tensor): Tensor { const c = ctx('relu6'); return rec(c, node(c, 'relu6', [tensorArg(x, 'relu6')])); }

/**
 * Dropout with drop probability p (torch.nn.Dropout: kept values scaled by 1/(1 − p)) in training; the identity in
 * evaluation. The mask comes from the run's seed and step, so a run is reproducible and both backends agree.
 */
export function dropout(x: Tensor, p = 0.5): Tensor {
  const c = ctx('dropout');
  tensorArg(x, 'dropout');
  check(typeof p === 'number' && p >= 0 && p < 1, `dropout p must be in [0, 1), got ${String(p)}`);
  const key = c.counters.get('dropout') ?? 0;
  c.counters.set('dropout', key + 1);
  if (!c.opts.training || p === 0) return rec(c, x);
  return rec(c, node(c, 'dropout', [x], { p, key }));
}

export function add(a: Tensor, b: Tensor): Tensor {
  return node(ctx('add'), 'add', [tensorArg(a, 'add'), tensorArg(b, 'add')]);
}

function pool(op: string, what: string, x: Tensor, k: number, stride?: number, pad = 0): Tensor {
  const c = ctx(what);
  tensorArg(x, what);
  posInt(k, `${what} kernel`);
  const attrs: Record<string, number> = { k, stride: posInt(stride ?? k, `${what} stride`) };
  if (nonNegInt(pad, `${what} pad`) > 0) attrs.pad = pad;
  return rec(c, node(c, op, [x], attrs));
}
/** Max pooling with a k×k window (stride defaults to k) and −∞ padding `pad` ≤ k/2 (default 0), as
 *  nn.MaxPool2d(k, stride, pad): `maxPool(h, 3, 2, 1)` is the ImageNet ResNets' stem pool. */
export function maxPool(x: Tensor, k: number, stride?: number, pad = 0): Tensor { return pool('maxpool', 'maxPool', x, k, stride, pad); }
export function avgPool(x: Tensor, k: number, stride?: number): Tensor { return pool('avgpool', 'avgPool', x, k, stride); }
/** Average over the whole H×W map: [N, C, H, W] → [N, C, 1, 1] (as nn.AdaptiveAvgPool2d(1)); any map size. */
export function globalAvgPool(x: Tensor): Tensor {
  const c = ctx('globalAvgPool');
  tensorArg(x, 'globalAvgPool');
  check(x.shape.length === 4, `globalAvgPool expects 4-D input [N, C, H, W], got [${x.shape.join(', ')}]`);
  // a square map keeps its plain average pool (the graphs of existing models stay as they were)
  if (x.shape[2] === x.shape[3]) return rec(c, node(c, 'avgpool', [x], { k: x.shape[2], stride: x.shape[2] }));
  return rec(c, node(c, 'adaptive_avgpool', [x], { out_hw: [1, 1] }));
}
/** Average pooling to an `size` × `size` (or [h, w]) map over PyTorch's adaptive windows, as nn.AdaptiveAvgPool2d. */
export function adaptiveAvgPool(x: Tensor, size: number | [number, number]): Tensor {
  const c = ctx('adaptiveAvgPool');
  tensorArg(x, 'adaptiveAvgPool');
  check(x.shape.length === 4, `adaptiveAvgPool expects 4-D input [N, C, H, W], got [${x.shape.join(', ')}]`);
  const [oh, ow] = typeof size === 'number' ? [size, size] : Array.isArray(size) && size.length === 2 ? size : [NaN, NaN];
  posInt(oh, 'adaptiveAvgPool output height');
  posInt(ow, 'adaptiveAvgPool output width');
  check(oh <= x.shape[2] && ow <= x.shape[3], `adaptiveAvgPool: output ${oh}×${ow} is larger than the input ${x.shape[2]}×${x.shape[3]}`);
  return rec(c, node(c, 'adaptive_avgpool', [x], { out_hw: [oh, ow] }));
}

/**
 * Joins tensors along `axis` (default 1, the channels), as torch.cat(xs, axis): every other dimension must agree.
 * Its gradient splits the error into each input's part.
 */
export function concat(xs: Tensor[], axis = 1): Tensor {
  const c = ctx('concat');
  check(Array.isArray(xs) && xs.length >= 1, 'concat expects a non-empty array of tensors');
  xs.forEach((x, i) => tensorArg(x, `concat input ${i}`));
  check(Number.isInteger(axis) && axis >= 1 && axis < xs[0].shape.length, `concat axis must be between 1 and ${xs[0].shape.length - 1} (axis 0 is the batch), got ${String(axis)}`);
  xs.forEach((x, i) => check(x.shape.length === xs[0].shape.length && x.shape.every((d, j) => j === axis || d === xs[0].shape[j]),
    `concat along axis ${axis}: input ${i} [${x.shape.join(', ')}] does not match input 0 [${xs[0].shape.join(', ')}] outside that axis`));
  if (xs.length === 1) return xs[0];
  // one concat node takes at most MAX_CONCAT_INPUTS inputs: join longer lists in runs
  if (xs.length > MAX_CONCAT_INPUTS) {
    const runs: Tensor[] = [];
    for (let i = 0; i < xs.length; i += MAX_CONCAT_INPUTS) runs.push(concat(xs.slice(i, i + MAX_CONCAT_INPUTS), axis));
    return concat(runs, axis);
  }
  return node(c, 'concat', xs, { axis });
}

/** [N, …] → [N, prod(…)] in NCHW order (as torch.flatten(x, 1)). */
export function flatten(x: Tensor): Tensor {
  const c = ctx('flatten');
  tensorArg(x, 'flatten');
  const n = x.shape.slice(1).reduce((a, b) => a * b, 1);
  return node(c, 'reshape', [x], { shape: [x.shape[0], n] });
}

export interface BatchNormOptions { eps?: number; momentum?: number; name?: string }
/** Batch norm over channels (axis 1): batch statistics and a running-statistics update in training, running
 *  statistics in evaluation — as torch.nn.BatchNorm2d/1d (eps 1e-5, momentum 0.1). */
export function batchNorm(x: Tensor, o: BatchNormOptions = {}): Tensor {
  const c = ctx('batchNorm');
  tensorArg(x, 'batchNorm');
  check(x.shape.length === 4 || x.shape.length === 2, `batchNorm expects [N, C, H, W] or [N, C], got [${x.shape.join(', ')}]`);
  const eps = o.eps ?? 1e-5, momentum = o.momentum ?? 0.1, C = x.shape[1];
  check(typeof eps === 'number' && Number.isFinite(eps) && eps > 0, `batchNorm eps must be a positive number, got ${String(eps)}`);
  check(typeof momentum === 'number' && momentum >= 0 && momentum <= 1, `batchNorm momentum must be in [0, 1], got ${String(momentum)}`);
  const name = layerName(c, 'bn', o.name);
  const gamma = state(c, name, 'weight', [C], 'ones');
  const beta = state(c, name, 'bias', [C], 'zeros');
  // Running mean and variance kept together as [2, C]; exported as running_mean / running_var.
  const running = state(c, name, 'running', [2, C], 'bn_running', 0, 'buffer');
  if (!c.opts.training) return rec(c, node(c, 'bn_apply', [x, running, gamma, beta], { eps, training: false }));
  const stats = node(c, 'bn_stats', [x]);
  const count = x.shape.length === 4 ? x.shape[0] * x.shape[2] * x.shape[3] : x.shape[0];
  const upd = node(c, 'bn_running_update', [running, stats], { momentum, count });
  c.builder.graph.updates.push({ name: `${name}.running`, node: upd.id });
  return rec(c, node(c, 'bn_apply', [x, stats, gamma, beta], { eps, training: true }));
}

/** Softmax cross-entropy of logits [N, classes] against the integer labels fed as `y` (−1 = padding, ignored).
 *  The compiler adds it after the model's logits; records `loss` and `correct` outputs. */
export function crossEntropy(logits: Tensor): Tensor {
  const c = ctx('crossEntropy');
  tensorArg(logits, 'crossEntropy');
  check(logits.shape.length === 2 || logits.shape.length === 3,
    `the model must return logits [N, classes] (or [N, T, vocabulary] for a sequence), got [${logits.shape.join(', ')}]`);
  // a sequence [N, T, V] with targets [N, T]: the mean over all N·T tokens, as [N·T, V] against [N·T]
  const y = node(c, 'input', [], { name: 'y', kind: 'label', shape: logits.shape.slice(0, -1), dtype: 'i32' });
  const seq = logits.shape.length === 3, V = logits.shape[logits.shape.length - 1], rows = logits.shape[0] * (seq ? logits.shape[1] : 1);
  const z = seq ? node(c, 'reshape', [logits], { shape: [rows, V] }) : logits, lab = seq ? node(c, 'reshape', [y], { shape: [rows] }) : y;
  const loss = node(c, 'softmax_xent', [z, lab]);
  const correct = node(c, 'correct_count', [z, lab]);
  c.builder.graph.outputs.push({ name: 'loss', node: loss.id }, { name: 'correct', node: correct.id });
  return loss;
}

// ---------- sequence models (issue 29) ----------

/**
 * The model input of a sequence model: `seqLen` token ids per sample, i32 [batch, seqLen] (fed as `x`; the targets
 * `y` [batch, seqLen] are the next tokens). A model has one input: this or input().
 */
export function tokens(seqLen: number): Tensor {
  const c = ctx('tokens');
  posInt(seqLen, 'tokens seqLen');
  check(c.inputId === undefined, 'a model has exactly one input() or tokens()');
  const t = node(c, 'input', [], { name: 'x', kind: 'data', shape: [c.opts.batch, seqLen], dtype: 'i32' });
  c.inputId = t.id;
  return t;
}

/** The position of each token, i32 [batch, T] (0 … T−1 in every row): embed it for learned position embeddings. */
export function positions(ids: Tensor): Tensor {
  const c = ctx('positions');
  tensorArg(ids, 'positions');
  check(ids.shape.length === 2, `positions expects token ids [N, T], got [${ids.shape.join(', ')}]`);
  return node(c, 'positions', [], { shape: [...ids.shape] });
}

export interface EmbeddingOptions { name?: string; init?: Init }
/** Token embedding (torch.nn.Embedding): ids [N, T] → [N, T, dim], weight [vocab, dim] initialised N(0, 1). */
export function embedding(ids: Tensor, vocab: number, dim: number, o: EmbeddingOptions = {}): Tensor {
  const c = ctx('embedding');
  tensorArg(ids, 'embedding');
  posInt(vocab, 'embedding vocab');
  posInt(dim, 'embedding dim');
  // a position embedding with fewer rows than the sequence has positions: a sequence longer than the model's
  const T = ids.shape[ids.shape.length - 1];
  check(c.builder.graph.nodes[ids.id].op !== 'positions' || vocab >= T,
    `embedding: a sequence of ${T} tokens is longer than this position embedding's ${vocab} rows (positions 0..${T - 1}); ` +
    `compile with --seq-len ${vocab} or less, or give it as many rows as the sequence (embedding(positions(x), x.shape[1], dim))`);
  const name = layerName(c, 'embedding', o.name);
  const w = o.init === undefined ? state(c, name, 'weight', [vocab, dim], 'normal', 1) : weight(c, name, [vocab, dim], dim, vocab, o.init);
  return rec(c, node(c, 'embedding', [ids, w]));
}

export interface LayerNormOptions { eps?: number; name?: string }
/** Layer norm over the last axis (torch.nn.LayerNorm(features), eps 1e-5; γ = 1, β = 0). Computed in f32. */
export function layerNorm(x: Tensor, o: LayerNormOptions = {}): Tensor {
  const c = ctx('layerNorm');
  tensorArg(x, 'layerNorm');
  check(x.shape.length >= 2, `layerNorm expects [N, …, features], got [${x.shape.join(', ')}]`);
  const eps = o.eps ?? 1e-5, D = x.shape[x.shape.length - 1];
  check(typeof eps === 'number' && Number.isFinite(eps) && eps > 0, `layerNorm eps must be a positive number, got ${String(eps)}`);
  const name = layerName(c, 'ln', o.name);
  const gamma = state(c, name, 'weight', [D], 'ones'), beta = state(c, name, 'bias', [D], 'zeros');
  return rec(c, node(c, 'layernorm', [x, gamma, beta], { eps }));
}

/** GELU, PyTorch's exact form x·Φ(x) (approximate='none'). */
export function gelu(x: Tensor): Tensor { const c = ctx('gelu'); return rec(c, node(c, 'gelu', [tensorArg(x, 'gelu')])); }
export function tanh(x: Tensor): Tensor { const c = ctx('tanh'); return rec(c, node(c, 'tanh', [tensorArg(x, 'tanh')])); }
export function sigmoid(x: Tensor): Tensor { const c = ctx('sigmoid'); return rec(c, node(c, 'sigmoid', [tensorArg(x, 'sigmoid')])); }
export function mul(a: Tensor, b: Tensor): Tensor { return node(ctx('mul'), 'mul', [tensorArg(a, 'mul'), tensorArg(b, 'mul')]); }
/** x·k for a constant k. */
export function scale(x: Tensor, k: number): Tensor {
  const c = ctx('scale');
  check(typeof k === 'number' && Number.isFinite(k), `scale expects a finite number, got ${String(k)}`);
  return node(c, 'scale', [tensorArg(x, 'scale')], { c: k });
}

export interface MatmulOptions { transposeA?: boolean; transposeB?: boolean }
/** op(a)·op(b) over the last two axes, batched over the leading ones (which must be equal), as torch.matmul. */
export function matmul(a: Tensor, b: Tensor, o: MatmulOptions = {}): Tensor {
  const c = ctx('matmul');
  tensorArg(a, 'matmul'); tensorArg(b, 'matmul');
  return rec(c, node(c, 'batch_matmul', [a, b], { ta: !!o.transposeA, tb: !!o.transposeB }));
}

/** The axes of x reordered: output axis k is input axis perm[k] (torch.permute; axis 0 is the batch). */
export function permute(x: Tensor, perm: number[]): Tensor {
  const c = ctx('permute');
  tensorArg(x, 'permute');
  return node(c, 'permute', [x], { perm: [...perm] });
}
/** Swaps two axes (default the last two), as torch.transpose. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const c = ctx('transpose');
  tensorArg(x, 'transpose');
  const r = x.shape.length, i = a < 0 ? a + r : a, j = b < 0 ? b + r : b;
  check(Number.isInteger(i) && Number.isInteger(j) && i >= 0 && j >= 0 && i < r && j < r, `transpose axes ${a}, ${b} are outside the ${r} axes of [${x.shape.join(', ')}]`);
  const perm = Array.from({ length: r }, (_, k) => k);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return node(c, 'permute', [x], { perm });
}
/** A view of x with another shape of the same size; the batch axis stays first (shape includes it). */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const c = ctx('reshape');
  tensorArg(x, 'reshape');
  check(Array.isArray(shape) && shape.length > 0, 'reshape expects a shape like [N, T, 4, 16]');
  shape.forEach((d, i) => posInt(d, `reshape shape[${i}]`));
  check(shape[0] === x.shape[0], `reshape keeps the batch axis first: [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  return node(c, 'reshape', [x], { shape: [...shape] });
}

export interface SoftmaxOptions { causal?: boolean }
/** Softmax over the last axis; `causal` masks scores [..., T, T] so that row i sees columns j ≤ i. Computed in f32. */
export function softmax(x: Tensor, o: SoftmaxOptions = {}): Tensor {
  const c = ctx('softmax');
  return rec(c, node(c, 'softmax', [tensorArg(x, 'softmax')], { causal: !!o.causal }));
}

export interface AttentionOptions { heads: number; causal?: boolean; name?: string }
/**
 * Multi-head self-attention over x [N, T, D] (torch.nn.MultiheadAttention's computation with separate q, k, v
 * projections `<name>.q`, `.k`, `.v` and the output projection `.proj`): per head softmax(q·kᵀ/√(D/heads)) · v,
 * causal by default (a decoder).
 */
export function selfAttention(x: Tensor, o: AttentionOptions): Tensor {
  const c = ctx('selfAttention');
  tensorArg(x, 'selfAttention');
  check(x.shape.length === 3, `selfAttention expects [N, T, features], got [${x.shape.join(', ')}]`);
  const [N, T, D] = x.shape, H = posInt(o.heads, 'selfAttention heads');
  check(D % H === 0, `selfAttention: ${H} heads do not divide the width ${D}`);
  const dh = D / H, full = layerName(c, 'attn', o.name), local = full.slice(c.scopes.length ? c.scopes.join('.').length + 1 : 0);
  return scope(local, () => {
    const heads = (t: Tensor) => permute(reshape(t, [N, T, H, dh]), [0, 2, 1, 3]);     // [N, H, T, dh]
    const q = heads(linear(x, D, { name: 'q' })), k = heads(linear(x, D, { name: 'k' })), v = heads(linear(x, D, { name: 'v' }));
    const p = softmax(scale(matmul(q, k, { transposeB: true }), 1 / Math.sqrt(dh)), { causal: o.causal ?? true });
    const y = reshape(permute(matmul(p, v), [0, 2, 1, 3]), [N, T, D]);
    return linear(y, D, { name: 'proj' });
  });
}

export interface LstmOptions { name?: string }
/**
 * One LSTM layer over x [N, T, D] → the hidden states [N, T, hidden] (torch.nn.LSTM(D, hidden, batch_first=True)
 * from zero initial states), unrolled at compile time: per step the gates i, f, g, o of W_ih·x_t + b_ih + W_hh·h +
 * b_hh, c ← f·c + i·g, h ← o·tanh(c). Parameters as PyTorch names them: `<name>.weight_ih_l0` [4·hidden, D],
 * `weight_hh_l0` [4·hidden, hidden], `bias_ih_l0`, `bias_hh_l0`, all U(±1/√hidden).
 */
export function lstm(x: Tensor, hidden: number, o: LstmOptions = {}): Tensor {
  const c = ctx('lstm');
  tensorArg(x, 'lstm');
  check(x.shape.length === 3, `lstm expects [N, T, features], got [${x.shape.join(', ')}]`);
  const [N, T, D] = x.shape, H = posInt(hidden, 'lstm hidden');
  const name = layerName(c, 'lstm', o.name), k = 1 / Math.sqrt(H);
  const wih = state(c, name, 'weight_ih_l0', [4 * H, D], 'uniform', k), whh = state(c, name, 'weight_hh_l0', [4 * H, H], 'uniform', k);
  const bih = state(c, name, 'bias_ih_l0', [4 * H], 'uniform', k), bhh = state(c, name, 'bias_hh_l0', [4 * H], 'uniform', k);
  let h = node(c, 'fill', [], { shape: [N, H], value: 0 }), cell = node(c, 'fill', [], { shape: [N, H], value: 0 });
  const gate = (z: Tensor, j: number, op: string) => node(c, op, [node(c, 'slice', [z], { axis: 1, start: j * H, len: H })]);
  const hs: Tensor[] = [];
  for (let t = 0; t < T; t++) {
    const xt = node(c, 'reshape', [node(c, 'slice', [x], { axis: 1, start: t, len: 1 })], { shape: [N, D] });
    const z = node(c, 'add', [node(c, 'linear', [xt, wih, bih]), node(c, 'linear', [h, whh, bhh])]);
    const i = gate(z, 0, 'sigmoid'), f = gate(z, 1, 'sigmoid'), g = gate(z, 2, 'tanh'), og = gate(z, 3, 'sigmoid');
    cell = node(c, 'add', [node(c, 'mul', [f, cell]), node(c, 'mul', [i, g])]);
    h = node(c, 'mul', [og, node(c, 'tanh', [cell])]);
    hs.push(h);
  }
  return rec(c, node(c, 'stack', hs, { axis: 1 }));
}
