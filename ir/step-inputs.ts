/**
 * Step inputs: scalar `input` nodes whose value the runtime computes from the step (StepInfo.step, the 0-based
 * global optimizer step) instead of taking a feed, so every caller of a graph (training, resume, numerics reruns)
 * gets the same value for the same step. t = step + 1 is PyTorch's 1-based optimizer step. The value is computed
 * in float64 as PyTorch computes its Python-float bias corrections, then rounded to f32:
 *
 *   kind 'bias_correction'       (attr beta)  1 − β^t
 *   kind 'bias_correction_sqrt'  (attr beta)  sqrt(1 − β^t)
 */
import type { OpAttrs } from './op-registry.js';

export const STEP_INPUT_KINDS = ['bias_correction', 'bias_correction_sqrt'] as const;

/** The value of a step input at 0-based `step`, or undefined when the input is fed (not a step input). */
export function stepInputValue(a: OpAttrs['input'], step: number): Float32Array | undefined {
  const t = step + 1, beta = a.beta ?? NaN; // only step inputs have one
  switch (a.kind) {
    case 'bias_correction': return Float32Array.of(1 - beta ** t);
    case 'bias_correction_sqrt': return Float32Array.of(Math.sqrt(1 - beta ** t));
    default: return undefined;
  }
}
