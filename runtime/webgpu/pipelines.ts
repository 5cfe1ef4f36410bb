/**
 * Compute pipelines per device, cached by kernel key + bind group layout (Dawn does not deduplicate identical
 * shaders, and lavapipe JITs each new pipeline: research/webgpu-on-cpu.md §2). Layouts are explicit, never
 * 'auto' (which drops bindings the shader does not use, §0): binding 0 params uniform, binding 1 step uniform when
 * the kernel uses it, storage bindings from 2 on (read-only-storage or storage).
 *
 * `get` is synchronous (executors build bind groups right away); compile and validation errors arrive
 * asynchronously, so each creation runs in an error scope and `check()` awaits them and throws one error naming
 * the kernel, its key, and Tint's messages with the offending source lines.
 */
import { Kernel } from '../../codegen/kernel.js';
import { KernelLimits, limitViolations } from '../../codegen/limits.js';

export interface CachedPipeline { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }

export class PipelineCache {
  private readonly cache = new Map<string, CachedPipeline>();
  /** Scope results of pipelines created since the last check(): a message per failed kernel, or null. */
  private pending: Promise<string | null>[] = [];
  /** Pipelines created so far (cache misses). */
  created = 0;

  constructor(readonly device: GPUDevice) {}

  /** The layout part of the cache key: which optional uniform is bound and each storage binding's access. */
  static layoutKey(k: Kernel): string {
    return `${k.usesStep ? 's' : '-'}${k.bindings.map((b) => (b.access === 'read' ? 'r' : 'w')).join('')}`;
  }

  get size(): number { return this.cache.size; }

  get(kernel: Kernel): CachedPipeline {
    const key = `${kernel.key}|${PipelineCache.layoutKey(kernel)}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const d = this.device;
    const over = limitViolations(kernel, d.limits as unknown as KernelLimits);
    if (over.length) throw new Error(`kernel '${kernel.name}' (key ${kernel.key}) exceeds this device's limits: ${over.join('; ')}`);
    d.pushErrorScope('validation');
    d.pushErrorScope('internal');
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
    ];
    if (kernel.usesStep) entries.push({ binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    kernel.bindings.forEach((b, i) => entries.push({
      binding: 2 + i, visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    const label = `${kernel.name} ${kernel.key}`;
    const layout = d.createBindGroupLayout({ entries, label });
    const source = kernel.wgsl();
    const module = d.createShaderModule({ code: source, label });
    const pipeline = d.createComputePipeline({
      label, layout: d.createPipelineLayout({ bindGroupLayouts: [layout], label }), compute: { module, entryPoint: 'main' },
    });
    this.created++;
    const scopes = [d.popErrorScope(), d.popErrorScope()];
    this.pending.push(Promise.all(scopes).then(async (errs) => {
      const e = errs.find((x) => x);
      if (!e) return null;
      return `kernel '${kernel.name}' (key ${kernel.key}): ${await describeCompile(module, source) ?? e.message}`;
    }));
    const entry = { pipeline, layout };
    this.cache.set(key, entry);
    return entry;
  }

  /** Throws if any pipeline created since the last check failed to compile or validate. */
  async check(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    const msgs = (await Promise.all(pending)).filter((m): m is string => m !== null);
    if (msgs.length) throw new Error(`WGSL pipeline creation failed:\n${msgs.join('\n')}`);
  }
}

/** Tint's errors and warnings as `line:col: message` plus the source line, or null if it reported none. */
async function describeCompile(module: GPUShaderModule, source: string): Promise<string | null> {
  const info = await module.getCompilationInfo();
  const msgs = info.messages.filter((m) => m.type === 'error');
  if (!msgs.length) return null;
  const lines = source.split('\n');
  return msgs.map((m) => `${m.lineNum}:${m.linePos}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ''}`).join('\n');
}
