/**
 * The op registry: every op's definition by name (ir/ops/*.ts define and register them all) and the types an op
 * definition is made of. A module of its own so that ir/post.ts, which ir/ops/ uses, can look ops up without an
 * import cycle; `getOp` is only called after ir/ops/index.ts has run (ir/graph.ts imports it).
 *
 * Typed attributes: an op's attribute schema (`{ stride: 'int', pad: 'int' }`) gives its attributes a TypeScript type
 * (`AttrsOf`); ir/ops/epilogue.ts `def` types an op's own rules with it, and each ir/ops/<family>.ts adds its ops to
 * `OpAttrs`, so code anywhere reads a node's attributes typed, checked against its op: `attrsOf(node, 'conv2d').pad`.
 */
import type { Attrs } from './graph.js';
import type { TensorType } from './types.js';
import type { Epilogue } from './epilogue.js';
import type { Format, Rounding } from './format.js';

export type Arr = Float32Array | Float64Array;

export interface CpuCtx<A = Attrs> {
  attrs: A;
  inTypes: TensorType[];
  type: TensorType;
  /** The node's epilogue (ir/epilogue.ts); ir/ops/epilogue.ts applies it around the op's own `cpu`. Not optional, so
   *  code that builds a context (the interpreter, tests) cannot drop a node's epilogue by leaving it out. */
  epi: Epilogue | undefined;
  /** Runtime scalars a quantizer needs for stochastic rounding (seed, step) and the node id as tensor id. */
  rng: { seed: number; step: number; tensorId: number };
  /** Called by every quantizer (a quantize node, a minmax_quantize, an epilogue quantizer) with its input and output. */
  onQuantize?: (input: ArrayLike<number>, output: ArrayLike<number>) => void;
}

/** What a gradient rule sees: the forward node's inputs `x`, its output `y`, the incoming gradient `dy`. */
export interface GradCtx<A = Attrs> {
  x: number[];
  y: number;
  dy: number;
  attrs: A;
  inTypes: TensorType[];
  /** Adds a backward node (its loc is the forward node's). */
  add(op: string, inputs: number[], attrs?: Attrs): number;
}

export type AttrKind = 'int' | 'float' | 'ints' | 'string' | 'bool' | 'format' | 'rounding';

/** The TypeScript type of each attribute kind. */
export interface AttrKindType {
  int: number; float: number; ints: number[]; string: string; bool: boolean; format: Format;
  /** a string, nearest or stochastic (printed like any string) */
  rounding: Rounding;
}

/** An op's attribute schema: each attribute's kind. */
export type AttrSchema = Readonly<Record<string, AttrKind>>;

/** The attributes of schema S as a TypeScript type, the keys in O optional: AttrsOf<{ k: 'int' }> is { k: number }. */
export type AttrsOf<S extends AttrSchema, O extends PropertyKey = never> =
  { -readonly [K in Exclude<keyof S, O>]: AttrKindType[S[K]] } & { -readonly [K in Extract<keyof S, O>]?: AttrKindType[S[K]] };

/**
 * The attributes of each op by name, as types. Each ir/ops/<family>.ts adds its ops here, from the same schema
 * constants it registers them with:
 *
 *   declare module '../op-registry.js' { interface OpAttrs { conv2d: AttrsOf<typeof CONV2D> } }
 */
export interface OpAttrs {}
export type OpName = keyof OpAttrs;

/**
 * A node's attributes, typed by its op's schema; throws when the node is none of `ops` (so a reader that names the
 * wrong op fails loudly, not with undefined). The values are trusted as the verifier and the IR parser check them
 * against the same schema.
 */
export function attrsOf<K extends OpName>(n: { op: string; attrs: Attrs; id?: number }, ...ops: K[]): OpAttrs[K] {
  if (!(ops as string[]).includes(n.op)) throw new Error(`node ${n.id !== undefined ? `%${n.id} ` : ''}is ${n.op}, not ${ops.join(' or ')}`);
  return n.attrs as unknown as OpAttrs[K];
}

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
