/**
 * The tracing context that DSL calls record into. It lives on globalThis so that a model module and the compiler
 * share it even if they were loaded as different module instances (e.g. dist/ vs sources under jest).
 */
import { Builder, Graph, emptyGraph } from '../ir/graph.js';
import { Loc, LocatedError } from '../ir/types.js';

export interface TraceOptions {
  batch: number;
  training: boolean;
  /** Graph name: `train` or `eval`. */
  name: string;
  /** The model's name, for messages about tensors from another trace. */
  model?: string;
}

export interface TraceContext {
  builder: Builder;
  opts: TraceOptions;
  /** Innermost user call site (set by the loc wrapper the front end inserts around DSL calls). */
  loc?: Loc;
  /** Per-layer-kind counters for parameter names (conv0, conv1, linear0, bn0 …), per scope. */
  counters: Map<string, number>;
  /** The enclosing `scope(name, …)` names, outermost first: layers are named `<scope>.<layer>`. */
  scopes: string[];
  /**
   * Every tensor a module-like DSL call returned, in call order (layers, quantizer sites, scopes): what a forward
   * hook on every PyTorch module records. PEPPP's memory accounting counts these (runtime/peppp/memory.ts).
   */
  records: number[];
  /** State names already made in this trace: two layers may not share a name. */
  stateNames: Set<string>;
  inputId?: number;
  /** This trace's number in the process (1, 2, …): tells two traces of one model and graph apart in messages. */
  serial: number;
}

let traces = 0;

/** How a message names a trace: "the 'eval' trace of model 'lenet5' (trace #4)". */
export function traceName(t: TraceContext): string {
  return `the '${t.opts.name}' trace${t.opts.model ? ` of model '${t.opts.model}'` : ''} (trace #${t.serial})`;
}

const KEY = Symbol.for('lpc.dsl.trace');
type G = { [KEY]?: TraceContext };

export function currentTrace(what: string): TraceContext {
  const t = (globalThis as G)[KEY];
  if (!t) throw new Error(`${what}() was called outside a model trace: call it inside model(name, () => { … })`);
  return t;
}

export function withTrace<T>(opts: TraceOptions, fn: (ctx: TraceContext) => T): { graph: Graph; result: T; ctx: TraceContext } {
  const g = globalThis as G;
  if (g[KEY]) throw new Error('nested model traces are not supported');
  const ctx: TraceContext = { builder: new Builder(emptyGraph(opts.name)), opts, counters: new Map(), scopes: [], records: [], stateNames: new Set(), serial: ++traces };
  g[KEY] = ctx;
  try {
    const result = fn(ctx);
    return { graph: ctx.builder.graph, result, ctx };
  } finally {
    delete g[KEY];
  }
}

/**
 * `__lpc_at(file, line, col, f)` returns f wrapped so that, while it runs, the trace's loc is the call site.
 * The front end rewrites every DSL call `conv2d(…)` in a model file to `__lpc_at("m.ts", 12, 9, conv2d)(…)`.
 */
export function lpcAt<F extends (...a: never[]) => unknown>(file: string, line: number, col: number, f: F): F {
  return ((...args: never[]) => {
    const t = (globalThis as G)[KEY];
    if (!t) {
      // outside a trace (a DSL call at a model's top level): the error still belongs to this call site
      try { return f(...args); } catch (e) {
        if (e instanceof LocatedError || !(e instanceof Error)) throw e;
        throw new LocatedError({ file, line, col }, e.message);
      }
    }
    const saved = t.loc;
    t.loc = { file, line, col };
    try {
      return f(...args);
    } catch (e) {
      if (e instanceof LocatedError || !(e instanceof Error)) throw e;
      throw new LocatedError({ file, line, col }, e.message);
    } finally {
      t.loc = saved;
    }
  }) as F;
}

/** The trace that made each tensor and where: a tensor is a node id in one trace's graph and means nothing in another. */
const origins = new WeakMap<object, { trace: TraceContext; loc?: Loc }>();

/** Records that trace `c` made tensor `t` (at its current loc); returns t. */
export function madeBy<T extends object>(t: T, c: TraceContext): T {
  origins.set(t, { trace: c, loc: c.loc });
  return t;
}

/** Refuses a tensor made by another trace (kept across the train and eval traces in a variable outside the build
 *  function, a cache, another model, or a finished trace): using its node id here would silently mean another node. */
export function checkOwnTensor(x: object, what: string, verb = 'was given'): void {
  const c = currentTrace(what), o = origins.get(x);
  if (o?.trace === c) return;
  const where = o?.loc ? ` at ${o.loc.file}:${o.loc.line}:${o.loc.col}` : '';
  const made = o ? `made by ${traceName(o.trace)}${where}` : 'not made by any DSL call';
  throw new Error(`${what} ${verb} a tensor ${made}, but this call is in ${traceName(c)}: the build function runs once per ` +
    'graph (train, eval), so make every tensor inside it on each call (none in module-level variables, caches or closures over an earlier call)');
}
