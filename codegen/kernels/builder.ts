/**
 * The one place kernels are assembled: WGSL header (params struct, step uniform, storage bindings), a linear
 * invocation index over a 1-D-or-2-D grid with its bounds guard, params packing, and the structural key.
 *
 * Conventions every generator follows (and runtime/webgpu relies on):
 * - group 0: binding 0 = params uniform `P`, binding 1 = step uniform `stepu` (only when usesStep), storage
 *   bindings at 2, 3, … in `Kernel.bindings` order (binding 1 stays unused when the step uniform is not needed).
 * - Workgroups are 1-D; the invocation index `t` = gid.x + gid.y·(nwg.x·WG), so more than 65535 workgroups spill
 *   into y. The builder adds the param `n_inv` and returns early for t ≥ n_inv, so bodies never see excess ids.
 * - Shapes and other per-node numbers go in params; the key hashes the WGSL text and binding layout, which depend
 *   on structure only, so one pipeline serves every shape of a structure.
 */
import { Binding, BufferRef, Kernel, STEP_UNIFORM_WGSL, stableHash } from '../kernel.js';
import { Graph, Node } from '../../ir/graph.js';
import { EpilogueQuant, postArgs, quantOf } from '../../ir/epilogue.js';
import { PostExpr, scalarArgs } from '../../ir/post.js';
import { wgslPost } from '../ew-wgsl.js';
import { Format, Rounding } from '../../ir/format.js';
import { FIXED_NOCLAMP, FIXED_STOCHASTIC, FIXED_SYM } from '../../ir/quant/bits.js';
import { mxElemWord } from '../../ir/quant/mx.js';
import { TensorType, numel } from '../../ir/types.js';
import { mergeWgslDecls, wgslBlockIndex, wgslQuantFns } from '../quant/wgsl.js';
import { minmaxAxis } from '../../ir/quant/minmax.js';
import { blockLayout } from '../../ir/quant/layout.js';

export type Variant = 'cpu-driver' | 'gpu';

/** What a kernel generator gets for one IR node. */
export interface NodeCtx {
  g: Graph;
  node: Node;
  inTypes: TensorType[];
  variant: Variant;
  /**
   * Folded elementwise post-ops and their operands (node ids), applied before the quantize epilogue; also present
   * (expr = x) when only a qpost reads operands, so every kernel binds them.
   */
  post?: { expr: PostExpr; operands: number[]; scalars: Set<number> };
}

/**
 * The node as its generator sees it: its own inputs only. Post-op operands (ir/post.ts, appended after them) are
 * the epilogue's business, in `post`.
 */
export function nodeCtx(g: Graph, nodeId: number, variant: Variant): NodeCtx {
  const full = g.nodes[nodeId];
  if (!full) throw new Error(`graph '${g.name}' has no node %${nodeId}`);
  const e = full.epi, k = postArgs(e);
  const node = k ? { ...full, inputs: full.inputs.slice(0, full.inputs.length - k) } : full;
  const post = !e?.post && !k ? undefined : (() => {
    const expr: PostExpr = e?.post ?? { kind: 'x' };
    const scalars = scalarArgs(expr);
    if (e?.qpost) scalarArgs(e.qpost, scalars);
    return { expr, operands: full.inputs.slice(full.inputs.length - k), scalars };
  })();
  return { g, node, inTypes: node.inputs.map((i) => g.nodes[i].type), variant, ...(post ? { post } : {}) };
}

export interface BufferDecl {
  /** WGSL variable name. */
  name: string;
  ref: BufferRef;
  elem: Binding['elem'];
  access: Binding['access'];
  /** WGSL array element type when it differs from `elem` (a vec4 view of an f32 buffer). */
  view?: string;
}

export type ParamType = 'u32' | 'i32' | 'f32';
/** Params by name; a bare number is a u32. */
export type ParamValues = Record<string, number | [ParamType, number]>;

