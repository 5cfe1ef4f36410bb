import { Module } from '../../ir/graph.js';
import { Backend } from '../backend.js';
import { CpuBackend } from '../cpu/backend.js';
import { UsageError } from './args.js';
import { Progress } from '../train/progress.js';
import { checkFits, cpuCapacity, gpuCapacity } from '../fit.js';
import type { Gpu } from '../webgpu/device.js';
import type { WebGpuBackend } from '../webgpu/executor.js';

const warn = (line: string) => process.stderr.write(`lpc: warning: ${line}\n`);

// Dawn (a 100 MB native module) loads only when a command actually asks for WebGPU.
let device: typeof import('../webgpu/device.js') | undefined;

/** How much tuning `lpc run` may do before its first step: seconds, 'off' (the cache and defaults only) or 'full'. */
export type TuneBudget = number | 'off' | 'full';

/** The default budget: a minute on a CPU Vulkan driver (where one shape class takes seconds to measure), 20 s on a GPU. */
export const defaultTuneBudget = (cpuDriver: boolean): number => (cpuDriver ? 60 : 20);

/** A budget in milliseconds for tuneModule: undefined measures every class, 0 none. */
export const budgetMillis = (b: TuneBudget): number | undefined => (b === 'full' ? undefined : b === 'off' ? 0 : b * 1000);

/** `--tune-budget S|off|full`. */
export function parseTuneBudget(text: string): TuneBudget {
  if (text === 'off' || text === 'full') return text;
  const s = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(s)) throw new UsageError(`--tune-budget must be seconds, 'off' or 'full', got '${text}'`);
  return s;
}

/** `--backend webgpu|cpu` → a backend for the module (webgpu prints the adapter it uses). */
export async function makeBackend(name: string | undefined, m: Module, quiet = false,
  o: { budget?: TuneBudget; hint?: string } = {}): Promise<Backend> {
  const hint = o.hint ?? 'lower the batch size';
  switch (name ?? 'webgpu') {
    case 'cpu': checkFits(m, cpuCapacity(), 'cpu-driver', hint, quiet ? undefined : warn); return new CpuBackend(m);
    case 'webgpu': {
      device = await import('../webgpu/device.js');
      const gpu = await device.getGpu({ quiet });
      // before tuning, which would allocate the step's largest buffers to time its tilings
      checkFits(m, gpuCapacity(gpu.limits, gpu.adapterDescription, gpu.isCpuDriver), gpu.isCpuDriver ? 'cpu-driver' : 'gpu', hint, quiet ? undefined : warn);
      const budget = o.budget ?? defaultTuneBudget(gpu.isCpuDriver);
      return tunedWebGpuBackend(gpu, m, { budget, ...(quiet ? {} : { progress: new Progress() }) });
    }
    default: throw new UsageError(`--backend must be webgpu or cpu, got '${name}'`);
  }
}

const seconds = (ms: number) => (ms < 90_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 60_000).toFixed(1)} min`);

/**
 * A WebGPU backend with the GEMM tilings this adapter runs fastest: from the tune cache, measured now where it has
 * no entry, the biggest shapes first within `budget` (default 'full': benchmarks measure everything; LPC_TUNE=off:
 * the defaults, nothing measured). `progress` shows one line counting the shapes (lpc run).
 */
export async function tunedWebGpuBackend(gpu: Gpu, m: Module, o: { budget?: TuneBudget; progress?: Progress } = {}): Promise<WebGpuBackend> {
  const { WebGpuBackend: Make } = await import('../webgpu/executor.js');
  if (process.env.LPC_TUNE === 'off') return new Make(gpu, m);
  const { tuneModule, cachePath } = await import('../webgpu/tune.js');
  const budget = o.budget ?? 'full';
  const budgetMs = budgetMillis(budget);
  const bar = o.progress;
  const limit = budget === 'full' ? 'no budget' : `budget ${budget === 'off' ? 'off' : `${budget} s`}`;
  const { picker } = await tuneModule(gpu, m, {
    budgetMs,
    progress: bar && ((p) => {
      if (!p.finished) {
        bar.bar('lpc: tuning kernels for this adapter (once; cached)', p.done, p.total,
          `${seconds(p.elapsedMs)} elapsed${p.leftMs !== undefined ? `, ~${seconds(p.leftMs)} left` : ''} (${limit})${p.pruned ? `, ${p.pruned} slow candidates skipped` : ''}`, p.done === 0, 'shapes ');
        return;
      }
      const how = [p.costModel && `${p.costModel} use the cost model's pick`, p.similar && `${p.similar} borrow the tile of the nearest measured or shipped shape`,
        p.untuned - p.costModel - p.similar && `${p.untuned - p.costModel - p.similar} use the default`].filter(Boolean).join(', ');
      const rest = p.untuned ? `; ${p.untuned} not measured yet (${how}) until a later run or 'lpc tune' measures them` : '';
      const ship = p.shipped ? `; ${p.shipped} use the tiling lpc ships for this driver ('lpc tune' measures them)` : '';
      const skip = p.pruned ? `; the cost model skipped ${p.pruned} slow candidates in ${p.prunedClasses} of them` : '';
      const skipped = budget === 'off' && p.done === 0 ? `none measured (--tune-budget off): ${p.untuned} shape classes use the cost model's pick (${p.costModel}), the nearest shipped tiling (${p.similar}) or the default${ship}` : `tuned ${p.done}/${p.total} kernel shapes in ${seconds(p.elapsedMs)} (${limit})${skip}${rest}${ship}`;
      bar.line(`lpc: ${skipped}; cached for ${gpu.adapterDescription} in ${cachePath()}; 'lpc tune' measures ahead of time, --tune-budget off|full|S sets the budget`);
    }),
  });
  return new Make(gpu, m, { tiles: picker });
}

/** Shuts Dawn down cleanly if it was started. */
export async function closeBackends(): Promise<void> {
  if (device) await device.shutdownGpu();
}
