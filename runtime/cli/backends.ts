import { Module } from '../../ir/graph.js';
import { Backend } from '../backend.js';
import { CpuBackend } from '../cpu/backend.js';
import { UsageError } from './args.js';

// Dawn (a 100 MB native module) loads only when a command actually asks for WebGPU.
let device: typeof import('../webgpu/device.js') | undefined;

/** `--backend webgpu|cpu` → a backend for the module (webgpu prints the adapter it uses). */
export async function makeBackend(name: string | undefined, m: Module, quiet = false): Promise<Backend> {
  switch (name ?? 'webgpu') {
    case 'cpu': return new CpuBackend(m);
    case 'webgpu': {
      device = await import('../webgpu/device.js');
      const { WebGpuBackend } = await import('../webgpu/executor.js');
      return new WebGpuBackend(await device.getGpu({ quiet }), m);
    }
    default: throw new UsageError(`--backend must be webgpu or cpu, got '${name}'`);
  }
}

/** Shuts Dawn down cleanly if it was started. */
export async function closeBackends(): Promise<void> {
  if (device) await device.shutdownGpu();
}
