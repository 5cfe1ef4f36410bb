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
      const gpu = await device.getGpu({ quiet });
      // The GEMM tilings this adapter runs fastest: from the tune cache, measured now where it has no entry
      // (LPC_TUNE=off: the defaults, nothing measured).
      if (process.env.LPC_TUNE === 'off') return new WebGpuBackend(gpu, m);
      const { tuneModule } = await import('../webgpu/tune.js');
      const log = quiet ? undefined : (s: string) => process.stderr.write(`lpc: ${s}\n`);
      const { picker } = await tuneModule(gpu, m, { log });
      return new WebGpuBackend(gpu, m, { tiles: picker });
    }
    default: throw new UsageError(`--backend must be webgpu or cpu, got '${name}'`);
  }
}

/** Shuts Dawn down cleanly if it was started. */
export async function closeBackends(): Promise<void> {
  if (device) await device.shutdownGpu();
}
