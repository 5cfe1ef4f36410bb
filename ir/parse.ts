/**
 * Reads the IR text that ./print.ts writes back into a Module, re-checking it on the way: every node's op, arity and
 * attributes against the op table, `%n` references, ids 0..n-1 in order, and each declared type against what the
 * op table infers from the inputs. Errors carry the line:col of the IR text.
 *
 * The text is line-oriented, so each line is parsed on its own by one chevrotain parser (recovery on): a syntax
 * error never swallows the lines after it, and one parse reports every broken line. A small driver checks that the
 * lines come in order (header, module, graphs) and gives each line kind its meaning.
 *
 * The grammar, its tokens and the line parser are in ./parse-grammar.ts.
 */
import { CstNode, IToken, TokenType, tokenMatcher } from './chevrotain.js';
import { Attrs, AttrValue, Graph, IR_VERSION, Module } from './graph.js';
import type { PostExpr } from './post.js';
import { TermReader, readEpilogue, readPostExpr } from './parse-epilogue.js';
import { sub, subs, tok, tokensOf, toks } from './cst.js';
import { GraphKw, Header, LineRule, ModuleKw, OutputKw, RCurly, UpdateKw, ValueId, irLexer, parser, show } from './parse-grammar.js';
import { buildFormat, F32, Format, FormatArg } from './format.js';
import { DType, Loc, LocatedError, TensorType, typeToString } from './types.js';
import { IR_HEADER, printGraphName } from './print.js';
import {
  arityError, attrValueError, findOp, inferType, missingAttrMessage, missingAttrs, unknownAttrMessage, unknownOpMessage,
  wrongKindMessage,
} from './verify.js';

// ---------- diagnostics ----------
/** One problem at a 1-based line and column of the IR text. */
export interface IrDiagnostic { line: number; col: number; message: string }

/** Shown in an IrParseError's message at most; `.errors` keeps them all. */
const MAX_SHOWN = 20;

/** Every problem one parse found, as `file:line:col: message` lines (the first one's position leads). */
export class IrParseError extends LocatedError {
  constructor(public readonly file: string, public readonly errors: IrDiagnostic[]) {
    const lines = errors.slice(0, MAX_SHOWN).map((e) => `${file}:${e.line}:${e.col}: ${e.message}`);
    if (errors.length > MAX_SHOWN) lines.push(`… and ${errors.length - MAX_SHOWN} more errors`);
    super({ file, line: errors[0].line, col: errors[0].col }, [errors[0].message, ...lines.slice(1)].join('\n'));
    this.name = 'IrParseError';
  }
}

// ---------- meaning ----------
interface GraphState {
  graph: Graph;
  name: string;
  /** Declared type of each defined `%n`; null where the line was broken (its users are not checked against it). */
  types: Map<number, TensorType | null>;
  next: number;
  outputs: Set<string>;
  updates: Set<string>;
}

type Pos = { line: number; col: number };

/** Reads the lines of one text in order; `errors` collects every problem. */
class ModuleReader implements TermReader {
  readonly errors: IrDiagnostic[] = [];
  readonly module: Module = { version: IR_VERSION, name: '', graphs: [] };
  private state: 'header' | 'module' | 'top' | 'body' = 'header';
  private g?: GraphState;
  private lineEnd: Pos = { line: 1, col: 1 };

  /** Set after a line outside any graph was reported, so the rest of that run of lines is not. */
  private stray = false;

  constructor(readonly text: string) {}

  err(at: IToken | Pos, message: string): void {
    const p: Pos = 'image' in at ? { line: at.startLine!, col: at.startColumn! } : at;
    this.errors.push({ line: p.line, col: p.col, message });
  }

  run(): Module {
    const lexed = irLexer.tokenize(this.text);
    const badLines = new Set<number>();
    for (const e of lexed.errors) {
      this.err({ line: e.line ?? 1, col: e.column ?? 1 }, `unexpected character '${this.text.substr(e.offset, e.length)}'`);
      badLines.add(e.line ?? 1);
    }
    const lines = new Map<number, IToken[]>();
    for (const t of lexed.tokens) {
      const l = lines.get(t.startLine!) ?? [];
      l.push(t);
      lines.set(t.startLine!, l);
    }
    for (const [n, line] of [...lines].sort((a, b) => a[0] - b[0])) {
      const last = line[line.length - 1];
      this.lineEnd = { line: n, col: last.endColumn! + 1 };
      this.line(line, badLines.has(n));
    }
    this.finish();
    return this.module;
  }

