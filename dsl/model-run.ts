/**
 * Running a transpiled model project and tracing it. No TypeScript compiler here: the sandbox's child process
 * (runtime/sandbox) loads only this, the DSL and the IR.
 */
import { MappedModule, stackPlace } from './model-errors.js';
import * as dsl from './index.js';
import { checkOwnTensor, lpcAt, withTrace } from './trace.js';
import { Module } from '../ir/graph.js';

/** One model source file after transpiling: CommonJS code whose calls and throws carry their place, and its map. */
export interface TranspiledModel { file: string; code: string; sourceMap: string; url: string }

/** A model file and the local modules it imports, keyed by their path relative to the entry's folder ('/'-separated). */
export interface ModelProject { entry: string; modules: Record<string, TranspiledModel> }

/** The DSL's functions: `__lpc_at` gives a call site only to these (the front end wraps every call by name, so a
 *  DSL function reached through an alias or a helper's parameter still gets its own place). */
const DSL_FUNCTIONS = new Set<unknown>(Object.values(dsl).filter((v) => typeof v === 'function'));
function at(file: string, line: number, col: number, f: unknown): unknown {
  return DSL_FUNCTIONS.has(f) ? lpcAt(file, line, col, f as (...a: never[]) => unknown) : f;
}

/** `spec` imported from module `from` (both relative to the project's folder): the key of the module it names. */
export function resolveLocal(from: string, spec: string, keys: Set<string>): string | undefined {
  const parts = from.split('/').slice(0, -1);
  for (const p of spec.split('/')) {
    if (p === '.' || p === '') continue;
    if (p === '..') { if (!parts.length) return undefined; parts.pop(); } else parts.push(p);
  }
  const base = parts.join('/');
  const candidates = [base.endsWith('.js') ? `${base.slice(0, -3)}.ts` : undefined, base, `${base}.ts`, `${base}/index.ts`];
  return candidates.find((c) => c !== undefined && keys.has(c));
}

const MAX_SHOWN = 200;

