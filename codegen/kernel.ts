/**
 * A kernel is a small object: a structural cache key, a WGSL source generator and its run data.
 * Shapes live in the params uniform, so one pipeline (one key) serves every shape of the same structure.
 */
import { createHash } from 'node:crypto';

/** Where a binding's buffer comes from: an IR value, or per-node scratch (e.g. a bfp block-max). */
export type BufferRef =
  | { kind: 'node'; id: number }
  | { kind: 'scratch'; index: number; bytes: number };

export interface Binding {
  ref: BufferRef;
  /** WGSL element type of the storage array. */
  elem: 'f32' | 'i32' | 'u32' | 'atomic<u32>';
  access: 'read' | 'read_write';
}

export interface Kernel {
  /** Hash of the kernel's structure (stableHash of what the source depends on). Pipelines are cached by it. */
  key: string;
  /** Short human name, used for kernels/*.wgsl file names and `lpc inspect`. */
  name: string;
  wgsl(): string;
  /**
   * WGSL binding layout (group 0): binding 0 = `params` (uniform, this kernel's run data), binding 1 = `step`
   * (uniform, per-step values: seed, step, lr… shared by all kernels) when `usesStep`, then `bindings` in order.
   */
  bindings: Binding[];
  usesStep: boolean;
  /** Params uniform contents (u32 words; floats are stored with their bit patterns). */
  params: Uint32Array;
  dispatch: [number, number, number];
  /** The quantize epilogue fused into this kernel's stores (`fixed`, `float_sr`, …), if any. */
  epilogue?: string;
  /** Scratch buffers to zero before this kernel runs. */
  clears?: number[];
  /** Arithmetic work, for `lpc inspect` and benchmarks. */
  flops?: number;
}

/** Canonical JSON (sorted keys) so equal structures hash equally no matter how they were built. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v as object).sort().map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

export function stableHash(v: unknown): string {
  return createHash('sha256').update(stableStringify(v)).digest('hex').slice(0, 16);
}

/**
 * Per-step uniform shared by all kernels: its WGSL declaration and word layout (kept in one place). bits_fwd and
 * bits_bwd are the precision schedule's widths at this step (scheduled minmax formats read them).
 */
export const STEP_UNIFORM_WGSL = `struct Step { seed: u32, step: u32, lr: f32, bits_fwd: u32, bits_bwd: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(1) var<uniform> stepu: Step;`;
export const STEP_WORDS = 8;

/** The step uniform's words. Without a schedule the widths are 32: a scheduled format never sees them then. */
export function stepWords(s: { seed?: number; step?: number; lr?: number; bits?: { fwd: number; bwd: number } }, out = new Uint32Array(STEP_WORDS)): Uint32Array {
  out[0] = (s.seed ?? 0) >>> 0;
  out[1] = (s.step ?? 0) >>> 0;
  new Float32Array(out.buffer, out.byteOffset, STEP_WORDS)[2] = s.lr ?? 0;
  out[3] = s.bits?.fwd ?? 32;
  out[4] = s.bits?.bwd ?? 32;
  return out;
}
