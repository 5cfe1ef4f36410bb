import type { StepBits } from '../ir/quant/rng.js';

/** What the training loop needs from a backend: state in, graphs run, state out. */
export type Feed = Float32Array | Int32Array;

/** Per-step values: the rng key words and, under a precision schedule, the step's bit widths. */
export interface StepInfo { seed: number; step: number; bits?: StepBits }

export interface Backend {
  /** e.g. `webgpu (mesa | llvmpipe …)` or `cpu`. */
  readonly description: string;
  setState(state: Map<string, Float32Array>): Promise<void>;
  getState(): Promise<Map<string, Float32Array>>;
  /** Runs graph `graph`, applies its state updates, and returns the outputs named in `read`. */
  run(graph: string, feeds: Record<string, Feed>, step: StepInfo, read: string[]): Promise<Record<string, Float32Array>>;
  dispose(): Promise<void>;
}