export interface KernelSpec {
  name: string;
  buffers: BufferDecl[];
  /** Insertion order is the struct order. */
  params: ParamValues;
  /** Number of invocations; the body runs for t in [0, invocations). */
  invocations: number;
  body: string;
  /** Helper functions placed before main. */
  decls?: string;
  usesStep?: boolean;
  /** The quantize epilogue the body's final stores apply (its params, functions and step uniform are added). */
  epilogue?: Epilogue;
  workgroup?: number;
  clears?: number[];
  flops?: number;
  /**
   * Every invocation of the dispatch runs the body (invocations is a multiple of the workgroup size): no bounds
   * guard, so the body may use workgroup barriers (they need uniform control flow). Past 65535 groups the grid
   * spills into y and may hold whole extra groups (t ≥ invocations): the body clamps its group index.
   */
  wholeGroups?: boolean;
}

export const DEFAULT_WORKGROUP = 64;
const MAX_GROUPS = 65535;

/** Workgroup counts covering `invocations` with 1-D groups of `wg`, spilling into y past 65535 groups. */
export function grid1d(invocations: number, wg: number, maxPerDim = MAX_GROUPS): [number, number, number] {
  const groups = Math.max(1, Math.ceil(invocations / wg));
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  if (y > maxPerDim) throw new Error(`dispatch of ${invocations} invocations exceeds ${maxPerDim}² workgroups`);
  return [Math.ceil(groups / y), y, 1];
}

const f32Bits = new Float32Array(1);
const u32View = new Uint32Array(f32Bits.buffer);

function packParams(p: ParamValues): { words: Uint32Array; fields: string[] } {
  const names = Object.keys(p);
  const n = Math.max(4, Math.ceil(names.length / 4) * 4); // uniform blocks are 16-byte multiples
  const words = new Uint32Array(n);
  const fields: string[] = [];
  names.forEach((name, i) => {
    const v = p[name];
    const [type, value] = typeof v === 'number' ? ['u32' as ParamType, v] : v;
    if (Number.isNaN(value)) throw new Error(`param ${name} is NaN`);
    if (type === 'f32') { f32Bits[0] = value; words[i] = u32View[0]; }
    else {
      if (!Number.isInteger(value) || !Number.isFinite(value)) throw new Error(`param ${name} must be an integer, got ${value}`);
      if (type === 'u32' && (value < 0 || value > 0xffffffff)) throw new Error(`param ${name} out of u32 range: ${value}`);
      words[i] = value >>> 0;
    }
    fields.push(`${name}: ${type}`);
  });
  for (let i = names.length; i < n; i++) fields.push(`pad${i}: u32`);
  return { words, fields };
}

export function makeKernel(s: KernelSpec): Kernel {
  const wg = s.workgroup ?? DEFAULT_WORKGROUP;
  if (s.wholeGroups && s.invocations % wg !== 0)
    throw new Error(`${s.name}: wholeGroups needs a multiple of ${wg} invocations (got ${s.invocations})`);
  return assembleKernel({
    ...s, params: { n_inv: s.invocations, ...s.params }, workgroup: `${wg}`, dispatch: grid1d(s.invocations, wg),
    builtins: '@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>',
    prelude: `  let t = gid.x + gid.y * (nwg.x * ${wg}u);\n${s.wholeGroups ? '' : '  if (t >= P.n_inv) { return; }\n'}`,
  });
}

/**
 * What every kernel shares: params struct and bindings in the conventions above, the epilogue's params, storage,
 * functions and finish, the name (`_q<kind>` for a quantize epilogue) and the structural key. The caller gives the
 * workgroup attribute, main's builtins and a prelude.
 */
