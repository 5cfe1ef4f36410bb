import { Module } from '../../ir/graph.js';
import { Backend } from '../backend.js';
import { CpuBackend } from '../cpu/backend.js';
import { UsageError } from './args.js';
import { checkFits, cpuCapacity, gpuCapacity } from '../fit.js';
import type { Gpu } from '../webgpu/device.js';
import type { WebGpuBackend } from '../webgpu/executor.js';

const warn = (line: string) => process.stderr.write(`lpc: warning: ${line}\n`);

// Dawn (a 100 MB native module) loads only when a command actually asks for WebGPU.
let device: typeof import('../webgpu/device.js') | undefined;

/** `--backend webgpu|cpu` → a backend for the module (webgpu prints the adapter it uses). */
export async function makeBackend(name: string | undefined, m: Module, quiet = false, hint = 'lower the batch size'): Promise<Backend> {
  switch (name ?? 'webgpu') {
    case 'cpu': checkFits(m, cpuCapacity(), 'cpu-driver', hint, quiet ? undefined : warn); return new CpuBackend(m);
    case 'webgpu': {
      device = await import('../webgpu/device.js');
      const gpu = await device.getGpu({ quiet });
      // before tuning, which would allocate the step's largest buffers to time its tilings
      checkFits(m, gpuCapacity(gpu.limits, gpu.adapterDescription, gpu.isCpuDriver), gpu.isCpuDriver ? 'cpu-driver' : 'gpu', hint, quiet ? undefined : warn);
      return tunedWebGpuBackend(gpu, m, quiet ? undefined : (s: string) => process.stderr.write(`lpc: ${s}\n`));
    }
    default: throw new UsageError(`--backend must be webgpu or cpu, got '${name}'`);
  }
}

/**
 * A WebGPU backend with the GEMM tilings this adapter runs fastest: from the tune cache, measured now where it has
 * no entry (LPC_TUNE=off: the defaults, nothing measured). What `lpc run` uses, so benchmarks use it too.
 */
export async function tunedWebGpuBackend(gpu: Gpu, m: Module, log?: (s: string) => void): Promise<WebGpuBackend> {
  const { WebGpuBackend: Make } = await import('../webgpu/executor.js');
  if (process.env.LPC_TUNE === 'off') return new Make(gpu, m);
  const { tuneModule } = await import('../webgpu/tune.js');
  const { picker } = await tuneModule(gpu, m, { log });
  return new Make(gpu, m, { tiles: picker });
}

/** Shuts Dawn down cleanly if it was started. */
export async function closeBackends(): Promise<void> {
  if (device) await device.shutdownGpu();
}