/** How a thrown non-Error value is shown: strings quoted, objects as JSON where they can be, cut at 200 chars. */
function showValue(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = JSON.stringify(v);
  else if (v === null || typeof v !== 'object') s = String(v);
  else { try { s = JSON.stringify(v) ?? String(v); } catch { s = Object.prototype.toString.call(v); } }
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}…` : s;
}

/** `throw v` in a model becomes `throw __lpc_throw(file, line, col, v)`: an Error passes, any other value becomes
 *  an Error that shows it at the throw's place (a bare `throw 'x'` or `throw undefined` has no stack to place). */
export function lpcThrow(file: string, line: number, col: number, v: unknown): unknown {
  if (v instanceof Error) return v;
  return new Error(`${file}:${line}:${col}: the model threw ${showValue(v)}, which is not an Error`);
}

/** Runs a transpiled model project and returns its entry's default-exported model. The model is user code that the
 *  user asked us to compile; `require` reaches only the DSL and the project's own modules (runtime/sandbox contains
 *  the rest). */
export function evalModel(p: ModelProject): dsl.ModelDef {
  const entry = p.modules[p.entry];
  const file = entry.file;
  const mods = Object.values(p.modules);
  const place = stackPlace(mods.map((m): MappedModule => ({ url: m.url, sourceMap: m.sourceMap, file: m.file })));
  const keys = new Set(Object.keys(p.modules));
  const loaded = new Map<string, { exports: Record<string, unknown> }>();
  const load = (key: string): Record<string, unknown> => {
    const hit = loaded.get(key);
    if (hit) return hit.exports; // a cycle sees the exports made so far, as CommonJS does
    const t = p.modules[key];
    const mod: { exports: Record<string, unknown> } = { exports: {} };
    loaded.set(key, mod);
    const req = (name: string) => {
      if (name === 'lpc/dsl') return dsl;
      const k = name.startsWith('.') ? resolveLocal(key, name, keys) : undefined;
      if (k === undefined) throw new Error(`${t.file}: a model may import only 'lpc/dsl' and its own files, not '${name}'`);
      return load(k);
    };
    new Function('require', 'exports', 'module', '__lpc_at', '__lpc_throw', t.code)(req, mod.exports, mod, at, lpcThrow);
    return mod.exports;
  };
  const files = mods.map((m) => m.file);
  let exports: Record<string, unknown>;
  try { exports = load(p.entry); } catch (e) { throw placed(e, files, place); }
  const m = exports.default as dsl.ModelDef | undefined;
  if (!m || m.kind !== 'lpc.model') throw new Error(`${file}: the default export must be model(name, () => …)`);
  // tracing calls the model's build function later: its own errors are placed the same way
  return { ...m, build: (o) => { try { return m.build(o); } catch (e) { throw placed(e, files, place); } } };
}

/** An error the model's code threw, its message prefixed with the file:line:col it came from (when it has none). */
function placed(e: unknown, files: string[], place: (e: unknown) => string | undefined): unknown {
  if (!(e instanceof Error)) return new Error(`${files[0]}: the model threw ${showValue(e)}, which is not an Error`);
  if (files.some((f) => e.message.startsWith(`${f}:`))) return e;
  const where = place(e);
  if (where) e.message = `${where}: ${e.message}`;
  return e;
}

/** Checks compile options (`--input`, `--classes`, `--depth`, `--width`) before they reach a model. */
export function checkModelOptions(o: dsl.ModelOptions): void {
  if (o.input !== undefined && (!Array.isArray(o.input) || o.input.length === 0 || !o.input.every((d) => Number.isInteger(d) && d > 0)))
    throw new Error(`the input shape must be positive integers like [1, 28, 28], got ${JSON.stringify(o.input)}`);
  if (o.classes !== undefined && !(Number.isInteger(o.classes) && o.classes >= 1))
    throw new Error(`the number of classes must be a positive integer, got ${String(o.classes)}`);
  for (const k of SIZE_OPTIONS)
    if (o[k] !== undefined && !(Number.isInteger(o[k]) && o[k]! >= 1)) throw new Error(`the ${k} must be a positive integer, got ${String(o[k])}`);
}

/** Options that change only the network's size: nothing in the traced graph shows whether the model used them, so
 *  the model must read them. */
const SIZE_OPTIONS = ['depth', 'width'] as const;

/** A copy of the options that records which size options the model reads. */
function watched(o: dsl.ModelOptions, read: Set<string>): dsl.ModelOptions {
  const out: dsl.ModelOptions = { ...o, ...(o.input ? { input: [...o.input] } : {}) };
  for (const k of SIZE_OPTIONS) {
    if (o[k] === undefined) continue;
    const v = o[k];
    Object.defineProperty(out, k, { enumerable: true, get: () => { read.add(k); return v; } });
  }
  return out;
}

/** Traces the model twice, in training and evaluation mode, into a module with graphs `train` and `eval`.
 *  `options` reach the model's build function; a given option the model ignored is an error. */
export function traceModel(m: dsl.ModelDef, batch: number, options: dsl.ModelOptions = {}): Module {
  checkModelOptions(options);
  const graphs = (['train', 'eval'] as const).map((name) =>
    withTrace({ batch, training: name === 'train', name, model: m.name }, (ctx) => {
      const read = new Set<string>();
      const logits = m.build(watched(options, read));
      for (const k of SIZE_OPTIONS)
        if (options[k] !== undefined && !read.has(k))
          throw new Error(`model '${m.name}' does not use --${k} ${options[k]}: it never reads o.${k}`);
      if (!(logits instanceof dsl.Tensor)) throw new Error(`model '${m.name}' must return its logits tensor`);
      checkOwnTensor(logits, `model '${m.name}'`, 'returned');
      if (ctx.inputId === undefined) throw new Error(`model '${m.name}' never calls input()`);
      const x = ctx.builder.graph.nodes[ctx.inputId].type.shape.slice(1);
      if (options.input && x.join('x') !== options.input.join('x'))
        throw new Error(`model '${m.name}' ignores the input shape ${options.input.join('x')}: its input() is ${x.join('x')}; ` +
          `pass the options on, as input(o.input ?? [${x.join(', ')}]) in model('${m.name}', (o) => …)`);
      if (options.classes !== undefined && logits.shape.length === 2 && logits.shape[1] !== options.classes)
        throw new Error(`model '${m.name}' ignores the number of classes ${options.classes}: its logits have ${logits.shape[1]}; ` +
          `pass the options on, as linear(h, o.classes ?? ${logits.shape[1]}) in model('${m.name}', (o) => …)`);
      ctx.loc = ctx.builder.graph.nodes[logits.id].loc; // the loss belongs to the line that made the logits
      dsl.crossEntropy(logits);
    }).graph);
  return { version: 1, name: m.name, graphs };
}
