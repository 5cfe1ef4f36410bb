import { Module, getGraph } from '../../ir/graph.js';
import { Backend, Feed, StepInfo } from '../backend.js';
import { runGraph } from './interpreter.js';

/** `--backend cpu`: the reference interpreter in float32 storage (float64 accumulation inside ops). */
export class CpuBackend implements Backend {
  readonly description = 'cpu (reference interpreter)';
  private state = new Map<string, Float32Array>();
  constructor(private readonly m: Module) {}

  async setState(state: Map<string, Float32Array>): Promise<void> {
    this.state = new Map([...state].map(([k, v]) => [k, Float32Array.from(v)]));
  }
  async getState(): Promise<Map<string, Float32Array>> {
    return new Map([...this.state].map(([k, v]) => [k, Float32Array.from(v)]));
  }
  async run(graph: string, feeds: Record<string, Feed>, step: StepInfo, read: string[]): Promise<Record<string, Float32Array>> {
    const r = runGraph(getGraph(this.m, graph), feeds, this.state, { precision: 'f32', seed: step.seed, step: step.step, bits: step.bits });
    for (const [k, v] of r.updates) this.state.set(k, Float32Array.from(v));
    const out: Record<string, Float32Array> = {};
    for (const name of read) out[name] = Float32Array.from(r.outputs[name]);
    return out;
  }
  async dispose(): Promise<void> {}
}
