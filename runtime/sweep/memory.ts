/**
 * The memory figure of a sweep cell whose configuration has no low and high format (PEPPP's accounting,
 * runtime/peppp/memory.ts, covers the others), in bytes: lpc's planned peak of the compiled training step (the
 * memory planner's allocated peak of the `train` graph, state included, as `lpc mem` reports it).
 */
import type { Artifact } from '../artifact.js';

export function memoryBytes(art: Artifact): number {
  const graphs = art.plan.memory?.graphs ?? [];
  const train = graphs.find((g) => g.name === 'train') ?? graphs[0];
  if (!train) throw new Error(`${art.dir}: plan.json has no memory plan`);
  return train.peak_bytes;
}
