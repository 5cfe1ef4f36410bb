/**
 * Sizes refused before any work, in the user's terms: a model or batch whose memory plan passes what a buffer may
 * hold (lpc's 32-bit sizes, the adapter's maxBufferSize / maxStorageBufferBindingSize), whose dispatches pass
 * maxComputeWorkgroupsPerDimension, or whose whole plan passes the host's memory (the CPU interpreter, a CPU Vulkan
 * driver) is refused with the plan's figure, the buffer that is too large, the model line that made it and the flag
 * to change — at compile, `lpc mem` and run start, never after minutes of allocation, and never as a raw internal
 * message (a u32 parameter out of range, 65535² workgroups, a typed array that cannot be allocated).
 *
 * `LPC_LIMITS=maxStorageBufferBindingSize=1GiB,memory=8GiB` lowers the limits (what-if runs for a smaller device,
 * and the tests); it never raises them.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Graph, Module, Node } from '../ir/graph.js';
import { locToString, numel } from '../ir/types.js';
import { Kernel } from '../codegen/kernel.js';
import { Variant, kernelsForNode } from '../codegen/kernels/index.js';
import { ModuleMemoryPlan, align16, planModuleMemory } from '../passes/memory.js';
import { ModuleKernels, nodeKernels, withViews } from './memory.js';
import { UsageError } from './cli/args.js';
import { attrsOf } from '../ir/op-registry.js';

const GiB = 2 ** 30;

/** The most bytes one buffer may take in lpc: sizes and indices are 32-bit (and no Vulkan device binds more). */
export const LPC_MAX_BUFFER_BYTES = 4 * GiB - 16;

/** What a plan must fit: the smallest of the buffer limits, the workgroup grid, and (where known) the memory. */
export interface Capacity {
  /** Who sets the limits, for the message: "lpc", "this adapter (…)", "the CPU interpreter". */
  who: string;
  /** Bytes one buffer may take, and the limit's name. */
  bufferBytes: number;
  bufferLimit: string;
  workgroupsPerDimension: number;
  /** Bytes the whole plan may take (host memory for the CPU backends; unknown for a GPU's own memory). */
  memoryBytes?: number;
  memoryWhat?: string;
  /** How the backend allocates: 'plan' (the shared slots of the memory plan) or 'per-value' (the interpreter). */
  allocates: 'plan' | 'per-value';
}

export class SizeError extends Error {
  constructor(message: string) { super(message); this.name = 'SizeError'; }
}

export const fmtBytes = (b: number): string =>
  (b >= GiB ? `${(b / GiB).toFixed(1)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} bytes`);

/** The limits lpc itself imposes (compile, `lpc mem`): what no device lpc runs on can exceed. */
export function lpcCapacity(): Capacity {
  return lowered({ who: 'lpc', bufferBytes: LPC_MAX_BUFFER_BYTES, bufferLimit: 'its kernels use 32-bit sizes', workgroupsPerDimension: 65535, allocates: 'plan' });
}

/** `--backend cpu`: every value of a step in host memory at once. */
export function cpuCapacity(): Capacity {
  return lowered({
    who: 'the CPU interpreter', bufferBytes: LPC_MAX_BUFFER_BYTES, bufferLimit: 'lpc\'s 32-bit buffer sizes', workgroupsPerDimension: Infinity,
    memoryBytes: os.totalmem(), memoryWhat: 'this machine\'s memory', allocates: 'per-value',
  });
}

/** A WebGPU device's limits; a CPU Vulkan driver keeps its buffers in host memory, so that counts too. */
export function gpuCapacity(limits: GPUSupportedLimits, adapter: string, cpuDriver: boolean): Capacity {
  const bind = limits.maxStorageBufferBindingSize, size = limits.maxBufferSize;
  return lowered({
    who: `this adapter (${adapter})`,
    bufferBytes: Math.min(bind, size, LPC_MAX_BUFFER_BYTES),
    bufferLimit: bind <= size ? 'maxStorageBufferBindingSize' : 'maxBufferSize',
    workgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
    ...(cpuDriver ? { memoryBytes: os.totalmem(), memoryWhat: 'this machine\'s memory (a CPU Vulkan driver keeps buffers there)' } : {}),
    allocates: 'plan',
  });
}

const LIMIT_KEYS: Record<string, 'bufferBytes' | 'workgroupsPerDimension' | 'memoryBytes'> = {
  maxStorageBufferBindingSize: 'bufferBytes', maxBufferSize: 'bufferBytes', maxComputeWorkgroupsPerDimension: 'workgroupsPerDimension', memory: 'memoryBytes',
};
const UNITS: Record<string, number> = { '': 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 2 ** 20, g: 1e9, gb: 1e9, gib: GiB };

/** `c` with LPC_LIMITS applied (each named limit lowered to the given value, never raised). */
function lowered(c: Capacity): Capacity {
  const text = process.env.LPC_LIMITS;
  if (!text) return c;
  const out = { ...c };
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\w+)=(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(item);
    const key = m ? LIMIT_KEYS[m[1]] : undefined, unit = m ? UNITS[m[3].toLowerCase()] : undefined;
    if (!m || !key || unit === undefined)
      throw new UsageError(`LPC_LIMITS: '${item}' is not NAME=VALUE with NAME one of ${Object.keys(LIMIT_KEYS).join(', ')} and VALUE like 512MiB`);
    const v = Math.floor(Number(m[2]) * unit);
    if (key === 'memoryBytes') { if (v < (out.memoryBytes ?? Infinity)) { out.memoryBytes = v; out.memoryWhat = 'the memory LPC_LIMITS allows'; } continue; }
    if (v < out[key]) { out[key] = v; if (key === 'bufferBytes') out.bufferLimit = `${m[1]} (LPC_LIMITS)`; }
  }
  return out;
}

