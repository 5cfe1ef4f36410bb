/**
 * The one random-number generator of lpc: a counter-based hash, so that the CPU interpreter and WGSL kernels produce
 * identical bits for (seed, step, tensorId, index) regardless of how work is split or fused, and a run is
 * reproducible from its seed.
 *
 * Hash: pcg4d (Jarzynski & Olano 2020, "Hash Functions for GPU Rendering") plus one final xorshift so that the low
 * bits, which float/bfp stochastic rounding uses, also depend on the high bits of every input. One hash yields four
 * u32 words; element `index` takes word `index & 3` of the hash of counter `index >>> 2`, so a vec4 kernel needs one
 * hash per four elements (research/webgpu-on-cpu.md §4: pcg4d costs 2–11%). Only 32-bit wrapping integer ops are
 * used (Math.imul, +, ^, >>>), each of which WGSL's u32 arithmetic reproduces exactly (codegen/quant/wgsl.ts).
 */

const M = 1664525;
const C = 1013904223;

/** pcg4d with a final xorshift; inputs and outputs are u32. `out` receives the four words. */
export function pcg4d(a: number, b: number, c: number, d: number, out: Uint32Array): void {
  let x = (Math.imul(a, M) + C) | 0;
  let y = (Math.imul(b, M) + C) | 0;
  let z = (Math.imul(c, M) + C) | 0;
  let w = (Math.imul(d, M) + C) | 0;
  x = (x + Math.imul(y, w)) | 0;
  y = (y + Math.imul(z, x)) | 0;
  z = (z + Math.imul(x, y)) | 0;
  w = (w + Math.imul(y, z)) | 0;
  x ^= x >>> 16; y ^= y >>> 16; z ^= z >>> 16; w ^= w >>> 16;
  x = (x + Math.imul(y, w)) | 0;
  y = (y + Math.imul(z, x)) | 0;
  z = (z + Math.imul(x, y)) | 0;
  w = (w + Math.imul(y, z)) | 0;
  x ^= x >>> 16; y ^= y >>> 16; z ^= z >>> 16; w ^= w >>> 16;
  out[0] = x; out[1] = y; out[2] = z; out[3] = w;
}

const scratch = new Uint32Array(4);

/** 32 random bits (u32) for element `index` of tensor `tensorId` at training step `step` under `seed`. */
export function randomBits(seed: number, step: number, tensorId: number, index: number): number {
  pcg4d(seed, step, tensorId, index >>> 2, scratch);
  return scratch[index & 3];
}

/** Random bits for elements [0, n) in one pass (four elements per hash). */
export function randomBitsArray(seed: number, step: number, tensorId: number, n: number): Uint32Array {
  const out = new Uint32Array((n + 3) & ~3);
  const w = new Uint32Array(4);
  for (let i = 0; i < out.length; i += 4) {
    pcg4d(seed, step, tensorId, i >>> 2, w);
    out.set(w, i);
  }
  return n === out.length ? out : out.subarray(0, n);
}

/**
 * The rng key of one quantization site; all fields are u32. `bits` carries the step's scheduled widths (CPT:
 * minmax formats marked fwd/bwd take theirs from here), absent outside a schedule.
 */
export interface RngKey { seed: number; step: number; tensorId: number; bits?: StepBits }
/** Bit widths of a precision schedule at one training step. */
export interface StepBits { fwd: number; bwd: number }
