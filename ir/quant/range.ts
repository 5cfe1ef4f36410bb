/**
 * The range of each format family, as the quantizers in ./bits.ts, ./quantize.ts and ./minmax.ts clip to it: which
 * inputs a quantizer saturates. An input x is saturated when it is finite and lies beyond the largest value of its
 * sign that the format (for block formats: its block) represents, so the quantizer clips it to that value:
 *
 * - `fixed<wl,fl>`: above (2^(wl−1) − 1)·2^−fl or below −2^(wl−1)·2^−fl (`sym`: −(2^(wl−1) − 1)·2^−fl); `noclamp`
 *   never clips.
 * - `float<exp,man>`, exp ≤ 7: |x| above 2^emax·(2 − 2^−man), emax = 2^(exp−1) (QPyTorch saturates, no Inf codes);
 *   exp = 8 has f32's range (a finite f32 never exceeds it; a rounding overflow gives Inf, not a clip).
 * - `bfp<wl,…>`: |x| above 2^E·(2 − 2^(2−wl)) with E the exponent of its block's max|x| (what qBfpBits clips to).
 * - `mx<elem,…>`: |x| above max_norm·2^s with s its block's scale (a NaN block: never); a scheduled MXINT's max_norm
 *   at the step's width (`bits`).
 * - `minmax<bits,…>` (a quantize node): never — its levels span each block's own [min, max]; with given qparams
 *   [zero point, range] (minmax_quantize, CPT's evaluation): x below zp or above f32(zp + range).
 */
import { Format } from '../format.js';
import { mxBlockOf, mxLayoutOf, mxScaleBytesOf, mxWordAt } from './mx.js';
import type { StepBits } from './rng.js';
import { bfpMaxMan } from './bits.js';
import { blockMaxAbsBits } from './quantize.js';
import { blockLayout } from './layout.js';

const f32 = Math.fround;
const fromBits = (u: number) => new Float32Array(new Uint32Array([u >>> 0]).buffer)[0];

/** For each element of `x` (row-major, `shape`): whether quantizing it to `fmt` saturates it (see above). */
export function saturation(x: Float32Array, shape: readonly number[], fmt: Format, qparams?: ArrayLike<number>, bits?: StepBits): (i: number) => boolean {
  const beyond = (lo: number, hi: number) => (i: number) => Number.isFinite(x[i]) && (x[i] > hi || x[i] < lo);
  switch (fmt.kind) {
    case 'f32': return () => false;
    case 'fixed': {
      if (fmt.noclamp) return () => false;
      const kmax = 2 ** (fmt.wl - 1) - 1, step = 2 ** -fmt.fl;
      return beyond(-(fmt.sym ? kmax : kmax + 1) * step, kmax * step);
    }
    case 'float': {
      if (fmt.exp >= 8) return () => false;
      const max = 2 ** (2 ** (fmt.exp - 1)) * (2 - 2 ** -fmt.man);
      return beyond(-max, max);
    }
    case 'bfp': {
      const maxBits = blockMaxAbsBits(Float32Array.from(x), shape, fmt.axis);
      const { axisLen, inner } = blockLayout(shape, fmt.axis);
      const clip = Array.from(maxBits, (m) => {
        const ef = (m >>> 23) & 0xff;
        return ef === 255 ? Infinity : fromBits((ef << 23) | bfpMaxMan(fmt.wl)); // Inf/NaN in the block: all NaN
      });
      return (i) => {
        const c = clip[axisLen === 1 ? 0 : Math.floor(i / inner) % axisLen];
        return Number.isFinite(x[i]) && Math.abs(x[i]) > c;
      };
    }
    case 'mx': {
      const L = mxLayoutOf(fmt, shape), word = mxWordAt(fmt, bits);
      const f = (word >>> 4) & 15, emax = (word >>> 8) & 255, maxK = word >>> 16;
      const sb = mxScaleBytesOf(new Uint32Array(Float32Array.from(x).buffer), L, fmt, bits);
      return (i) => {
        const b = sb[mxBlockOf(i, L)];
        return b !== 255 && Number.isFinite(x[i]) && Math.abs(x[i]) > maxK * 2 ** (emax - f + b - 127);
      };
    }
    case 'minmax': {
      if (!qparams) return () => false;
      const zp = f32(qparams[0]);
      return beyond(zp, f32(zp + f32(qparams[1])));
    }
  }
}
