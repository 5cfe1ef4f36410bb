/**
 * Split reductions without atomics: a long reduction is cut into `chunks` pieces computed by separate invocations
 * into a scratch buffer [chunks, total], then summed in a fixed order by sumPartialsKernel. Deterministic (no float
 * atomics, same order every run) and it keeps both CPU cores busy when there are few outputs (a conv1 weight
 * gradient has 150 outputs but a 50 k-long reduction each).
 */
import { Kernel } from '../kernel.js';
import {
  BufferDecl, NodeCtx, ParamValues, Variant, ceilDiv, epilogue, isBlockFormat, makeKernel, nodeQuant, outBuf, outNumel, postOps, qpostOf, scratchRef,
} from './builder.js';
import { onePassBlockKernel, onePassFits } from './quantize.js';
import { mxNodeKernel } from './mx.js';

/** Invocations a split reduction aims for: a few per core on CPU drivers, many on GPUs. */
export function targetInvocations(v: Variant): number {
  return v === 'gpu' ? 32768 : 2048;
}

/**
 * How many chunks to cut `length` units of reduction into when `tiles` invocations already exist without
 * splitting: enough to reach the target, never fewer than `minPerChunk` units per chunk, no empty chunks.
 */
export function chooseChunks(length: number, tiles: number, v: Variant, minPerChunk: number): { chunks: number; perChunk: number } {
  const want = Math.max(1, Math.min(ceilDiv(targetInvocations(v), tiles), Math.floor(length / minPerChunk)));
  const perChunk = ceilDiv(length, Math.min(want, length));
  return { chunks: ceilDiv(length, perChunk), perChunk };
}

/** Scratch index 0 holds the partials of a split reduction: [chunks, total] f32. */
export function partialsBuffer(chunks: number, total: number, access: 'read' | 'read_write'): BufferDecl {
  return { name: 'part', ref: scratchRef(0, chunks * total * 4), elem: 'f32', access };
}

export interface SumOptions {
  /** More read-only inputs `finish` uses. */
  extra?: BufferDecl[];
  params?: ParamValues;
  /** WGSL f32 expression of `acc` (the sum) and its index `i` (a u32 expression) stored as the result (default `acc`). */
  finish?: (i: string) => string;
}

/** The node's result[t] = finish(Σ_s part[s·total + t]), s ascending, for t < total (= the result's size). */
export function sumPartialsKernel(c: NodeCtx, name: string, chunks: number, total: number, o: SumOptions = {}): Kernel {
  const sum = (i: string) => `var acc = 0.0;\n    for (var s = 0u; s < P.chunks; s++) { acc += part[s * P.total + ${i}]; }\n    `;
  return resultKernel(c, `${name}_sum`, [partialsBuffer(chunks, total, 'read'), ...(o.extra ?? [])], { total, chunks, ...o.params },
    (i) => ({ loads: sum(i), expr: o.finish?.(i) ?? 'acc' }));
}

/**
 * The node's result element by element (`value(i)`: WGSL statements and an f32 expression of the flat index i —
 * never `t`: the one-pass kernel walks a block per invocation) stored through the node's epilogue. A small bfp or
 * minmax result (a bias or BN parameter gradient, weight-gradient rows) computes, reduces and rounds in one dispatch.
 */
export function resultKernel(c: NodeCtx, name: string, buffers: BufferDecl[], params: ParamValues,
  value: (i: string) => { loads: string; expr: string }): Kernel {
  const out = outBuf(c), q = nodeQuant(c.node);
  if (q?.fmt.kind === 'mx') return mxNodeKernel(c, name, buffers, params, value);
  if (q && isBlockFormat(q.fmt) && onePassFits(q.fmt, c.node.type.shape)) {
    const post = postOps(c);
    return onePassBlockKernel({
      name, fmt: q.fmt, rounding: q.rounding, tensorId: c.node.id, shape: c.node.type.shape,
      buffers: [...buffers, out, ...post.buffers], params, out: out.name, after: qpostOf(c), variant: c.variant,
      value: (i) => { const v = value(i); return { loads: v.loads, expr: post.apply(v.expr, i) }; },
    });
  }
  const ep = epilogue(c), v = value('t');
  return makeKernel({
    name, buffers: [...buffers, out], params, invocations: outNumel(c), epilogue: ep,
    body: `\n  ${v.loads}${out.name}[t] = ${ep.q(v.expr, 't')};`,
  });
}