export function assembleKernel(s: {
  name: string; buffers: BufferDecl[]; params: ParamValues; body: string; decls?: string; epilogue?: Epilogue;
  usesStep?: boolean; clears?: number[]; flops?: number;
  workgroup: string; builtins: string; prelude: string; dispatch: [number, number, number];
}): Kernel {
  const ep = s.epilogue ?? NO_EPILOGUE;
  if (ep.finish && /\breturn\b/.test(s.body)) throw new Error(`${s.name}: a body that returns would skip its epilogue's finish`);
  const { words, fields } = packParams({ ...s.params, ...ep.params });
  const buffers = [...s.buffers, ...(ep.buffers ?? [])];
  const clears = [...(s.clears ?? []), ...(ep.clears ?? [])];
  const decls = buffers.map((b, i) =>
    `@group(0) @binding(${2 + i}) var<storage, ${b.access}> ${b.name}: array<${b.view ?? b.elem}>;`);
  const usesStep = !!s.usesStep || ep.usesStep;
  const name = ep.kind ? `${s.name}_${ep.kind.startsWith('post') ? '' : 'q'}${ep.kind}` : s.name;
  const source = `// ${name}
struct Params { ${fields.join(', ')} }
@group(0) @binding(0) var<uniform> P: Params;
${usesStep ? STEP_UNIFORM_WGSL + '\n' : ''}${decls.join('\n')}
${ep.decls}${s.decls ?? ''}
@compute @workgroup_size(${s.workgroup})
fn main(${s.builtins}) {
${s.prelude}${s.body.replace(/^\n+|\s+$/g, '')}${ep.finish ? `\n${ep.finish}` : ''}
}
`;
  const bindings: Binding[] = buffers.map((b) => ({ ref: b.ref, elem: b.elem, access: b.access }));
  const key = stableHash({ source, usesStep, layout: bindings.map((b) => [b.elem, b.access]) });
  const k: Kernel = { key, name, wgsl: () => source, bindings, usesStep, params: words, dispatch: s.dispatch };
  if (ep.kind) k.epilogue = ep.kind;
  if (clears.length) k.clears = clears;
  if (s.flops !== undefined) k.flops = s.flops;
  return k;
}

// ---- small helpers shared by generators ----

export const nodeRef = (id: number): BufferRef => ({ kind: 'node', id });
/** A binding of node `id`'s buffer as u32 words or f32 values. */
export const u32Buf = (name: string, id: number, access: BufferDecl['access']): BufferDecl => ({ name, ref: nodeRef(id), elem: 'u32', access });
export const f32Buf = (name: string, id: number, access: BufferDecl['access']): BufferDecl => ({ name, ref: nodeRef(id), elem: 'f32', access });
export const scratchRef = (index: number, bytes: number): BufferRef => ({ kind: 'scratch', index, bytes: Math.max(4, bytes) });

/** A read-only f32 (or i32 for i32 tensors) input binding for input `i` of the node. */
export function inBuf(c: NodeCtx, i: number, name: string): BufferDecl {
  return { name, ref: nodeRef(c.node.inputs[i]), elem: c.inTypes[i].dtype === 'i32' ? 'i32' : 'f32', access: 'read' };
}
export function outBuf(c: NodeCtx, name = 'out'): BufferDecl {
  return { name, ref: nodeRef(c.node.id), elem: c.node.type.dtype === 'i32' ? 'i32' : 'f32', access: 'read_write' };
}

export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
export const outNumel = (c: NodeCtx) => numel(c.node.type.shape);
/** @deprecated read attributes typed: `attrsOf(c.node, 'conv2d').pad` (ir/op-registry.ts); kept so branches that still
 *  call it merge cleanly. */
export const int = (c: NodeCtx, k: string) => c.node.attrs[k] as number;
/** Elementwise workgroup size: large groups amortise per-group cost on CPU drivers. */
export const ewWorkgroup = (_v: Variant) => 256;

/**
 * -inf cannot be a WGSL constant (const-expressions must be finite), so kernels that start a max at -inf take it
 * from a param: spread NEG_INF_PARAM into the params and use NEG_INF.
 */
export const NEG_INF_PARAM = { neg_inf: ['f32', -Infinity] as [ParamType, number] };
export const NEG_INF = 'P.neg_inf';

// ---- the quantize epilogue ----

