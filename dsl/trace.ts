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
  const ctx: TraceContext = { builder: new Builder(emptyGraph(opts.name)), opts, counters: new Map(), scopes: [], records: [], stateNames: new Set() };
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
    if (!t) return f(...args);
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
