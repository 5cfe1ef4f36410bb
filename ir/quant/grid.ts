/**
 * Which ops keep a quantized value on its format's grid, so that quantizing their result again to that format is
 * the identity (bit for bit, except that a quantizer writes +0 for the −0 a backward passes through: relu_bwd(−0, y)) (passes/fuse.ts: drop-identity-quantizer removes such quantizers; fold-qpost-relu may apply such ops after a
 * quantizer without a second one). Each claim holds for nearest and stochastic rounding alike (stochastic rounding
 * never moves a representable value) and is checked over formats, roundings and values in
 * test/unit/relu6-grid.test.ts, which also finds a counterexample for every format a claim leaves out.
 */
import type { Format } from '../format.js';
import type { Attrs } from '../graph.js';

/**
 * relu6 = min(max(x, 0), 6) of a value on `f`'s grid stays on it: values are kept, zeroed or clamped to 6, so no
 * block's max |x| grows (a bfp block's exponent can only fall, its grid only get finer) and the one new value is 6.
 *   fixed<wl,fl>   6 is a multiple of 2^−fl (fl ≥ 0); where 6 exceeds the range no value clamps.
 *   float<e,m>     6 = 1.1b·2^2 needs one mantissa bit (m ≥ 1 always); where 6 exceeds the range no value clamps.
 *   bfp<wl>        a block that clamps has max 6, exponent 2, and 6 on its grid from wl = 3 (wl ≤ 2: 6 → 4).
 *   mx<elem>       as relu (below), and 6 = 1.5·2^2 is an element value at the clamped block's scale; not E4M3
 *                  (but with scale=ceil|rceil: the clamped max 6 scales to 192 / 384, every other value below it), not
 *                  int2 (6 → 4: one level per sign), not int3 with scale=ceil (6 → 0.75·2^3 at a 2^−1 step: 8), not a
 *                  scheduled width (it reaches int2).
 *   minmax         never: zeroing and clamping move the block's min and max, and with them every level.
 */
export function relu6KeepsGrid(f: Format): boolean {
  switch (f.kind) {
    case 'fixed': case 'float': return true;
    case 'bfp': return f.wl >= 3;
    case 'mx': return !f.sched && f.elem !== 'int2' && !(f.elem === 'int3' && f.scale === 'ceil') && (f.elem !== 'e4m3' || f.scale === 'ceil' || f.scale === 'rceil');
    default: return false;
  }
}

/**
 * The format whose grid the result of `op` lies on, when its value input (input 0) lies on `f`'s and the op keeps
 * values on it: relu, relu6 and their backwards (the error kept or zeroed), max-pooling forward and, with
 * non-overlapping windows, backward (values selected or routed, never combined), and views. Pooling keeps bfp blocks
 * only along the batch or channel axis; a view keeps them only for one block per tensor. minmax (CPT) has levels
 * spanning its block's min and max: any op that zeroes, clamps or selects moves them, so only a view keeps them.
 * `relu6` false leaves relu6 and relu6_bwd out (bench/relu6-fusion.ts: the graphs as before they were claimed).
 */
export function gridAfter(op: string, attrs: Attrs, f: Format, relu6 = true): Format | undefined {
  if (!relu6 && (op === 'relu6' || op === 'relu6_bwd')) return undefined;
  if (f.kind === 'minmax') return op === 'reshape' ? f : undefined;
  // bfp<1> is not idempotent (a value at the block max requantizes to 0): nothing keeps its grid
  if (f.kind === 'bfp' && f.wl < 2) return undefined;
  // mx: a ReLU zeroes elements of a block in place (+0, which MX keeps), so the block max can only fall: the scale
  // stays or gets finer, and every kept value is on the finer grid below the new max_norm (the new max's mantissa
  // has the format's f bits) — except for E4M3, whose max_norm 448 < 480 can then saturate a value that was on the
  // coarser grid (240·2^s → 448·2^(s−1)); with scale=ceil (the max scales to ≤ 256) or rceil (to ≤ 448) it cannot.
  // Not the backwards: they pass −0 (a negative rounded to zero), which MX rounds to +0. Pooling mixes blocks (other
  // positions, other scales): never claimed.
  if (f.kind === 'mx') {
    const relu = f.elem !== 'e4m3' || f.scale === 'ceil' || f.scale === 'rceil';
    return (op === 'relu' && relu) || (op === 'relu6' && relu6KeepsGrid(f)) ? f : undefined;
  }
  const blocksAlongNC = f.kind !== 'bfp' || f.axis === 'tensor' || f.axis === 0 || f.axis === 1;
  switch (op) {
    case 'relu': case 'relu_bwd': case 'relu6_bwd': return f;
    case 'relu6': return relu6KeepsGrid(f) ? f : undefined;
    case 'maxpool': return blocksAlongNC ? f : undefined;
    case 'maxpool_bwd': return blocksAlongNC && attrs.k === attrs.stride ? f : undefined;
    case 'reshape': return f.kind !== 'bfp' || f.axis === 'tensor' ? f : undefined;
    default: return undefined;
  }
}
