/**
 * The op registry: every op's definition by name (ir/ops/*.ts define and register them all) and the types an op
 * definition is made of. A module of its own so that ir/post.ts, which ir/ops/ uses, can look ops up without an
 * import cycle; `getOp` is only called after ir/ops/index.ts has run (ir/graph.ts imports it).
 */
import type { Attrs } from './graph.js';
import type { TensorType } from './types.js';
import type { Epilogue } from './epilogue.js';

export type Arr = Float32Array | Float64Array;

export interface CpuCtx {
  attrs: Attrs;
  inTypes: TensorType[];
  type: TensorType;
  /** The node's epilogue (ir/epilogue.ts); ir/ops/epilogue.ts applies it around the op's own `cpu`. */
  epi?: Epilogue;
  /** Runtime scalars a quantizer needs for stochastic rounding (seed, step) and the node id as tensor id. */
  rng: { seed: number; step: number; tensorId: number };
  /** Called by every quantizer (a quantize node, a minmax_quantize, an epilogue quantizer) with its input and output. */
  onQuantize?: (input: ArrayLike<number>, output: ArrayLike<number>) => void;
}

/** What a gradient rule sees: the forward node's inputs `x`, its output `y`, the incoming gradient `dy`. */
export interface GradCtx {
  x: number[];
  y: number;
  dy: number;
  attrs: Attrs;
  inTypes: TensorType[];
  /** Adds a backward node (its loc is the forward node's). */
  add(op: string, inputs: number[], attrs?: Attrs): number;
}

export type AttrKind = 'int' | 'float' | 'ints' | 'string' | 'bool' | 'format';

export interface OpDef {
  name: string;
  arity: number | [number, number];
  attrs: Record<string, AttrKind>;
  /** Attributes that may be absent. */
  optional?: string[];
  /** The result type; `epi`, the node's epilogue, is ir/ops/epilogue.ts's business (an op's own rule ignores it). */
  infer(inTypes: TensorType[], attrs: Attrs, epi?: Epilogue): TensorType;
  cpu(ins: Arr[], out: Arr, c: CpuCtx): void;
  /** Gradient w.r.t. each input (null: none). Absent: the op is not differentiable (e.g. stats, labels). */
  grad?(g: GradCtx): (number | null)[];
  /** Elementwise ops: a scalar formula (inputs listed in `scalarInputs` are [1] broadcasts); codegen/ew-wgsl.ts
   *  spells the same formula in WGSL. */
  ew?: { cpu(v: number[], a: Attrs): number; scalarInputs?: number[] };
}

const ops = new Map<string, OpDef>();

export function register(d: OpDef): void { ops.set(d.name, d); }

export function getOp(name: string): OpDef {
  const d = ops.get(name);
  if (!d) throw new Error(`unknown op '${name}'`);
  return d;
}
export function allOps(): OpDef[] { return [...ops.values()]; }
