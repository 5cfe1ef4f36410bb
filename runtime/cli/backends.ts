import { Module } from '../../ir/graph.js';
import { Backend } from '../backend.js';
import { CpuBackend } from '../cpu/backend.js';
import { getGpu } from '../webgpu/device.js';
import { WebGpuBackend } from '../webgpu/executor.js';
import { UsageError } from './args.js';

/** `--backend webgpu|cpu` → a backend for the module (webgpu prints the adapter it uses). */
export async function makeBackend(name: string | undefined, m: Module, quiet = false): Promise<Backend> {
  switch (name ?? 'webgpu') {
    case 'cpu': return new CpuBackend(m);
    case 'webgpu': return new WebGpuBackend(await getGpu({ quiet }), m);
    default: throw new UsageError(`--backend must be webgpu or cpu, got '${name}'`);
  }
}
