/**
 * The one launch layer: how a kernel (codegen/kernel.ts) is bound and dispatched. Binding 0 is its params uniform,
 * binding 1 the step uniform when it reads one, then its storage buffers in order (an IR value's buffer, or one of
 * its node's scratch buffers, shared by that node's kernels); scratch buffers a kernel asks to have zeroed are cleared
 * before the pass. The training executor, runKernels (tests, lpc quant, profiling) and the tuner all launch here.
 */
import { Kernel, STEP_WORDS } from '../../codegen/kernel.js';
import type { PipelineCache } from './pipelines.js';

/** A bound kernel, ready to dispatch. */
export interface Launch { kernel: Kernel; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; clears: GPUBuffer[] }

/** Bytes of the step uniform every launcher allocates once. */
export const STEP_BYTES = STEP_WORDS * 4;

export interface BindContext {
  device: GPUDevice;
  pipelines: PipelineCache;
  /** The step uniform (STEP_BYTES). */
  step: GPUBuffer;
  /** A new uniform buffer of `bytes` for a kernel's params (the caller owns and frees it). */
  uniform(bytes: number, label: string): GPUBuffer;
  /** The buffer holding IR value `id`. */
  node(id: number): GPUBuffer;
  /** The buffer for scratch `index` of this node, made on first use (the caller keeps one map per node). */
  scratch(index: number, bytes: number, label: string): GPUBuffer;
}

/** Binds kernel `k`: its pipeline (cached), params uploaded, bind group made, and the scratch it clears. */
export function bindKernel(c: BindContext, k: Kernel): Launch {
  const { pipeline, layout } = c.pipelines.get(k);
  const params = c.uniform(k.params.byteLength, `${k.name} params`);
  c.device.queue.writeBuffer(params, 0, k.params);
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params } }];
  if (k.usesStep) entries.push({ binding: 1, resource: { buffer: c.step } });
  const scratch = new Map<number, GPUBuffer>();
  k.bindings.forEach((b, i) => {
    let buf: GPUBuffer;
    if (b.ref.kind === 'node') buf = c.node(b.ref.id);
    else {
      buf = c.scratch(b.ref.index, b.ref.bytes, `${k.name} scratch${b.ref.index}`);
      scratch.set(b.ref.index, buf);
    }
    entries.push({ binding: 2 + i, resource: { buffer: buf } });
  });
  const clears = (k.clears ?? []).map((i) => {
    const buf = scratch.get(i);
    if (!buf) throw new Error(`kernel ${k.name} clears scratch ${i}, which none of its bindings uses`);
    return buf;
  });
  return { kernel: k, pipeline, bindGroup: c.device.createBindGroup({ layout, entries, label: k.name }), clears };
}

/**
 * Records `launches` into `enc`: the scratch clears first (a scratch buffer belongs to one node's kernels, so zeroing
 * all of them up front is enough), then one compute pass with every dispatch, `reps` times over (the tuner's timing).
 */
export function encodeLaunches(enc: GPUCommandEncoder, launches: Launch[], reps = 1): void {
  for (const l of launches) for (const b of l.clears) enc.clearBuffer(b);
  const pass = enc.beginComputePass();
  for (let r = 0; r < reps; r++)
    for (const l of launches) {
      pass.setPipeline(l.pipeline);
      pass.setBindGroup(0, l.bindGroup);
      pass.dispatchWorkgroups(...l.kernel.dispatch);
    }
  pass.end();
}
