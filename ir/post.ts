/**
 * Post-ops: elementwise ops folded into the node that produces their input (passes/fuse.ts), carried by that node's
 * epilogue (ir/epilogue.ts) as `post`, an expression over `x` (the node's own result) and `$k` (its k-th extra input:
 * the other operands of the folded ops, appended after the op's own inputs; the epilogue's `args` counts them):
 *
 *   relu(x)      add(x,$0)      relu(add(x,$0))      sub($0,x)      scale{c=0.5}(x)      relu_bwd(x,$1)
 *
 * Every function is an op of the op table with an `ew` formula, which the CPU evaluates here and codegen/ew-wgsl.ts
 * spells in WGSL (wgslPost); the CPU rounds each step to f32, as separate kernels storing f32 would. The epilogue's
 * quantizer applies after the post-ops. ir/parse.ts parsePost reads the text form.
 */
import type { Attrs } from './graph.js';
import { getOp } from './op-registry.js';

export type PostExpr =
  | { kind: 'x' }
  | { kind: 'arg'; index: number }
  | { kind: 'op'; op: string; attrs: Attrs; args: PostExpr[] };

/** A post-op attribute as the IR text writes numbers (String(n) reads back exactly; only -0 needs help). */
const printScalar = (v: unknown) => (Object.is(v, -0) ? '-0' : String(v));

/** The canonical text of a post expression (the IR text's `epilogue{post=…}`, which ir/parse.ts reads back). */
export function postToString(e: PostExpr): string {
  switch (e.kind) {
    case 'x': return 'x';
    case 'arg': return `$${e.index}`;
    case 'op': {
      const keys = Object.keys(e.attrs).sort();
      const attrs = keys.length ? `{${keys.map((k) => `${k}=${printScalar(e.attrs[k])}`).join(',')}}` : '';
      return `${e.op}${attrs}(${e.args.map(postToString).join(',')})`;
    }
  }
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
