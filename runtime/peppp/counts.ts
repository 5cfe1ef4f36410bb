/** The element counts of PEPPP's memory formula (memory.ts), from one training-mode trace of a model. */
import type { ModelDef, ModelOptions } from '../../dsl/index.js';
import { withTrace } from '../../dsl/trace.js';
import { checkModelOptions } from '../../dsl/model-run.js';
import { numel } from '../../ir/types.js';
import { attrsOf } from '../../ir/op-registry.js';

/** The element counts of PEPPP's formula for one model, batch and input. */
export interface PepppCounts { batch: number; params: number; activations: number; output: number; input: number }

export function pepppCounts(def: ModelDef, batch: number, options: ModelOptions = {}): PepppCounts {
  checkModelOptions(options);
  const { ctx, graph, result } = withTrace({ batch, training: true, name: 'train' }, () => def.build({ ...options }));
  const size = (id: number) => numel(graph.nodes[id].type.shape);
  if (ctx.inputId === undefined) throw new Error(`model '${def.name}' never calls input()`);
  return {
    batch,
    params: graph.nodes.filter((n) => n.op === 'state' && n.attrs.kind === 'param').reduce((s, n) => s + numel(attrsOf(n, 'state').shape), 0),
    activations: ctx.records.reduce((s, id) => s + size(id), 0),
    output: size(result.id),
    input: size(ctx.inputId),
  };
}

