/**
 * A node's epilogue: what its kernel does to the result before it stores it, in this order —
 *
 *   post    elementwise post-ops folded into the node (passes/fuse.ts), an expression over x (the op's result) and
 *           $k (the node's k-th extra operand);
 *   q       the quantizer folded into it (format, rounding, the role of the quantize node it replaced);
 *   qpost   an expression applied AFTER the quantizer (a ReLU, or ReLU's backward, of the quantized value).
 *
 * `args` counts the extra operands post and qpost read: the node's last `args` inputs, after the op's own. It is
 * built typed by fusion (or read from the IR text, ir/parse.ts) and never parsed again; ir/print.ts prints it as
 * `epilogue{post=relu(add(x,$0)), args=1, q=bfp<8>, rounding=stochastic, role="A", qpost=relu(x)}`.
 * ir/ops/epilogue.ts gives it its meaning (type inference, CPU semantics); codegen/kernels/builder.ts spells it in WGSL.
 */
import type { Format, Rounding } from './format.js';
import { PostExpr, substituteX } from './post.js';

/** The quantizer folded into a node. `role` (A, E, W, …, site:<fwd>/<bwd>) is for diagnostics (--quant-stats). */
export interface EpilogueQuant { fmt: Format; rounding: Rounding; role?: string }

export interface Epilogue {
  post?: PostExpr;
  /** Extra operands post and qpost read: the node's last `args` inputs. */
  args: number;
  q?: EpilogueQuant;
  qpost?: PostExpr;
}

/** Extra operands of a node's epilogue (0 without one). */
export const postArgs = (e: Epilogue | undefined): number => e?.args ?? 0;

/** The epilogue, or undefined when it does nothing (so a node without one has `epi` absent). */
export function normalEpilogue(e: Epilogue | undefined): Epilogue | undefined {
  return e && (e.post || e.q || e.qpost || e.args) ? e : undefined;
}

/** The quantizer a node applies, or undefined when it has none (absent or f32). */
export function quantOf(e: Epilogue | undefined): EpilogueQuant | undefined {
  return e?.q && e.q.fmt.kind !== 'f32' ? e.q : undefined;
}

/** A copy for a rewrite to edit (the expressions are immutable trees, shared). */
export function copyEpilogue(e: Epilogue | undefined): Epilogue | undefined {
  return e && { ...e, ...(e.q ? { q: { ...e.q } } : {}) };
}

/** The epilogue without its quantizer: a qpost (no longer after a quantizer) joins the post-ops. */
export function withoutQuantizer(e: Epilogue | undefined): Epilogue | undefined {
  if (!e) return undefined;
  const { q: _q, qpost, ...rest } = e;
  if (!qpost) return normalEpilogue(rest);
  return { ...rest, post: substituteX(qpost, rest.post ?? { kind: 'x' }) };
}
