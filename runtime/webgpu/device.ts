/**
 * The Dawn device, one per process. Rules from research/webgpu-on-cpu.md §0/§8:
 * - the `create()` instance stays strongly referenced until shutdown (a collected instance crashes Dawn mid-run);
 * - a hardware adapter if there is one, else a CPU Vulkan driver (lavapipe, else SwiftShader), with a notice;
 * - the device gets the adapter's limits (WebGPU defaults are far lower) and the useful optional features;
 * - errors Dawn reports asynchronously are logged at once and thrown by the next `check()` / readback.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';

export interface Gpu {
  device: GPUDevice;
  /** `vendor | architecture | description`, e.g. `mesa | software | llvmpipe: Mesa 25.0.7 …`. */
  adapterDescription: string;
  /** A CPU Vulkan driver (lavapipe, SwiftShader): kernels should prefer register blocking over shared memory. */
  isCpuDriver: boolean;
  limits: GPUSupportedLimits;
  /** The features the device was created with. */
  features: Set<string>;
  /** Throws the first uncaptured device error since the last call (they are also logged when they happen). */
  check(): void;
}

/** Where chromium-common puts SwiftShader; used when no other adapter is found. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Optional features requested when the adapter has them. */
const WANTED_FEATURES = ['shader-f16', 'subgroups', 'subgroup-size-control', 'timestamp-query'];

type Holder = { __lpcDawn?: GPU[] };
const hold = globalThis as unknown as Holder;
/** Every Dawn instance created, referenced here and from globalThis until shutdown. */
let instances: GPU[] = [];
let pending: Promise<Gpu> | null = null;
let announced = false;
/** Uncaptured errors per device, drained by `check()` / `throwIfDeviceErrors`. */
const deviceErrors = new WeakMap<GPUDevice, string[]>();

// GPUBufferUsage, GPUMapMode, … as globals, like in a browser; at load so importers can use them at module level.
Object.assign(globalThis, globals);

function newInstance(): GPU {
  const g = create([]) as GPU;
  instances.push(g);
  hold.__lpcDawn = instances;
  return g;
}

/** The repository root: the nearest folder above this file with package.json (works from src and dist/). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

async function findAdapter(gpu: GPU): Promise<GPUAdapter | null> {
  // high-performance ranks discrete > integrated > CPU, so a CPU driver is only what is left.
  return (await gpu.requestAdapter({ powerPreference: 'high-performance' }))
    ?? (await gpu.requestAdapter({ forceFallbackAdapter: true }));
}

function isCpu(info: GPUAdapterInfo): boolean {
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /^(software|swiftshader)$/i.test(info.architecture)
    || /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description}`);
}

async function open(): Promise<Gpu> {
  process.env.MESA_SHADER_CACHE_DIR ??= path.join(repoRoot(), '.mesa-cache');
  try { fs.mkdirSync(process.env.MESA_SHADER_CACHE_DIR, { recursive: true }); } catch { /* Mesa then runs without a disk cache */ }

  let adapter = await findAdapter(newInstance());
  // No driver found: SwiftShader from chromium-common, if installed. The Vulkan loader reads VK_ICD_FILENAMES
  // when a Dawn instance is created, so setting it here and creating a second instance works in-process.
  if (!adapter && !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && fs.existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    adapter = await findAdapter(newInstance());
  }
  if (!adapter) {
    const icd = process.env.VK_ICD_FILENAMES ? ` (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES})` : '';
    throw new Error(`no WebGPU adapter was found${icd}: there is no GPU driver and no CPU Vulkan driver. ` +
      `Run ./setup.sh to install one (Mesa lavapipe), or use --backend cpu.`);
  }

  const info = adapter.info;
  const requiredLimits: Record<string, number> = {};
  for (const k in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'lpc' });

  const errors: string[] = [];
  deviceErrors.set(device, errors);
  device.addEventListener('uncapturederror', (ev) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    const msg = `WebGPU ${e.constructor?.name ?? 'error'}: ${e.message}`;
    errors.push(msg);
    process.stderr.write(`lpc: ${msg}\n`);
  });
  void device.lost.then((l) => {
    if (l.reason === 'destroyed') return;
    const msg = `WebGPU device lost (${l.reason}): ${l.message}`;
    errors.push(msg);
    process.stderr.write(`lpc: ${msg}\n`);
    pending = null; // the next getGpu() makes a new device
  });

  const adapterDescription = [info.vendor, info.architecture, info.description || info.device]
    .map((s) => s || '?').join(' | ');
  const gpu: Gpu = {
    device, adapterDescription, isCpuDriver: isCpu(info), limits: device.limits,
    features: new Set([...device.features]),
    check: () => throwIfDeviceErrors(device),
  };
  return gpu;
}

/** The process-wide device (created on first use). Prints the adapter once unless `quiet`. */
export async function getGpu(opts: { quiet?: boolean } = {}): Promise<Gpu> {
  pending ??= open();
  let gpu: Gpu;
  try {
    gpu = await pending;
  } catch (e) {
    pending = null; // let a later call (e.g. after setup.sh) try again
    throw e;
  }
  if (!opts.quiet && !announced) {
    announced = true;
    process.stderr.write(`lpc: using adapter ${gpu.adapterDescription}\n`);
    if (gpu.isCpuDriver) {
      process.stderr.write('lpc: note: this is a CPU Vulkan driver (no GPU found): correct but slow; ' +
        'use small problem sizes, and do not read performance numbers as GPU numbers\n');
    }
  }
  return gpu;
}

/** Whether a WebGPU adapter can be opened here. Never throws. */
export async function gpuAvailable(): Promise<boolean> {
  try {
    await getGpu({ quiet: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * For tests: the device, or null when there is none and the tests may skip. Under CI (`CI` set) a missing
 * adapter is an error instead: CI installs a CPU driver, so a skip there would hide a broken set-up.
 */
export async function gpuForTests(): Promise<Gpu | null> {
  try {
    return await getGpu({ quiet: true });
  } catch (e) {
    if (process.env.CI) throw new Error(`CI is set but ${(e as Error).message}`);
    return null;
  }
}

/** Throws the first uncaptured error recorded for `device` since the last call, and clears the list. */
export function throwIfDeviceErrors(device: GPUDevice): void {
  const errs = deviceErrors.get(device);
  if (!errs || errs.length === 0) return;
  const more = errs.length > 1 ? ` (and ${errs.length - 1} more)` : '';
  const first = errs[0];
  errs.length = 0;
  throw new Error(first + more);
}

/** Runs `fn` inside validation/out-of-memory/internal error scopes and throws the first error it caused. */
export async function withErrorScope<T>(device: GPUDevice, fn: () => T | Promise<T>): Promise<T> {
  const filters: GPUErrorFilter[] = ['validation', 'out-of-memory', 'internal'];
  for (const f of filters) device.pushErrorScope(f);
  let result: T;
  try {
    result = await fn();
  } finally {
    const errs = [];
    for (let i = 0; i < filters.length; i++) errs.push(await device.popErrorScope());
    const e = errs.find((x) => x);
    if (e) throw new Error(`WebGPU ${e.constructor?.name ?? 'error'}: ${e.message}`);
  }
  return result;
}

/** Waits for submitted work, destroys the device and lets go of Dawn. A later getGpu() starts afresh. */
export async function shutdownGpu(): Promise<void> {
  const p = pending;
  pending = null;
  announced = false;
  if (p) {
    const gpu = await p.catch(() => null);
    if (gpu) {
      await gpu.device.queue.onSubmittedWorkDone();
      gpu.device.destroy();
    }
  }
  instances = [];
  delete hold.__lpcDawn;
}
