/**
 * The IR verifier: the invariants every pass must keep. It runs after every pass in tests and when an artifact is
 * loaded. Each failure names the graph, the node (`%id`), its op, its input and result types and the DSL `loc` it
 * came from, so a broken pass points at the model line that produced the node.
 *
 * Types are re-inferred from each node's inputs' *declared* types, so one wrong type is one error, not a cascade.
 * The schema helpers here are shared with ./parse.ts so both report attribute problems in the same words.
 */
import { Attrs, AttrValue, Graph, IR_VERSION, Module, Node } from './graph.js';
import { Format, formatToString, validateFormat } from './format.js';
import { allOps, AttrKind, OpDef, takesEpilogue } from './ops/index.js';
import { Epilogue, postArgs } from './epilogue.js';
import { Loc, LocatedError, shapeEq, TensorType, typeToString } from './types.js';
import { printAttrValue, printGraphName } from './print.js';

const KIND_TEXT: Record<AttrKind, string> = {
  int: 'an int', float: 'a number', ints: 'a list of ints', string: 'a string', bool: 'true or false', format: 'a format',
  rounding: '"nearest" or "stochastic"',
};

/** The op's definition, or undefined for an unknown op (getOp throws). */
export function findOp(name: string): OpDef | undefined {
  return allOps().find((d) => d.name === name);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** `unknown op 'conv3d'; did you mean 'conv2d'?` (the hint only when one op is close). */
export function unknownOpMessage(name: string): string {
  let best: string | undefined, dist = 3;
  for (const d of allOps()) {
    const e = editDistance(name, d.name);
    if (e < dist) [best, dist] = [d.name, e];
  }
  return `unknown op '${name}'${best ? `; did you mean '${best}'?` : ''}`;
}

/** Arity of the op's own inputs: a node's post-op operands (its epilogue's args) come on top. */
export function arityError(def: OpDef, count: number, epi?: Epilogue): string | null {
  count -= postArgs(epi);
  const [lo, hi] = typeof def.arity === 'number' ? [def.arity, def.arity] : def.arity;
  if (count >= lo && count <= hi) return null;
  return `${def.name} expects ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${count}`;
}

/** Whether `v` is a value of kind `k`. */
function kindOk(k: AttrKind, v: AttrValue): boolean {
  switch (k) {
    case 'int': return typeof v === 'number' && Number.isInteger(v);
    case 'float': return typeof v === 'number';
    case 'ints': return Array.isArray(v) && v.every((x) => Number.isInteger(x));
    case 'string': return typeof v === 'string';
    case 'rounding': return v === 'nearest' || v === 'stochastic';
    case 'bool': return typeof v === 'boolean';
    case 'format': return typeof v === 'object' && !Array.isArray(v) && v !== null && 'kind' in v;
  }
}

/** What is wrong with attribute `key` = `v` of `def` (shown as `shown`, default its printed form), or null. */
export function attrValueError(def: OpDef, key: string, v: AttrValue, shown?: string): string | null {
  const k = def.attrs[key];
  if (!k) return unknownAttrMessage(def, key);
  if (!kindOk(k, v)) return wrongKindMessage(def, key, shown ?? describe(v));
  if (k === 'format') {
    const e = validateFormat(v as Format);
    if (e) return `attribute '${key}' of ${def.name}: ${e}`;
  }
  return null;
}

export function wrongKindMessage(def: OpDef, key: string, shown: string): string {
  return `attribute '${key}' of ${def.name} must be ${KIND_TEXT[def.attrs[key]]}, got ${shown}`;
}

function describe(v: AttrValue): string {
  try { return printAttrValue(v); } catch { return String(v); }
}

export function unknownAttrMessage(def: OpDef, key: string): string {
  const keys = Object.keys(def.attrs).sort();
  return `${def.name} has no attribute '${key}'; ${keys.length ? `its attributes are ${keys.join(', ')}` : 'it takes none'}`;
}

/** Required attributes of `def` that `present` lacks. */
export function missingAttrs(def: OpDef, present: (k: string) => boolean): string[] {
  return Object.keys(def.attrs).filter((k) => !present(k) && !def.optional?.includes(k)).sort();
}

export function missingAttrMessage(def: OpDef, key: string): string {
  return `${def.name} is missing attribute '${key}' (${KIND_TEXT[def.attrs[key]]})`;
}

/** Every attribute problem of a node: unknown, wrong kind or invalid, missing. */
export function attrErrors(def: OpDef, attrs: Attrs): string[] {
  const out: string[] = [];
  for (const k of Object.keys(attrs).sort()) {
    const e = attrValueError(def, k, attrs[k]);
    if (e) out.push(e);
  }
  for (const k of missingAttrs(def, (x) => x in attrs)) out.push(missingAttrMessage(def, k));
  return out;
}

/** The op table's result type for these inputs and attributes, or the reason it has none. */
export function inferType(def: OpDef, inTypes: TensorType[], attrs: Attrs, epi?: Epilogue): TensorType | { error: string } {
  try {
    return def.infer(inTypes, attrs, epi);
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** All verifier failures of one run; `message` lists them one per line (the first one's loc leads). */
export class VerifyError extends LocatedError {
  constructor(public readonly errors: LocatedError[]) {
    super(errors[0].loc, [errors[0].detail, ...errors.slice(1).map((e) => e.message)].join('\n'));
    this.name = 'VerifyError';
  }
}

const fmtShape = (s: readonly number[]) => `[${s.join(',')}]`;

/** `graph @train, %5 = conv2d(%0: tensor<…>, %1: tensor<…>) -> tensor<…>`: the node, its op and every type. */
function describeNode(g: Graph, n: Node, index: number): string {
  const ins = n.inputs.map((i) => {
    const t = Number.isInteger(i) && i >= 0 && i < index ? typeToString(g.nodes[i].type) : 'undefined';
    return `%${i}: ${t}`;
  });
  return `graph ${printGraphName(g.name)}, %${index} = ${n.op}(${ins.join(', ')}) -> ${typeToString(n.type)}`;
}

function checkNode(g: Graph, n: Node, i: number, err: (loc: Loc | undefined, msg: string) => void): void {
  const fail = (msg: string) => err(n.loc, `${describeNode(g, n, i)}: ${msg}`);
  if (n.id !== i) fail(`node at index ${i} has id %${n.id} (ids must be 0..n-1 in order)`);
  const def = findOp(n.op);
  if (!def) return fail(unknownOpMessage(n.op));
  let ok = true;
  for (const x of n.inputs)
    if (!(Number.isInteger(x) && x >= 0 && x < i)) { fail(`input %${x} is not an earlier node`); ok = false; }
  if (n.epi && !takesEpilogue(n.op)) { fail(`${n.op} takes no epilogue`); ok = false; }
  const arity = arityError(def, n.inputs.length, n.epi);
  if (arity) { fail(arity); ok = false; }
  for (const e of attrErrors(def, n.attrs)) { fail(e); ok = false; }
  if (!ok) return;
  const t = inferType(def, n.inputs.map((x) => g.nodes[x].type), n.attrs, n.epi);
  if ('error' in t) return fail(t.error);
  if (typeToString(t) !== typeToString(n.type)) fail(`declared type does not match the inferred ${typeToString(t)}`);
}

function checkGraph(g: Graph, err: (loc: Loc | undefined, msg: string) => void): void {
  g.nodes.forEach((n, i) => checkNode(g, n, i, err));
  const where = `graph ${printGraphName(g.name)}`;
  const valid = (id: number) => Number.isInteger(id) && id >= 0 && id < g.nodes.length;
  const seen = { output: new Set<string>(), update: new Set<string>() };
  const results = [...g.outputs.map((r) => ({ ...r, kind: 'output' as const })), ...g.updates.map((r) => ({ ...r, kind: 'update' as const }))];
  for (const r of results) {
    const what = `${r.kind} ${JSON.stringify(r.name)}`;
    if (seen[r.kind].has(r.name)) err(undefined, `${where}: duplicate ${what}`);
    seen[r.kind].add(r.name);
    if (!valid(r.node)) err(undefined, `${where}: ${what} refers to %${r.node}, but the graph has ${g.nodes.length} nodes`);
  }
  const states = new Map<string, Node>();
  for (const n of g.nodes) if (n.op === 'state' && !states.has(n.attrs.name as string)) states.set(n.attrs.name as string, n);
  for (const u of g.updates) {
    if (!valid(u.node)) continue;
    const s = states.get(u.name), v = g.nodes[u.node];
    const what = `${where}: update ${JSON.stringify(u.name)} = %${u.node} (${v.op} -> ${typeToString(v.type)})`;
    if (!s) err(v.loc, `${what} names no state node of the graph`);
    else if (!shapeEq(s.type.shape, v.type.shape))
      err(v.loc, `${what} does not match the shape ${fmtShape(s.type.shape)} of state %${s.id}`);
  }
}

/** The attributes that make two state nodes the same tensor. */
function stateKey(n: Node): string {
  const a = n.attrs;
  const packed = a.packed !== undefined ? `, packed ${formatToString(a.packed as Format)}` : '';
  return `shape ${fmtShape(n.type.shape)}, init ${JSON.stringify(a.init)}${a.bound !== undefined ? `, bound ${a.bound}` : ''}, kind ${JSON.stringify(a.kind)}${packed}`;
}

/** State nodes with one name are one tensor held by the runtime: every graph must agree on what it is. */
function checkStates(m: Module, err: (loc: Loc | undefined, msg: string) => void): void {
  const first = new Map<string, { g: Graph; n: Node }>();
  for (const g of m.graphs)
    for (const n of g.nodes) {
      if (n.op !== 'state' || typeof n.attrs.name !== 'string') continue;
      const f = first.get(n.attrs.name);
      if (!f) { first.set(n.attrs.name, { g, n }); continue; }
      if (stateKey(f.n) !== stateKey(n))
        err(n.loc, `state ${JSON.stringify(n.attrs.name)}: graph ${printGraphName(g.name)} %${n.id} has ${stateKey(n)}, ` +
          `but graph ${printGraphName(f.g.name)} %${f.n.id} has ${stateKey(f.n)}`);
    }
}

function collect(run: (err: (loc: Loc | undefined, msg: string) => void) => void): void {
  const errors: LocatedError[] = [];
  run((loc, msg) => errors.push(new LocatedError(loc, msg)));
  if (errors.length) throw new VerifyError(errors);
}

/** Throws VerifyError listing every broken invariant of one graph. */
export function verifyGraph(g: Graph): void {
  collect((err) => checkGraph(g, err));
}

/** Throws VerifyError listing every broken invariant of the module and its graphs. */
export function verifyModule(m: Module): void {
  collect((err) => {
    if (m.version !== IR_VERSION) err(undefined, `module '${m.name}': IR version ${m.version}, expected ${IR_VERSION}`);
    const names = new Set<string>();
    for (const g of m.graphs) {
      if (names.has(g.name)) err(undefined, `module '${m.name}': duplicate graph ${printGraphName(g.name)}`);
      names.add(g.name);
      checkGraph(g, err);
    }
    checkStates(m, err);
  });
}