/**
 * How a kernel quantizes the values it stores (ir/epilogue.ts: a node's epilogue quantizer `q` quantizes its result in place,
 * as the standalone quantize op would). Widths, the fixed mode word and the tensor id are params, so one pipeline
 * serves every width; only the format kind and the rounding are structure. Param names start with `q_` so they
 * never collide with a generator's.
 */
export interface Epilogue {
  params: ParamValues;
  /** The quantizer's WGSL functions. */
  decls: string;
  usesStep: boolean;
  /** Format kind and rounding (`fixed`, `float_sr`, …; '' for none): Kernel.epilogue, and the kernel's name gets
   *  `_q<kind>` (`lpc inspect`, artifact file names). */
  kind: string;
  /** WGSL f32 expression: f32 `value` quantized as element `index` (u32 flat index: the RNG counter). */
  q(value: string, index: string): string;
  /** Storage the epilogue binds after the generator's own buffers (the bfp block maxima), and scratch to zero. */
  buffers?: BufferDecl[];
  clears?: number[];
  /** WGSL main runs once after the body (a tracked maximum's single atomic per invocation); the body must not return. */
  finish?: string;
}

export const NO_EPILOGUE: Epilogue = { params: {}, decls: '', usesStep: false, kind: '', q: (v) => v };

/**
 * The quantizer of `fmt` as an epilogue. bfp and minmax need their element's block statistics: `blockStats(index)`
 * gives the WGSL u32 expressions (bfp: [max |x| bits]; minmax: [max key(x), max key(−x)]); the kernel binds the
 * buffer and adds the layout params itself. A scheduled minmax width is read from the step uniform.
 */
export function quantEpilogue(
  fmt: Format, rounding: Rounding, tensorId: number, blockStats?: (index: string) => string[],
  /** the element's random word from a hash the kernel already computed (see quantize.ts quantizerKernels) */
  randomWord?: (index: string) => string,
): Epilogue {
  if (fmt.kind === 'f32') return NO_EPILOGUE;
  if (rounding !== 'nearest' && rounding !== 'stochastic') throw new Error(`unknown rounding '${rounding}'`);
  const stoch = rounding === 'stochastic';
  const fns = wgslQuantFns(fmt, rounding);
  const params: ParamValues = {};
  const args = { seed: 'stepu.seed', step: 'stepu.step', tensorId: 'P.q_tid', ...(randomWord ? { randomWord } : {}) };
  if (stoch) params.q_tid = tensorId;
  let usesStep = stoch;
  const stats = (i: string) => {
    // the block statistics come from a reduction over the whole tensor (kernels/quantize.ts)
    if (!blockStats) throw new Error(`a ${fmt.kind} quantizer needs the expressions of its block statistics`);
    return blockStats(i);
  };
  let q: (value: string, index: string) => string;
  switch (fmt.kind) {
    case 'fixed':
      params.q_wl = fmt.wl; params.q_fl = fmt.fl;
      params.q_mode = (stoch ? FIXED_STOCHASTIC : 0) | (fmt.noclamp ? FIXED_NOCLAMP : 0) | (fmt.sym ? FIXED_SYM : 0);
      q = (v, i) => fns.call(v, i, { ...args, wl: 'P.q_wl', fl: 'P.q_fl', mode: 'P.q_mode' });
      break;
    case 'float':
      params.q_exp = fmt.exp; params.q_man = fmt.man;
      q = (v, i) => fns.call(v, i, { ...args, exp: 'P.q_exp', man: 'P.q_man' });
      break;
    case 'bfp':
      params.q_wl = fmt.wl;
      q = (v, i) => fns.call(v, i, { ...args, wl: 'P.q_wl', maxAbsBits: stats(i)[0] });
      break;
    case 'mx':
      // one block per invocation (kernels/mx.ts): blockStats gives the block's scale byte
      if (fmt.sched) usesStep = true; // a scheduled MXINT width: the word from the step uniform
      else params.q_mx_elem = mxElemWord(fmt.elem);
      q = (v, i) => fns.call(v, i, { ...args, mxScale: stats(i)[0], ...(fmt.sched ? {} : { mxElem: 'P.q_mx_elem' }) });
      break;
    case 'minmax': {
      if (!fmt.sched) params.q_bits = fmt.bits;
      usesStep ||= !!fmt.sched;
      const bits = fmt.sched ? `stepu.bits_${fmt.sched}` : 'P.q_bits';
      q = (v, i) => { const [k, kn] = stats(i); return fns.call(v, i, { ...args, bits, minmaxKeys: [k, kn] }); };
      break;
    }
  }
  return { params, decls: fns.decls, usesStep, kind: `${fmt.kind}${stoch ? '_sr' : ''}`, q };
}