  /** Parses one line with `rule`; returns its CST and whether it is intact (no syntax error on the line). */
  private parse(rule: LineRule, line: IToken[], lexBad: boolean): { cst: CstNode; ok: boolean } {
    parser.input = line;
    const cst = parser[rule]();
    for (const e of parser.errors) {
      const t = e.token;
      this.err(Number.isFinite(t.startLine) && t.tokenType.name !== 'EOF' ? t : this.lineEnd, e.message);
    }
    return { cst, ok: parser.errors.length === 0 && !lexBad };
  }

  /** Dispatches one line on its first token and on where we are in the module. */
  private line(line: IToken[], lexBad: boolean): void {
    const first = line[0];
    const is = (t: TokenType) => tokenMatcher(first, t);
    switch (this.state) {
      case 'header':
        this.state = 'module';
        if (is(Header)) return this.header(this.parse('headerLine', line, lexBad));
        this.err(first, `expected the header '${IR_HEADER} ${IR_VERSION}' but found ${show(first)}`);
        return this.line(line, lexBad);
      case 'module':
        this.state = 'top';
        if (is(ModuleKw)) return this.moduleName(this.parse('moduleLine', line, lexBad));
        this.err(first, `expected 'module "name"' but found ${show(first)}`);
        return this.line(line, lexBad);
      case 'top':
        if (is(GraphKw)) return this.openGraph(this.parse('graphLine', line, lexBad));
        if (!this.stray) this.err(first, `expected 'graph @name {' but found ${show(first)}`);
        this.stray = true;
        return;
      case 'body':
        if (is(ValueId)) return this.node(this.parse('nodeLine', line, lexBad));
        if (is(OutputKw) || is(UpdateKw)) return this.result(this.parse('resultLine', line, lexBad));
        if (is(RCurly)) { this.parse('closeLine', line, lexBad); return this.closeGraph(); }
        if (is(GraphKw)) {
          this.err(first, `graph ${this.g!.name} is not closed; expected '}' before the next graph`);
          this.closeGraph();
          return this.line(line, lexBad);
        }
        return this.err(first, `expected a node ('%n = op …'), 'output', 'update' or '}' but found ${show(first)}`);
    }
  }

  private finish(): void {
    const end = this.lineEnd;
    if (this.state === 'header') this.err(end, `empty input; expected the header '${IR_HEADER} ${IR_VERSION}'`);
    else if (this.state === 'module') this.err(end, `unexpected end of input; expected 'module "name"'`);
    else if (this.state === 'body') {
      this.err(end, `unexpected end of input; graph ${this.g!.name} is not closed (expected '}')`);
      this.closeGraph();
    }
  }

  private header({ cst, ok }: { cst: CstNode; ok: boolean }): void {
    const v = tok(cst, 'version');
    if (ok && v && Number(v.image) !== IR_VERSION)
      this.err(v, `unsupported IR version ${v.image}; this lpc reads version ${IR_VERSION}`);
  }

  private moduleName({ cst, ok }: { cst: CstNode; ok: boolean }): void {
    if (ok) this.module.name = JSON.parse(tok(cst, 'Str')!.image);
  }

  private openGraph({ cst, ok }: { cst: CstNode; ok: boolean }): void {
    const t = tok(cst, 'GraphName');
    let name = '?';
    if (ok && t) {
      const raw = t.image.slice(1);
      name = raw.startsWith('"') ? JSON.parse(raw) : raw;
      if (this.module.graphs.some((g) => g.name === name)) this.err(t, `duplicate graph ${printGraphName(name)}`);
    }
    const graph: Graph = { name, nodes: [], outputs: [], updates: [] };
    this.g = { graph, name: printGraphName(name), types: new Map(), next: 0, outputs: new Set(), updates: new Set() };
    this.state = 'body';
    this.stray = false;
  }

  private closeGraph(): void {
    this.module.graphs.push(this.g!.graph);
    this.g = undefined;
    this.state = 'top';
  }

  private result({ cst, ok }: { cst: CstNode; ok: boolean }): void {
    if (!ok) return;
    const g = this.g!;
    const kind = tok(cst, 'kind')!.image as 'output' | 'update';
    const nameTok = tok(cst, 'Str')!, idTok = tok(cst, 'ValueId')!;
    const name: string = JSON.parse(nameTok.image), node = Number(idTok.image.slice(1));
    const seen = kind === 'output' ? g.outputs : g.updates;
    if (seen.has(name)) this.err(nameTok, `duplicate ${kind} ${nameTok.image}`);
    seen.add(name);
    if (!g.types.has(node)) this.err(idTok, `use of undefined value %${node}`);
    (kind === 'output' ? g.graph.outputs : g.graph.updates).push({ name, node });
  }

