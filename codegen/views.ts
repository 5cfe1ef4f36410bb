/**
 * Kernels addressing placed values (passes/channel-views.ts): a binding of a value that lives as a range of another
 * value's buffer gets the root's buffer, and every access `X[e]` of it becomes `X[lpc_vK(u32(e))]`, the view's
 * batch-stride/offset map with its numbers in the params uniform. Applied to an assembled kernel, so every generator
 * gets strided views without knowing about them; the structural key changes (a view kernel is another pipeline),
 * the numbers do not enter it.
 *
 * A binding qualifies when the kernel only indexes it (no `&X`, no arrayLength) and sees plain f32 (or its u32 bits),
 * or vec4s of them where the view's numbers are multiples of 4 (then a vec4 never straddles two pieces).
 */
import { Kernel, stableHash } from './kernel.js';

/** A placed value's element map (passes/channel-views.ts viewIndex; codegen does not import passes). */
export interface ViewIndex { part: number; stride: number; off: number }

interface Decl { binding: number; name: string; elem: string }

function decls(src: string): Decl[] {
  const out: Decl[] = [];
  for (const m of src.matchAll(/@binding\((\d+)\) var<storage, \w+> (\w+): array<(.+)>;/g))
    out.push({ binding: Number(m[1]), name: m[2], elem: m[3] });
  return out;
}

/** The declaration of storage binding `index` (Kernel.bindings order). */
function declOf(src: string, index: number): Decl | undefined {
  return decls(src).find((d) => d.binding === 2 + index);
}

// f32 values, also seen as their bits (the in-place quantizers read and write u32 words)
const SCALAR = new Set(['f32', 'u32']), VEC4 = new Set(['vec4<f32>', 'vec4<u32>']);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Every use of `name` outside its declaration, as [start, index of its '['] or [start, -1] when not indexed. */
function uses(src: string, name: string): [number, number][] {
  const out: [number, number][] = [];
  for (const m of src.matchAll(new RegExp(`(?<![\\w.])${esc(name)}\\b`, 'g'))) {
    const at = m.index!;
    if (/var<storage, \w+> $/.test(src.slice(Math.max(0, at - 40), at))) continue; // the declaration
    let j = at + name.length;
    while (src[j] === ' ') j++;
    out.push([at, src[j] === '[' ? j : -1]);
  }
  return out;
}

const indexedOnly = new WeakMap<Kernel, Map<number, Decl | null>>();
/** Binding `index`'s declaration when the kernel only ever indexes it, else null (memoized: kernels are immutable). */
function indexedDecl(k: Kernel, index: number): Decl | null {
  let m = indexedOnly.get(k);
  if (!m) { m = new Map(); indexedOnly.set(k, m); }
  if (!m.has(index)) {
    const src = k.wgsl(), d = declOf(src, index);
    m.set(index, d && uses(src, d.name).every(([, open]) => open >= 0) ? d : null);
  }
  return m.get(index)!;
}

/** Can binding `index` of the kernel address a view whose element numbers are all multiples of `unit`? */
export function canAddressView(k: Kernel, index: number, unit: number): boolean {
  const d = indexedDecl(k, index);
  return !!d && (SCALAR.has(d.elem) || (VEC4.has(d.elem) && unit % 4 === 0));
}

/** Index of the ']' matching the '[' at `open`. */
function closing(src: string, open: number): number {
  let depth = 0;
  for (let j = open; j < src.length; j++) {
    if (src[j] === '[') depth++;
    else if (src[j] === ']' && --depth === 0) return j;
  }
  throw new Error(`unbalanced '[' at ${open}`);
}

/** `name[e]` → `name[fn(u32(e))]` everywhere, innermost first (`replace`: → `fn(u32(e))`); one pass over the text. */
function wrapIndex(src: string, name: string, fn: string, replace = false): string {
  const re = new RegExp(`(?<![\\w.])${esc(name)}\\b`, 'g');
  let out = '', from = 0;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    const at = m.index;
    if (/var<storage, \w+> $/.test(src.slice(Math.max(0, at - 40), at))) continue; // the declaration
    let open = at + name.length;
    while (src[open] === ' ') open++;
    if (src[open] !== '[') throw new Error(`${name} is used without an index`);
    const close = closing(src, open), inner = wrapIndex(src.slice(open + 1, close), name, fn, replace);
    out += replace ? `${src.slice(from, at)}${fn}(u32(${inner}))` : `${src.slice(from, open + 1)}${fn}(u32(${inner}))]`;
    from = close + 1;
    re.lastIndex = from;
  }
  return out + src.slice(from);
}