/** The quantizer of the node's epilogue, or undefined when it has none (absent or f32). */
export function nodeQuant(node: Node): EpilogueQuant | undefined {
  return quantOf(node.epi);
}

/**
 * The epilogue for the kernel that stores the node's final values. fixed and float fuse into that store. bfp and
 * minmax need statistics over a whole block before any element can be rounded, so the store stays raw but also
 * folds the value into its block's statistics (trackEpilogue); kernelsForNode then appends one in-place quantize
 * kernel reading them (kernels/quantize.ts). That saves a separate reduction pass over the output.
 */
export function epilogue(c: NodeCtx): Epilogue {
  const q = nodeQuant(c.node);
  let base = !q ? NO_EPILOGUE : isBlockFormat(q.fmt) ? trackEpilogue(q.fmt, c.node.type.shape) : quantEpilogue(q.fmt, q.rounding, c.node.id);
  // qpost follows the quantizer: here for formats rounded in this store; block formats apply it in their rounding pass
  if (q && !isBlockFormat(q.fmt) && c.node.epi?.qpost) {
    const after = qpostOf(c), inner = base;
    base = { ...inner, q: (v, i) => after(inner.q(v, i), i) };
  }
  return c.post ? withPost(base, postOps(c)) : base;
}

/**
 * WGSL applying a node's qpost (ir/ops/epilogue.ts) to its quantized value v of flat element i; the identity when it has
 * none. Its operands are the post-op bindings (postOps: the kernel must bind them).
 */
export function qpostOf(c: NodeCtx): (v: string, i: string) => string {
  const e = c.node.epi?.qpost, p = c.post;
  if (!e) return (v) => v;
  return (v, i) => wgslPost(e, v, (j) => {
    if (!p) throw new Error(`qpost of %${c.node.id} reads $${j} but the node has no extra operands`);
    return `q_post${j}[${p.scalars.has(j) ? '0u' : i}]`;
  });
}

/** The post-ops of a node as WGSL: `apply(v, i)` for the value v of flat element i, and the operand bindings. */
export function postOps(c: NodeCtx): { apply: (v: string, i: string) => string; buffers: BufferDecl[] } {
  const p = c.post;
  if (!p) return { apply: (v) => v, buffers: [] };
  const buffers = p.operands.map((id, j): BufferDecl => ({ name: `q_post${j}`, ref: nodeRef(id), elem: 'f32', access: 'read' }));
  return { apply: (v, i) => wgslPost(p.expr, v, (j) => `q_post${j}[${p.scalars.has(j) ? '0u' : i}]`), buffers };
}

/** `base` applied to the post-ops' result; Kernel.epilogue becomes `post` or `post_q<kind>`. */
function withPost(base: Epilogue, post: ReturnType<typeof postOps>): Epilogue {
  return {
    ...base,
    kind: base.kind ? `post_q${base.kind}` : 'post',
    q: (v, i) => base.q(post.apply(v, i), i),
    buffers: [...post.buffers, ...(base.buffers ?? [])],
  };
}

/** Formats whose quantizer needs a reduction per block first. */
export type BlockFormat = Extract<Format, { kind: 'bfp' | 'minmax' | 'mx' }>;
export const isBlockFormat = (f: Format): f is BlockFormat => f.kind === 'bfp' || f.kind === 'minmax' || f.kind === 'mx';