  private node({ cst, ok }: { cst: CstNode; ok: boolean }): void {
    const g = this.g!;
    const idTok = tok(cst, 'id')!;
    const id = Number(idTok.image.slice(1));
    const before = this.errors.length;
    if (!ok) {
      g.types.set(id, null);
      g.next = id + 1;
      return;
    }
    if (id !== g.next) this.err(idTok, `expected %${g.next} but found %${id} (node ids count up from %0 in order)`);
    g.next = id + 1;

    const opTok = tok(cst, 'op')!;
    const def = findOp(opTok.image);
    if (!def) this.err(opTok, unknownOpMessage(opTok.image));

    const inputs: number[] = [];
    let inputsKnown = true;
    for (const t of toks(sub(cst, 'operands'), 'ValueId')) {
      const x = Number(t.image.slice(1));
      inputs.push(x);
      if (!g.types.has(x)) this.err(t, `use of undefined value %${x}`);
      if (!g.types.get(x)) inputsKnown = false;
    }

    const attrs: Attrs = {};
    const present = new Set<string>();
    for (const a of subs(sub(cst, 'attrs'), 'attr')) {
      const keyTok = tok(a, 'key')!, key = keyTok.image;
      if (present.has(key)) { this.err(keyTok, `duplicate attribute '${key}'`); continue; }
      present.add(key);
      if (!def) continue;
      if (!def.attrs[key]) { this.err(keyTok, unknownAttrMessage(def, key)); continue; }
      const v = this.attrValue(sub(a, 'value')!, def.name, key, def.attrs[key] === 'format');
      if (v === undefined) continue;
      const e = attrValueError(def, key, v.value, v.shown);
      if (e) this.err(v.at, e);
      else attrs[key] = v.value;
    }
    const epi = readEpilogue(this, sub(cst, 'epilogue'), def?.name);
    if (def) {
      const arity = arityError(def, inputs.length, epi);
      if (arity) this.err(opTok, arity);
      for (const k of missingAttrs(def, (x) => present.has(x))) this.err(opTok, missingAttrMessage(def, k));
    }

    const typeCst = sub(cst, 'type')!;
    const type = this.type(typeCst);
    const loc = this.loc(sub(cst, 'loc'));

    // Infer only from a clean line with known inputs, so one mistake is reported once.
    if (def && type && inputsKnown && this.errors.length === before) {
      const inTypes = inputs.map((x) => g.types.get(x)!);
      const t = inferType(def, inTypes, attrs, epi);
      // an error only the epilogue brings (a post-op's operand, a qpost without a quantizer) points at the epilogue
      const epiTok = tok(sub(cst, 'epilogue'), 'Kw_epilogue');
      if ('error' in t) this.err(epiTok && !('error' in inferType(def, inTypes, attrs)) ? epiTok : opTok, t.error);
      else if (typeToString(t) !== typeToString(type))
        this.err(tok(typeCst, 'tensor')!, `type mismatch: declared ${typeToString(type)} but ${def.name} gives ${typeToString(t)}`);
    }
    g.types.set(id, type ?? null);
    g.graph.nodes.push({
      id: g.graph.nodes.length, op: opTok.image, inputs, attrs, type: type ?? { shape: [], dtype: 'f32', fmt: F32 }, loc, ...(epi ? { epi } : {}),
    });
  }

  /** An attribute's value as the schema kind reads it; the kind itself is checked by attrValueError. */
  private attrValue(v: CstNode, op: string, key: string, wantFormat: boolean):
    { value: AttrValue; shown: string; at: IToken } | undefined {
    const all = tokensOf(v);
    const at = all[0], shown = this.text.slice(at.startOffset, all[all.length - 1].endOffset! + 1);
    const num = tok(v, 'Num'), str = tok(v, 'Str'), ints = sub(v, 'ints'), fmt = sub(v, 'format');
    if (num) return { value: Number(num.image), shown, at };
    if (str) return { value: JSON.parse(str.image), shown, at };
    if (ints) return { value: toks(ints, 'Num').map((t) => Number(t.image)), shown, at };
    const name = tok(fmt, 'name')!.image;
    if (!wantFormat && (name === 'true' || name === 'false') && !sub(fmt, 'fmtArg')) return { value: name === 'true', shown, at };
    if (!wantFormat) {
      this.err(at, wrongKindMessage(findOp(op)!, key, shown));
      return undefined;
    }
    const f = this.format(fmt!);
    return f ? { value: f, shown, at } : undefined;
  }

