/**
 * Post-ops: elementwise ops folded into the node that produces their input (passes/fuse.ts), carried by that node
 * as attribute `post`, an expression over `x` (the node's own result) and `$k` (its k-th extra input: the other
 * operands of the folded ops, appended after the op's own inputs; `post_args` counts them):
 *
 *   relu(x)      add(x,$0)      relu(add(x,$0))      sub($0,x)      scale{c=0.5}(x)      relu_bwd(x,$1)
 *
 * Every function is an op of the op table with an `ew` formula, which the CPU evaluates here and codegen/ew-wgsl.ts
 * spells in WGSL (wgslPost); the CPU rounds each step to f32, as separate kernels storing f32 would. The quantize
 * epilogue (qfmt) applies after the post-ops.
 */
import type { Attrs } from './graph.js';
import { getOp } from './op-registry.js';

export type PostExpr =
  | { kind: 'x' }
  | { kind: 'arg'; index: number }
  | { kind: 'op'; op: string; attrs: Attrs; args: PostExpr[] };

const X: PostExpr = { kind: 'x' };

export function postToString(e: PostExpr): string {
  switch (e.kind) {
    case 'x': return 'x';
    case 'arg': return `$${e.index}`;
    case 'op': {
      const keys = Object.keys(e.attrs).sort();
      const attrs = keys.length ? `{${keys.map((k) => `${k}=${JSON.stringify(e.attrs[k])}`).join(',')}}` : '';
      return `${e.op}${attrs}(${e.args.map(postToString).join(',')})`;
    }
  }
}

/** Parses a post expression; errors name the column. */
export function parsePost(text: string): PostExpr {
  let i = 0;
  const fail = (msg: string): never => { throw new Error(`post expression '${text}', column ${i + 1}: ${msg}`); };
  const ws = () => { while (text[i] === ' ') i++; };
  const expr = (): PostExpr => {
    ws();
    if (text[i] === '$') {
      const m = /^\$(\d+)/.exec(text.slice(i)) ?? fail('expected $<index>');
      i += m[0].length;
      return { kind: 'arg', index: Number(m[1]) };
    }
    const m = /^[A-Za-z_]\w*/.exec(text.slice(i)) ?? fail("expected 'x', '$k' or an elementwise op");
    i += m[0].length;
    if (m[0] === 'x') return X;
    const def = getOp(m[0]);
    if (!def.ew) fail(`'${m[0]}' is not an elementwise op`);
    const attrs: Attrs = {};
    if (text[i] === '{') {
      i++;
      for (;;) {
        const a = /^\s*(\w+)=(-?[\d.eE+-]+|true|false)\s*/.exec(text.slice(i)) ?? fail('expected name=value');
        i += a[0].length;
        attrs[a[1]] = JSON.parse(a[2]);
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; break; }
        fail("expected ',' or '}'");
      }
    }
    if (text[i] !== '(') fail("expected '('");
    i++;
    const args: PostExpr[] = [];
    for (;;) {
      args.push(expr());
      ws();
      if (text[i] === ',') { i++; continue; }
      if (text[i] === ')') { i++; break; }
      fail("expected ',' or ')'");
    }
    const arity = def.arity as number;
    if (args.length !== arity) fail(`${m[0]} takes ${arity} operands, got ${args.length}`);
    return { kind: 'op', op: m[0], attrs, args };
  };
  const e = expr();
  ws();
  if (i !== text.length) fail('unexpected text after the expression');
  return e;
}

/** Replaces `x` in `outer` by `inner` (folding one more consumer: outer(inner(x))). */
export function substituteX(outer: PostExpr, inner: PostExpr): PostExpr {
  if (outer.kind === 'x') return inner;
  if (outer.kind === 'arg') return outer;
  return { ...outer, args: outer.args.map((a) => substituteX(a, inner)) };
}

/** Whether operand `index` of op `op` is a [1]-shaped broadcast scalar. */
export function isScalarOperand(op: string, index: number): boolean {
  return getOp(op).ew?.scalarInputs?.includes(index) ?? false;
}

/** The extra inputs read as broadcast scalars (a `$k` in a scalar operand position). */
export function scalarArgs(e: PostExpr, out = new Set<number>()): Set<number> {
  if (e.kind === 'op')
    e.args.forEach((a, j) => {
      if (a.kind === 'arg' && isScalarOperand(e.op, j)) out.add(a.index);
      scalarArgs(a, out);
    });
  return out;
}

/** CPU: the value of `e` for result `x` and extra operands `args`; `round` rounds each op's result (Math.fround). */
export function evalPost(e: PostExpr, x: number, args: number[], round: (v: number) => number): number {
  switch (e.kind) {
    case 'x': return x;
    case 'arg': return args[e.index];
    case 'op': return round(getOp(e.op).ew!.cpu(e.args.map((a) => evalPost(a, x, args, round)), e.attrs));
  }
}
