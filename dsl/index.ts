/**
 * The model-authoring API. A model file imports only this module ("lpc/dsl") and is ordinary TypeScript:
 * helper functions and loops are fine because the compiler traces the model by running it.
 */
import { currentTrace, TraceContext } from './trace.js';

/** A traced tensor. `shape` includes the batch dimension. */
export class Tensor {
  /** @internal */
  constructor(readonly id: number, readonly shape: readonly number[]) {}
}

/**
 * What the user asked for at compile time (`lpc compile --input 1x28x28 --classes 100`); a field is undefined when
 * not given, so a model writes its own default: `input(o.input ?? [3, 32, 32])`, `linear(h, o.classes ?? 10)`.
 * The compiler checks that the traced model honoured each given option (input shape, logits width).
 */
export interface ModelOptions {
  /** One sample's shape, without the batch dimension, e.g. [1, 28, 28]. */
  readonly input?: number[];
  /** The number of classes: the width of the logits. */
  readonly classes?: number;
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
  return new Tensor(id, c.builder.type(id).shape);
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
  return x as Tensor;
}

/** A parameter (or buffer) of the layer being built, named `<layer>.<field>` like PyTorch's state_dict. */
function state(c: TraceContext, layer: string, field: string, shape: number[], init: string, bound = 0, kind = 'param'): Tensor {
  const attrs: Record<string, string | number[] | number> = { name: `${layer}.${field}`, kind, shape, init };
  if (init === 'uniform') attrs.bound = bound;
  return node(c, 'state', [], attrs);
}
function layerName(c: TraceContext, kind: string, name?: string): string {
  if (name !== undefined) return name;
  const k = c.counters.get(kind) ?? 0;
  c.counters.set(kind, k + 1);
  return `${kind}${k}`;
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

export interface Conv2dOptions { out: number; kernel: number; stride?: number; pad?: number; bias?: boolean; name?: string }
/** 2-D convolution, NCHW, weights [out, in, k, k]; PyTorch's default init (uniform ±1/√fan_in). */
export function conv2d(x: Tensor, o: Conv2dOptions): Tensor {
  const c = ctx('conv2d');
  tensorArg(x, 'conv2d');
  check(x.shape.length === 4, `conv2d expects 4-D input [N, C, H, W], got [${x.shape.join(', ')}]`);
  const out = posInt(o.out, 'conv2d out'), k = posInt(o.kernel, 'conv2d kernel');
  const stride = posInt(o.stride ?? 1, 'conv2d stride'), pad = nonNegInt(o.pad ?? 0, 'conv2d pad');
  const name = layerName(c, 'conv', o.name), cin = x.shape[1], bound = 1 / Math.sqrt(cin * k * k);
  const w = state(c, name, 'weight', [out, cin, k, k], 'uniform', bound);
  const ins = [x, w];
  if (o.bias ?? true) ins.push(state(c, name, 'bias', [out], 'uniform', bound));
  return node(c, 'conv2d', ins, { stride, pad });
}

export interface LinearOptions { bias?: boolean; name?: string }
/** y = x·Wᵀ + b, W [out, in]. */
export function linear(x: Tensor, out: number, o: LinearOptions = {}): Tensor {
  const c = ctx('linear');
  tensorArg(x, 'linear');
  check(x.shape.length === 2, `linear expects 2-D input [N, features], got [${x.shape.join(', ')}]; use flatten() first`);
  posInt(out, 'linear out');
  const name = layerName(c, 'linear', o.name), bound = 1 / Math.sqrt(x.shape[1]);
  const ins = [x, state(c, name, 'weight', [out, x.shape[1]], 'uniform', bound)];
  if (o.bias ?? true) ins.push(state(c, name, 'bias', [out], 'uniform', bound));
  return node(c, 'linear', ins);
}

export function relu(x: Tensor): Tensor { return node(ctx('relu'), 'relu', [tensorArg(x, 'relu')]); }

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
  if (!c.opts.training || p === 0) return x;
  return node(c, 'dropout', [x], { p, key });
}

export function add(a: Tensor, b: Tensor): Tensor {
  return node(ctx('add'), 'add', [tensorArg(a, 'add'), tensorArg(b, 'add')]);
}

function pool(op: string, what: string, x: Tensor, k: number, stride?: number): Tensor {
  const c = ctx(what);
  tensorArg(x, what);
  posInt(k, `${what} kernel`);
  return node(c, op, [x], { k, stride: posInt(stride ?? k, `${what} stride`) });
}
/** Max pooling with a k×k window (stride defaults to k), no padding. */
export function maxPool(x: Tensor, k: number, stride?: number): Tensor { return pool('maxpool', 'maxPool', x, k, stride); }
export function avgPool(x: Tensor, k: number, stride?: number): Tensor { return pool('avgpool', 'avgPool', x, k, stride); }
/** Average over the whole H×W map: [N, C, H, W] → [N, C, 1, 1] (as nn.AdaptiveAvgPool2d(1), or AvgPool2d(H) on a
 *  square map). The map must be square: the pooling ops take one window size. */
export function globalAvgPool(x: Tensor): Tensor {
  const c = ctx('globalAvgPool');
  tensorArg(x, 'globalAvgPool');
  check(x.shape.length === 4, `globalAvgPool expects 4-D input [N, C, H, W], got [${x.shape.join(', ')}]`);
  check(x.shape[2] === x.shape[3], `globalAvgPool needs a square feature map, got ${x.shape[2]}×${x.shape[3]} ([${x.shape.join(', ')}])`);
  return node(c, 'avgpool', [x], { k: x.shape[2], stride: x.shape[2] });
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
  const name = layerName(c, 'bn', o.name);
  const gamma = state(c, name, 'weight', [C], 'ones');
  const beta = state(c, name, 'bias', [C], 'zeros');
  // Running mean and variance kept together as [2, C]; exported as running_mean / running_var.
  const running = state(c, name, 'running', [2, C], 'bn_running', 0, 'buffer');
  if (!c.opts.training) return node(c, 'bn_apply', [x, running, gamma, beta], { eps, training: false });
  const stats = node(c, 'bn_stats', [x]);
  const count = x.shape.length === 4 ? x.shape[0] * x.shape[2] * x.shape[3] : x.shape[0];
  const upd = node(c, 'bn_running_update', [running, stats], { momentum, count });
  c.builder.graph.updates.push({ name: `${name}.running`, node: upd.id });
  return node(c, 'bn_apply', [x, stats, gamma, beta], { eps, training: true });
}

/** Softmax cross-entropy of logits [N, classes] against the integer labels fed as `y` (−1 = padding, ignored).
 *  The compiler adds it after the model's logits; records `loss` and `correct` outputs. */
export function crossEntropy(logits: Tensor): Tensor {
  const c = ctx('crossEntropy');
  tensorArg(logits, 'crossEntropy');
  check(logits.shape.length === 2, `the model must return logits [N, classes], got [${logits.shape.join(', ')}]`);
  const y = node(c, 'input', [], { name: 'y', kind: 'label', shape: [logits.shape[0]], dtype: 'i32' });
  const loss = node(c, 'softmax_xent', [logits, y]);
  const correct = node(c, 'correct_count', [logits, y]);
  c.builder.graph.outputs.push({ name: 'loss', node: loss.id }, { name: 'correct', node: correct.id });
  return loss;
}