  /** `bfp<8,axis=0>` and friends, validated by the same code as parseFormat. */
  format(f: CstNode): Format | undefined {
    const nameTok = tok(f, 'name')!;
    const argNodes = subs(f, 'fmtArg');
    const args: { a: FormatArg; t: IToken }[] = argNodes.map((n) => {
      const num = tok(n, 'Num'), id = tok(n, 'Ident'), val = tok(n, 'value'), nval = tok(n, 'nameValue');
      if (num) return { a: { kind: 'int', value: Number(num.image) }, t: num };
      if (val) return { a: { kind: 'kv', key: id!.image, value: Number(val.image) }, t: id! };
      if (nval) return { a: { kind: 'kvname', key: id!.image, name: nval.image }, t: id! };
      return { a: { kind: 'ident', name: id!.image }, t: id! };
    });
    const r = buildFormat(nameTok.image, tok(f, 'LAngle') ? args.map((x) => x.a) : undefined);
    if ('error' in r) {
      this.err(r.arg !== undefined && args[r.arg] ? args[r.arg].t : nameTok, r.error);
      return undefined;
    }
    return r.fmt;
  }

  /** `tensor<[64,1,28,28], f32, fmt>`. */
  private type(t: CstNode): TensorType | undefined {
    let ok = true;
    const shape = toks(sub(t, 'ints'), 'Num').map((d) => {
      const v = Number(d.image);
      if (!Number.isInteger(v) || v < 0) { this.err(d, `a dimension must be a non-negative integer, got ${d.image}`); ok = false; }
      return v;
    });
    const dt = tok(t, 'dtype')!;
    if (dt.image !== 'f32' && dt.image !== 'i32' && dt.image !== 'u32') { this.err(dt, `unknown dtype '${dt.image}'; expected f32, i32 or u32`); ok = false; }
    const f = sub(t, 'format');
    const fmt = f ? this.format(f) : F32;
    return ok && fmt ? { shape, dtype: dt.image as DType, fmt } : undefined;
  }

  /** `loc("models/lenet5.ts":5:14)`. */
  private loc(l: CstNode | undefined): Loc | undefined {
    if (!l) return undefined;
    const pos = (k: string) => {
      const t = tok(l, k)!, v = Number(t.image);
      if (!Number.isInteger(v) || v < 1) this.err(t, `a loc ${k} must be a positive integer, got ${t.image}`);
      return v;
    };
    return { file: JSON.parse(tok(l, 'Str')!.image), line: pos('line'), col: pos('col') };
  }
}

/** Parses IR text, returning the module read from its intact parts and every diagnostic (in text order). */
export function parseModuleDiagnostics(text: string): { module: Module; errors: IrDiagnostic[] } {
  const r = new ModuleReader(text);
  const module = r.run();
  const errors = [...r.errors].sort((a, b) => a.line - b.line || a.col - b.col);
  return { module, errors };
}

/** Parses a post expression (ir/post.ts) as the IR text writes it, `relu(add(x,$0))`; errors name the column. */
export function parsePost(text: string): PostExpr {
  const r = new ModuleReader(text);
  const lexed = irLexer.tokenize(text);
  for (const e of lexed.errors) r.err({ line: e.line ?? 1, col: e.column ?? 1 }, `unexpected character '${text.substr(e.offset, e.length)}'`);
  parser.input = lexed.tokens;
  const cst = parser.term();
  const end = { line: 1, col: text.length + 1 };
  for (const e of parser.errors) r.err(Number.isFinite(e.token.startLine) && e.token.tokenType.name !== 'EOF' ? e.token : end, e.message);
  const x = r.errors.length ? undefined : readPostExpr(r, cst);
  if (!x || r.errors.length) {
    const e = r.errors[0];
    throw new Error(`post expression '${text}', column ${e.col}: ${e.message}`);
  }
  return x;
}

/** Parses IR text (`file` names it in messages: `lenet5.lpc/graph.lpir:12:7: …`); throws IrParseError listing every problem. */
export function parseModule(text: string, file: string): Module {
  const { module, errors } = parseModuleDiagnostics(text);
  if (errors.length) throw new IrParseError(file, errors);
  return module;
}