/** `models/x.ts:12:5`, relative to the working directory when the model lies under it. */
function where(n: Node): string {
  if (!n.loc) return '';
  const rel = path.relative(process.cwd(), n.loc.file);
  return ` at ${locToString({ ...n.loc, file: rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : n.loc.file })}`;
}

/** "conv1 conv2d output at models/lenet5.ts:8:20": the layer (from its parameter's name), the op and the place. */
export function describeNode(g: Graph, n: Node, scratch = false): string {
  if (n.op === 'state') return `${attrsOf(n, 'state').name}${where(n)}`;
  const param = n.inputs.map((i) => g.nodes[i]).find((x) => x.op === 'state' && x.attrs.kind === 'param');
  const layer = param ? `${attrsOf(param, 'state').name.replace(/\.[^.]*$/, '')} ` : '';
  return `${layer}${n.op} ${scratch ? 'workspace' : 'output'}${where(n)}`;
}

interface Largest { bytes: number; g: Graph; n: Node; scratch: boolean }

function largestBuffer(m: Module, plan: ModuleMemoryPlan): Largest {
  let best: Largest | undefined;
  m.graphs.forEach((g, gi) => {
    const consider = (bytes: number, n: Node, scratch: boolean) => { if (!best || bytes > best.bytes) best = { bytes, g, n, scratch }; };
    for (const n of g.nodes) if (n.op === 'state') consider(align16(numel(n.type.shape) * 4), n, false);
    for (const b of plan.graphs[gi].buffers) consider(b.aligned, g.nodes[b.node], b.scratch !== undefined);
  });
  return best!;
}

/** Bytes the backend allocates for `plan`: the shared slots plus state, or (the interpreter) every value of the largest graph. */
function needed(plan: ModuleMemoryPlan, c: Capacity): number {
  if (c.allocates === 'plan') return plan.allocated_bytes;
  const state = plan.state.reduce((s, b) => s + b.aligned, 0);
  return state + Math.max(0, ...plan.graphs.map((g) => g.buffers.filter((b) => b.scratch === undefined).reduce((s, b) => s + b.aligned, 0)));
}

/**
 * Refuses `m` when its plan does not fit `c`, with one line: the step's figure, the largest buffer and its model line,
 * the limit, and `hint` (the flag to change, e.g. "lower --batch (now 1000000)"). First from the IR alone (values and
 * state, no kernels: so an absurd size never reaches codegen), then with `variant`'s kernels (their workspace and
 * workgroup grids). Returns the kernels it generated.
 */
export function checkFits(m: Module, c: Capacity, variant: Variant, hint: string, warn?: (line: string) => void): ModuleKernels {
  refuseIfOver(m, planModuleMemory(m), c, hint);
  const kernels = new Map<string, Kernel[][]>();
  for (const g of m.graphs) {
    const perNode: Kernel[][] = [];
    for (const n of g.nodes) {
      let ks: Kernel[];
      try { ks = kernelsForNode(g, n.id, { variant }); } catch (e) {
        throw new SizeError(`${describeNode(g, n)}: no kernel can compute it at this size (${(e as Error).message}); ${hint}`);
      }
      for (const k of ks) {
        const most = Math.max(...k.dispatch);
        if (most > c.workgroupsPerDimension)
          throw new SizeError(`${describeNode(g, n)}: kernel ${k.name} needs ${most} workgroups along one dimension but ${c.who} allows ${c.workgroupsPerDimension} (maxComputeWorkgroupsPerDimension); ${hint}`);
      }
      perNode.push(ks);
    }
    kernels.set(g.name, perNode);
  }
  // a backend that follows the plan places concatenations' inputs in their buffers; the interpreter allocates each value
  const placed: ModuleKernels = c.allocates === 'plan' ? withViews(m, kernels) : kernels;
  const plan = planModuleMemory(m, (g) => (id) => nodeKernels(g, id, placed.get(g.name)![id]), align16, undefined, (g) => placed.views?.get(g.name));
  refuseIfOver(m, plan, c, hint);
  // host memory that fits but is not free now: it may swap or be killed, so say so (once, before any work)
  if (warn && c.memoryBytes !== undefined && !process.env.LPC_LIMITS && needed(plan, c) > os.freemem())
    warn(`the training step needs ${fmtBytes(needed(plan, c))} but only ${fmtBytes(os.freemem())} of memory is free now; it may swap or be stopped`);
  return placed;
}

function refuseIfOver(m: Module, plan: ModuleMemoryPlan, c: Capacity, hint: string): void {
  const big = largestBuffer(m, plan);
  const total = needed(plan, c);
  const figure = `the training step needs ${fmtBytes(total)} (largest buffer ${fmtBytes(big.bytes)}: ${describeNode(big.g, big.n, big.scratch)})`;
  const fix = big.n.op === 'state' ? 'that parameter does not depend on the batch: make the layer smaller' : hint;
  if (big.bytes > c.bufferBytes)
    throw new SizeError(`${figure} but ${c.who} allows ${fmtBytes(c.bufferBytes)} per buffer (${c.bufferLimit}); ${fix}`);
  if (c.memoryBytes !== undefined && total > c.memoryBytes)
    throw new SizeError(`${figure} but ${c.memoryWhat} is ${fmtBytes(c.memoryBytes)}; ${hint}`);
}
