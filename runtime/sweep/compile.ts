/** Compiling one sweep artifact: the same for a local sweep (into DIR/artifacts) and for `lpc worker` (into its own cache). */
import { compileArtifact } from '../cli/compile.js';
import { pepppMemoryOf } from '../peppp/memory.js';
import { parsePolicy } from '../../ir/precision/index.js';
import type { parseOptimizer } from '../../passes/optimizer.js';
import type { TaskInfo } from './queue.js';

/** Compiles `model` with `precision` for a task's shape and classes into `dir`: seconds taken and PEPPP's memory in MB. */
export function compileSweepArtifact(model: string, precision: string, info: TaskInfo, batch: number,
  optimizer: ReturnType<typeof parseOptimizer>, dir: string): { seconds: number; memory_mb: number } {
  const policy = precision.trim() ? parsePolicy(precision) : undefined, modelOptions = { input: info.shape, classes: info.classes };
  const { seconds } = compileArtifact(model, dir, { batch, optimizer, precision: policy, modelOptions });
  return { seconds, memory_mb: pepppMemoryOf(model, batch, modelOptions, policy) };
}
