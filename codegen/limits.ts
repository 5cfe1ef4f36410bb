/**
 * What a kernel needs from the device, read from the kernel itself, and the WebGPU baseline every adapter offers.
 * Codegen keeps every kernel within the baseline (a unit test checks the whole model zoo in every variant), so a
 * kernel never fails to compile on a smaller GPU; the pipeline cache also checks the actual device's limits before
 * creating a pipeline and names the kernel and the limit if one is exceeded.
 */
import { Kernel } from './kernel.js';

/** The limits that codegen's choices touch. */
export interface KernelLimits {
  maxStorageBuffersPerShaderStage: number;
  maxUniformBuffersPerShaderStage: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
}

/** The WebGPU specification's defaults: what any conforming adapter supports. */
export const WEBGPU_BASELINE: KernelLimits = {
  maxStorageBuffersPerShaderStage: 8,
  maxUniformBuffersPerShaderStage: 12,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupsPerDimension: 65535,
};

const ELEM_BYTES: Record<string, number> = { f32: 4, u32: 4, i32: 4, 'atomic<u32>': 4, 'atomic<i32>': 4, 'vec2<f32>': 8, 'vec4<f32>': 16, 'vec4<u32>': 16 };

export interface KernelUse {
  storageBuffers: number;
  uniformBuffers: number;
  workgroupStorageBytes: number;
  workgroupSize: number;
  maxWorkgroupsPerDimension: number;
}

/** The resources a kernel uses, from its bindings, dispatch and WGSL source. */
export function kernelUse(k: Kernel): KernelUse {
  const src = k.wgsl();
  const wg = /@workgroup_size\((\d+)(?:\s*,\s*(\d+))?(?:\s*,\s*(\d+))?\)/.exec(src);
  const workgroupSize = wg ? wg.slice(1).reduce((p, d) => p * (d ? Number(d) : 1), 1) : 1;
  let workgroupStorageBytes = 0;
  for (const m of src.matchAll(/var<workgroup>\s+\w+\s*:\s*array<\s*([\w<>]+)\s*,\s*(\d+)\s*>/g)) {
    const size = ELEM_BYTES[m[1]];
    if (size === undefined) throw new Error(`kernel '${k.name}': unknown workgroup array element type '${m[1]}'`);
    workgroupStorageBytes += size * Number(m[2]);
  }
  return {
    storageBuffers: k.bindings.length, uniformBuffers: k.usesStep ? 2 : 1, workgroupStorageBytes, workgroupSize,
    maxWorkgroupsPerDimension: Math.max(...k.dispatch),
  };
}

/** The limits `k` exceeds on a device with `limits`, as readable lines (empty when it fits). */
export function limitViolations(k: Kernel, limits: KernelLimits): string[] {
  const u = kernelUse(k);
  const out: string[] = [];
  const over = (what: string, used: number, limit: number) => { if (used > limit) out.push(`${what}: uses ${used}, the device allows ${limit}`); };
  over('maxStorageBuffersPerShaderStage', u.storageBuffers, limits.maxStorageBuffersPerShaderStage);
  over('maxUniformBuffersPerShaderStage', u.uniformBuffers, limits.maxUniformBuffersPerShaderStage);
  over('maxComputeWorkgroupStorageSize', u.workgroupStorageBytes, limits.maxComputeWorkgroupStorageSize);
  over('maxComputeInvocationsPerWorkgroup', u.workgroupSize, limits.maxComputeInvocationsPerWorkgroup);
  over('maxComputeWorkgroupSizeX', u.workgroupSize, limits.maxComputeWorkgroupSizeX);
  over('maxComputeWorkgroupsPerDimension', u.maxWorkgroupsPerDimension, limits.maxComputeWorkgroupsPerDimension);
  return out;
}
