import { Module, getGraph } from '../../ir/graph.js';
import { Backend, Feed, StepInfo } from '../backend.js';
import { runGraph } from './interpreter.js';
import { PackedState, fromStorage, packedStates, toStorage } from '../packed-state.js';

/**
 * `--backend cpu`: the reference interpreter in float32 storage (float64 accumulation inside ops). Packed states
 * (passes/pack-state.ts) are held as their words, as the WebGPU buffers hold them.
 */
export class CpuBackend implements Backend {
  readonly description = 'cpu (reference interpreter)';
  private state = new Map<string, Float32Array>();
  private readonly packed: Map<string, PackedState>;
  constructor(private readonly m: Module) { this.packed = packedStates(m); }

  async setState(state: Map<string, Float32Array>): Promise<void> {
    this.state = new Map([...toStorage(this.packed, state)].map(([k, v]) => [k, v.slice()]));
  }
  async getState(): Promise<Map<string, Float32Array>> {
    return new Map([...fromStorage(this.packed, this.state)].map(([k, v]) => [k, v.slice()]));
  }
  async run(graph: string, feeds: Record<string, Feed>, step: StepInfo, read: string[]): Promise<Record<string, Float32Array>> {
    const r = runGraph(getGraph(this.m, graph), feeds, this.state, { precision: 'f32', seed: step.seed, step: step.step, bits: step.bits, storedState: true });
    // (.slice keeps bit patterns; Float32Array.from would read packed words as numbers)
    for (const [k, v] of r.updates) this.state.set(k, v instanceof Float32Array ? v.slice() : Float32Array.from(v));
    const out: Record<string, Float32Array> = {};
    for (const name of read) out[name] = Float32Array.from(r.outputs[name]);
    return out;
  }
  async dispose(): Promise<void> {}
}
