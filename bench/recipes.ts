/**
 * Precision recipes shared by the benchmark and the accuracy table, so both measure the same configurations.
 * SWALP-style: 8-bit block floating point on every role, stochastic rounding; weights, gradients and momentum with
 * one exponent per output channel/row (axis 0), activations and errors one per tensor (the SWALP repository's
 * BlockQuantizer).
 */
import { parsePolicy, scheduleBits } from '../ir/precision/index.js';
import type { StepBits } from '../ir/quant/rng.js';

/**
 * CPT's quantizers (research/seeds.md §2.2; placed inside each conv by passes/quantize.ts): weights per output
 * channel, conv inputs per tensor (running range for evaluation), the conv's error per tensor, stochastic.
 * Without a schedule this is CPT's static 8-bit baseline; cptSpec adds CPT's cyclic forward width, 3→8 bits
 * in `periods` cosine cycles over the run, backward constant 8.
 */
export const CPT_MINMAX8 = 'W=minmax<8,channel> A=minmax<8,tensor> E=minmax<8,tensor>:stochastic';
/** CPT over MX: MXINT8 in W, A and E (errors stochastic, as CPT's), fp32 master weights; a schedule varies its width. */
export const CPT_MXINT8 = 'W=mx<int8> A=mx<int8> E=mx<int8>:stochastic ACC=f32';

export const RECIPES: Record<string, { label: string; spec?: string }> = {
  fp32: { label: 'fp32' },
  swalp_bfp8: {
    label: 'SWALP-style bfp<8> stochastic, all roles',
    spec: 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic',
  },
  e5m2_ae: { label: 'e5m2 activations and errors', spec: 'A=e5m2 E=e5m2' },
  // 5 epochs of 125 steps (npm run accuracy): one cosine cycle per epoch, each evaluation at the cycle's top (8 bits)
  cpt: { label: 'CPT: minmax, forward 3→8 bits cyclic, backward 8', spec: cptSpec(5) },
  // OCP MX (issue 30), the MX paper's training recipe: MX operands for every GEMM (W, A forward; E, G backward),
  // fp32 master weights (ACC=f32: W is a quantized copy), activations saved for the backward packed in A's format
  mxfp8: {
    label: 'MXFP8: E4M3 forward, E5M2 backward, fp32 master weights',
    spec: 'W=mx<e4m3> A=mx<e4m3> E=mx<e5m2> G=mx<e5m2> ACC=f32 ; save=mx<e4m3>',
  },
  mxfp6: { label: 'MXFP6 (E3M2), fp32 master weights', spec: 'W=mx<e3m2> A=mx<e3m2> E=mx<e3m2> G=mx<e3m2> ACC=f32 ; save=mx<e3m2>' },
  mxfp4: { label: 'MXFP4 (E2M1), fp32 master weights', spec: 'W=mx<e2m1> A=mx<e2m1> E=mx<e2m1> G=mx<e2m1> ACC=f32 ; save=mx<e2m1>' },
  fixed4: {
    label: '4-bit fixed point everywhere (stochastic)',
    spec: 'W=fixed<4,3>:stochastic A=fixed<4,2>:stochastic E=fixed<4,3>:stochastic G=fixed<4,3>:stochastic M=fixed<4,3>:stochastic',
  },
};

/** CPT_MINMAX8 with CPT's cyclic schedule. */
export function cptSpec(periods: number): string {
  return `${CPT_MINMAX8} ; schedule fwd=cyclic(3,8,periods=${periods}) bwd=const(8)`;
}

/** A spec's schedule widths per global step, as `lpc run` gives them (P = floor(total / periods)); undefined
 *  without a schedule. */
export function scheduleFor(spec: string | undefined, total: number): ((t: number) => StepBits) | undefined {
  const s = spec ? parsePolicy(spec).schedule : undefined;
  if (!s) return undefined;
  return (t) => ({ fwd: s.fwd ? scheduleBits(s.fwd, t, total) : 32, bwd: s.bwd ? scheduleBits(s.bwd, t, total) : 32 });
}

/** The default recipe's optimizer (README): SGD lr 0.05, momentum 0.9, weight decay 5e-4. */
export const DEFAULT_SGD = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
