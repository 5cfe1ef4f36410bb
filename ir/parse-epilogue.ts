/**
 * Reading a node's epilogue from the IR text (ir/parse.ts parses the syntax; ir/print.ts printEpilogue writes it):
 *
 *   epilogue{post=relu(add(x,scale{c=0.5}($0))), args=1, q=bfp<8,axis=0>, rounding=stochastic, role="A", qpost=relu(x)}
 *
 * A field's value is a number, a string or a term (a post expression, a format or a bare name); the key says which it
 * must be. Post expressions are checked against the op table (elementwise ops, their arity and attributes), so the
 * typed epilogue (ir/epilogue.ts) that comes out is never parsed again.
 */
import type { CstNode, IToken } from './chevrotain.js';
import type { AttrValue, Attrs } from './graph.js';
import type { Format } from './format.js';
import { Epilogue, EpilogueQuant, normalEpilogue } from './epilogue.js';
import type { PostExpr } from './post.js';
import { takesEpilogue } from './ops/index.js';
import { attrValueError, findOp, missingAttrMessage, missingAttrs, unknownOpMessage } from './verify.js';
import { sub, subs, tok, tokensOf } from './cst.js';

/** What reading a term needs from the module reader: where problems go, formats, the text. */
export interface TermReader {
  readonly text: string;
  err(at: IToken | { line: number; col: number }, message: string): void;
  format(f: CstNode): Format | undefined;
}

/** `epilogue{…}` of a node of op `op` (undefined: unknown op), each field read as its key says. */
export function readEpilogue(r: TermReader, e: CstNode | undefined, op: string | undefined): Epilogue | undefined {
  if (!e) return undefined;
  if (op && !takesEpilogue(op)) { r.err(tok(e, 'Kw_epilogue')!, `${op} takes no epilogue`); return undefined; }
  const out: Epilogue = { args: 0 };
  let q: Partial<EpilogueQuant> | undefined, rounding: IToken | undefined, role: IToken | undefined;
  const seen = new Set<string>();
  for (const f of subs(e, 'epiField')) {
    const keyTok = tok(f, 'key')!, key = keyTok.image;
    if (seen.has(key)) { r.err(keyTok, `duplicate epilogue field '${key}'`); continue; }
    seen.add(key);
    const num = tok(f, 'Num'), str = tok(f, 'Str'), term = sub(f, 'term');
    const at = num ?? str ?? tokensOf(term!)[0];
    const want = (what: string) => r.err(at, `epilogue field '${key}' must be ${what}, got ${shown(r, f, at)}`);
    switch (key) {
      case 'post': case 'qpost': {
        const x = term ? readPostExpr(r, term) : want('a post expression (x, $k, op(…))');
        if (x) out[key] = x;
        break;
      }
      case 'args':
        if (num && Number.isInteger(Number(num.image)) && Number(num.image) >= 0) out.args = Number(num.image);
        else want('a non-negative integer');
        break;
      case 'q': {
        if (!term || tok(term, 'LParen') || tok(term, 'PostArg')) { want('a format'); break; }
        const fmt = r.format(term);
        if (fmt) q = { ...q, fmt };
        break;
      }
      case 'rounding': {
        const name = term && !tok(term, 'LAngle') && !tok(term, 'LParen') ? tok(term, 'name')?.image : undefined;
        if (name === 'nearest' || name === 'stochastic') { q = { ...q, rounding: name }; rounding = keyTok; }
        else want('nearest or stochastic');
        break;
      }
      case 'role':
        if (str) { q = { ...q, role: JSON.parse(str.image) }; role = keyTok; }
        else want('a string');
        break;
      default:
        r.err(keyTok, `unknown epilogue field '${key}'; the fields are post, args, q, rounding, role, qpost`);
    }
  }
  if (q?.fmt) out.q = { fmt: q.fmt, rounding: q.rounding ?? 'nearest', ...(q.role !== undefined ? { role: q.role } : {}) };
  else if (!seen.has('q')) for (const t of [rounding, role]) if (t) r.err(t, `epilogue field '${t.image}' needs a quantizer (q=…)`);
  return normalEpilogue(out);
}

/** The text of a field's value, for messages. */
function shown(r: TermReader, f: CstNode, at: IToken): string {
  const all = tokensOf(f), last = all[all.length - 1];
  return r.text.slice(at.startOffset, last.endOffset! + 1);
}

/** A post expression (ir/post.ts): x, $k, or an elementwise op of the op table applied to post expressions. */
export function readPostExpr(r: TermReader, t: CstNode): PostExpr | undefined {
  const arg = tok(t, 'PostArg');
  if (arg) return { kind: 'arg', index: Number(arg.image.slice(1)) };
  const nameTok = tok(t, 'name')!, name = nameTok.image;
  if (tok(t, 'LAngle')) { r.err(nameTok, `expected a post expression but found the format '${name}<…>'`); return undefined; }
  if (!tok(t, 'LParen')) {
    if (name === 'x') return { kind: 'x' };
    r.err(nameTok, `expected x, '$k' or an elementwise op applied to operands but found '${name}'`);
    return undefined;
  }
  const def = findOp(name);
  if (!def) { r.err(nameTok, unknownOpMessage(name)); return undefined; }
  if (!def.ew) { r.err(nameTok, `'${name}' is not an elementwise op`); return undefined; }
  const args = subs(t, 'term').map((a) => readPostExpr(r, a));
  let ok = args.every((a) => a !== undefined);
  if (args.length !== def.arity) { r.err(nameTok, `${name} takes ${def.arity} operands, got ${args.length}`); ok = false; }
  const attrs: Attrs = {};
  for (const a of subs(sub(t, 'postAttrs'), 'postAttr')) {
    const keyTok = tok(a, 'key')!, num = tok(a, 'Num'), b = tok(a, 'bool');
    if (keyTok.image in attrs) { r.err(keyTok, `duplicate attribute '${keyTok.image}'`); ok = false; continue; }
    const v: AttrValue | undefined = num ? Number(num.image) : b?.image === 'true' ? true : b?.image === 'false' ? false : undefined;
    const e = v === undefined ? `attribute '${keyTok.image}' of ${name} must be a number or true/false, got '${b!.image}'`
      : attrValueError(def, keyTok.image, v, (num ?? b)!.image);
    if (e) { r.err(v === undefined || !def.attrs[keyTok.image] ? keyTok : (num ?? b)!, e); ok = false; }
    else attrs[keyTok.image] = v!;
  }
  for (const k of missingAttrs(def, (x) => x in attrs)) { r.err(nameTok, missingAttrMessage(def, k)); ok = false; }
  return ok ? { kind: 'op', op: name, attrs, args: args as PostExpr[] } : undefined;
}