/**
 * The kernel with the given bindings (by index in `k.bindings`) addressed through their views. Params: the real
 * fields keep their words, the views' fields follow, the struct is padded to 16 bytes again.
 */
export function viewKernel(k: Kernel, views: Map<number, ViewIndex>): Kernel {
  if (!views.size) return k;
  let src = k.wgsl();
  const m = /struct Params \{ (.*) \}/.exec(src);
  if (!m) throw new Error(`${k.name}: no params struct`);
  const fields = m[1].split(', ');
  while (fields.length && fields[fields.length - 1] === `pad${fields.length - 1}: u32`) fields.pop();
  const words = [...k.params.slice(0, fields.length)];
  let fns = '';
  for (const [index, v] of [...views].sort((a, b) => a[0] - b[0])) {
    const d = declOf(src, index);
    const s = d && SCALAR.has(d.elem) ? 1 : 4;
    if (!d || !canAddressView(k, index, s === 1 ? 1 : gcd3(v))) throw new Error(`${k.name}: binding ${index} cannot address a strided view`);
    const p = `lpc_v${index}`;
    fields.push(`${p}_part: u32`, `${p}_stride: u32`, `${p}_off: u32`);
    words.push(v.part / s, v.stride / s, v.off / s);
    fns += `fn ${p}(i: u32) -> u32 { return (i / P.${p}_part) * P.${p}_stride + P.${p}_off + i % P.${p}_part; }\n`;
    src = wrapIndex(src, d.name, p);
  }
  while (fields.length % 4) fields.push(`pad${fields.length}: u32`);
  while (words.length < fields.length) words.push(0);
  src = src.replace(/struct Params \{ .* \}/, `struct Params { ${fields.join(', ')} }`).replace('@compute', `${fns}@compute`);
  const key = stableHash({ source: src, usesStep: k.usesStep, layout: k.bindings.map((b) => [b.elem, b.access]) });
  const out: Kernel = { ...k, key, wgsl: () => src, params: Uint32Array.from(words) };
  return out;
}

function gcd3(v: ViewIndex): number {
  const g = (a: number, b: number): number => (b ? g(b, a % b) : a);
  return g(g(v.part, v.stride), v.off || v.part);
}

/**
 * Accumulation in place (a ChannelView with `accumulates`): the node's output takes the range of the post-op operand
 * it adds, so the kernel reads the operand's element from the output buffer just before storing over it. Binding
 * `operand` goes; its reads `V[e]` become `lpc_acc(u32(e))`, the output's element e (a scalar of a vec4 output).
 * Possible when the operand is f32, read by index only, and the output is f32 or vec4<f32>.
 */
export function canMergeOperand(k: Kernel, operand: number, output: number): boolean {
  const op = indexedDecl(k, operand), out = declOf(k.wgsl(), output);
  return !!op && !!out && op.elem === 'f32' && (out.elem === 'f32' || out.elem === 'vec4<f32>') && k.bindings[output]?.access === 'read_write';
}

export function mergeOperand(k: Kernel, operand: number, output: number): Kernel {
  if (!canMergeOperand(k, operand, output)) throw new Error(`${k.name}: binding ${operand} cannot be read from the output`);
  let src = k.wgsl();
  const op = declOf(src, operand)!, out = declOf(src, output)!;
  const read = out.elem === 'f32' ? `${out.name}[i]` : `${out.name}[i / 4u][i % 4u]`;
  src = src.replace(new RegExp(`@group\\(0\\) @binding\\(${2 + operand}\\) var<storage, \\w+> ${esc(op.name)}: array<[^;]+>;\\n`), '');
  src = src.replace(/@binding\((\d+)\)/g, (m, b) => (Number(b) > 2 + operand ? `@binding(${Number(b) - 1})` : m));
  src = wrapIndex(src, op.name, 'lpc_acc', true).replace('@compute', `fn lpc_acc(i: u32) -> f32 { return ${read}; }\n@compute`);
  const bindings = k.bindings.filter((_, i) => i !== operand);
  const key = stableHash({ source: src, usesStep: k.usesStep, layout: bindings.map((b) => [b.elem, b.access]) });
  return { ...k, key, bindings, wgsl: () => src };
}