/** Block layout and u32 statistics per block: bfp max |x| bits (1), minmax max key(x) and max key(−x) (2). mx has
 *  none: its kernel (kernels/mx.ts) reduces each small block itself. */
export function blockStatsLayout(f: BlockFormat, shape: readonly number[]) {
  if (f.kind === 'mx') throw new Error('mx blocks have no statistics pass (codegen/kernels/mx.ts)');
  const L = blockLayout(shape, f.kind === 'bfp' ? f.axis : minmaxAxis(f));
  return { ...L, perBlock: f.kind === 'bfp' ? 1 : 2 };
}

/** Scratch index of a node's block statistics (generators number their own scratch from 0 upwards). */
export const BLOCK_STATS_SCRATCH = 8;
/** Kernel.epilogue of a producer that tracks its block statistics ('bfp_track', 'minmax_track'). */
export const isTrackEpilogue = (kind: string | undefined) => !!kind && kind.endsWith('_track');

/**
 * The store folds its value into its block's statistics with atomicMax of order-preserving u32s (bfp: |x| bits,
 * NaN above Inf, as the max-|x| kernel; minmax: keys of x and −x). Tensor-wide blocks (one block) keep a running
 * maximum per invocation and fold it once when main ends (`finish`): an invocation stores up to a register tile of
 * values, and per-store atomics cost CPU drivers a third of an elementwise kernel's time. Per-block layouts fold
 * each store; the plain load first skips the atomic write when the statistic already covers the value, which is
 * almost always: one contended address per block would otherwise serialise the stores.
 */
export function trackEpilogue(f: BlockFormat, shape: readonly number[]): Epilogue {
  // mx tracks nothing: the store stays raw and the appended mx kernel finds each block's max itself
  if (f.kind === 'mx') return { ...NO_EPILOGUE, kind: 'mx_track' };
  const L = blockStatsLayout(f, shape);
  const whole = L.axisLen === 1;
  const params: ParamValues = whole ? {} : { q_axis_len: L.axisLen, q_inner: L.inner };
  const fold = (slot: string, val: string) => `  if (${val} > atomicLoad(&q_stats[${slot}])) { atomicMax(&q_stats[${slot}], ${val}); }`;
  const keys = f.kind === 'bfp' ? ['(u & 0x7fffffffu)'] : ['lpc_key(u)', 'lpc_key(u ^ 0x80000000u)'];
  const minmaxDecls = f.kind === 'minmax' ? mergeWgslDecls({ chunks: ['lpc_minmax_key'] }) + '\n' : '';
  const track = (lines: string[]) => `fn lpc_track(v: f32, i: u32) -> f32 {
  let u = bitcast<u32>(v);
${lines.join('\n')}
  return v;
}
`;
  const decls = whole
    ? `${minmaxDecls}var<private> q_run: array<u32, ${keys.length}>;
${track(keys.map((k, j) => `  q_run[${j}] = max(q_run[${j}], ${k});`))}`
    : `${minmaxDecls}${track([`  let b = ${wgslBlockIndex('i', 'P.q_axis_len', 'P.q_inner')};`, ...keys.map((k, j) => fold(j ? 'P.q_axis_len + b' : 'b', k))])}`;
  const finish = whole ? keys.map((_, j) => fold(`${j}u`, `q_run[${j}]`)).join('\n') : undefined;
  return {
    params, decls, usesStep: false, kind: `${f.kind}_track`, q: (v, i) => `lpc_track(${v}, ${i})`,
    buffers: [{ name: 'q_stats', ref: scratchRef(BLOCK_STATS_SCRATCH, L.axisLen * L.perBlock * 4), elem: 'atomic<u32>', access: 'read_write' }],
    clears: [BLOCK_STATS_SCRATCH],
    ...(finish ? { finish } : {}),
  };
}
