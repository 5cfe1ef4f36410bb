/**
 * The IR's text form (graph.lpir, `--print-after`): a versioned header, then one node per line, MLIR-like.
 *
 *   lpc.ir 1
 *   module "lenet5"
 *
 *   graph @train {
 *     %5 = conv2d(%0, %1, %2) {pad=2, stride=1} : tensor<[64,6,28,28], f32> loc("models/lenet5.ts":5:14)
 *     %9 = conv2d(%6, %7, %8, %4) {pad=1, stride=1} epilogue{post=relu(add(x,$0)), args=1, q=bfp<8,axis=0>, rounding=nearest, role="A"} : …
 *     output "loss" = %20
 *     update "conv0.weight" = %33
 *   }
 *
 * The text is canonical so that print(parse(print(m))) === print(m): attributes sorted by key, numbers as JS prints
 * them (String(n) round-trips every double exactly), strings JSON-escaped, formats via formatToString; a node's
 * epilogue (ir/epilogue.ts) follows its attributes, its fields in the order they apply (printEpilogue).
 * ./parse.ts reads it back.
 */
import { AttrValue, Graph, IR_VERSION, Module, Node } from './graph.js';
import { formatToString } from './format.js';
import type { Epilogue } from './epilogue.js';
import { postToString } from './post.js';
import { Loc, typeToString } from './types.js';

export const IR_HEADER = 'lpc.ir';

/** Graph names that need no quoting after `@`. */
export const BARE_NAME = /^[A-Za-z_][\w.-]*$/;

/** String(n) is the shortest text that reads back as the same double; only -0 needs help. */
export function printNumber(n: number): string {
  return Object.is(n, -0) ? '-0' : String(n);
}

export function printAttrValue(v: AttrValue): string {
  if (typeof v === 'number') return printNumber(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(printNumber).join(',')}]`;
  return formatToString(v);
}

export function printGraphName(name: string): string {
  return `@${BARE_NAME.test(name) ? name : JSON.stringify(name)}`;
}

export function printLoc(l: Loc): string {
  return `loc(${JSON.stringify(l.file)}:${l.line}:${l.col})`;
}

/**
 * `epilogue{post=…, args=k, q=fmt, rounding=…, role="…", qpost=…}`: fields in the order they apply, absent ones left
 * out (args when 0); rounding is always written with q, so a reader never has to know the default.
 */
export function printEpilogue(e: Epilogue): string {
  const f: string[] = [];
  if (e.post) f.push(`post=${postToString(e.post)}`);
  if (e.args) f.push(`args=${e.args}`);
  if (e.q) {
    f.push(`q=${formatToString(e.q.fmt)}`, `rounding=${e.q.rounding}`);
    if (e.q.role !== undefined) f.push(`role=${JSON.stringify(e.q.role)}`);
  }
  if (e.qpost) f.push(`qpost=${postToString(e.qpost)}`);
  return `epilogue{${f.join(', ')}}`;
}

/** One node, without indentation: `%id = op(%a, %b) {k=v, …} epilogue{…} : type loc(…)`. */
export function printNode(n: Node): string {
  let s = `%${n.id} = ${n.op}`;
  if (n.inputs.length) s += `(${n.inputs.map((i) => `%${i}`).join(', ')})`;
  const keys = Object.keys(n.attrs).sort();
  if (keys.length) s += ` {${keys.map((k) => `${k}=${printAttrValue(n.attrs[k])}`).join(', ')}}`;
  if (n.epi) s += ` ${printEpilogue(n.epi)}`;
  s += ` : ${typeToString(n.type)}`;
  if (n.loc) s += ` ${printLoc(n.loc)}`;
  return s;
}

export function printGraph(g: Graph): string {
  const lines = [`graph ${printGraphName(g.name)} {`];
  for (const n of g.nodes) lines.push(`  ${printNode(n)}`);
  for (const o of g.outputs) lines.push(`  output ${JSON.stringify(o.name)} = %${o.node}`);
  for (const u of g.updates) lines.push(`  update ${JSON.stringify(u.name)} = %${u.node}`);
  lines.push('}');
  return lines.join('\n');
}

export function printModule(m: Module): string {
  const head = `${IR_HEADER} ${IR_VERSION}\nmodule ${JSON.stringify(m.name)}\n`;
  return head + m.graphs.map((g) => `\n${printGraph(g)}\n`).join('');
}
