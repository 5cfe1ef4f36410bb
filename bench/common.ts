/**
 * Helpers shared by the accuracy-table scripts (bench/division.ts; bench/recipes-fmnist.ts can use them too):
 * command-line flags, the backend (WebGPU on the first adapter, or the CPU interpreter), mean ± sample std, and
 * writing a generated block into the README between two markers.
 */
import * as fs from 'node:fs';
import type { Module } from '../ir/graph.js';
import type { Backend } from '../runtime/backend.js';
import { CpuBackend } from '../runtime/cpu/backend.js';
import { tunedWebGpuBackend } from '../runtime/cli/backends.js';
import type { Dataset } from '../runtime/data/types.js';

/** `--key value` flags of a script. */
export class Flags {
  constructor(readonly args: string[] = process.argv.slice(2)) {}
  has(k: string): boolean { return this.args.includes(k); }
  str(k: string): string | undefined { const i = this.args.indexOf(k); return i >= 0 ? this.args[i + 1] : undefined; }
  /** An integer ≥ min (default 1). */
  int(k: string, d: number, min = 1): number {
    const v = Number(this.str(k) ?? d);
    if (!Number.isInteger(v) || v < min) throw new Error(`${k} must be an integer ≥ ${min}`);
    return v;
  }
  /** A comma-separated list of integers (seeds). */
  ints(k: string, d: string): number[] {
    const v = (this.str(k) ?? d).split(',').map(Number);
    if (!v.length || !v.every(Number.isInteger)) throw new Error(`${k} must be integers separated by commas`);
    return v;
  }
}

/** A backend per run: WebGPU (one device for the whole script) or the CPU interpreter. */
export interface Runner {
  make(m: Module): Promise<Backend>;
  /** "WebGPU on <adapter>" or "the CPU reference interpreter", for captions. */
  where: string;
  close(): Promise<void>;
}

export async function openRunner(backend: string): Promise<Runner> {
  if (backend === 'cpu') return { make: async (m) => new CpuBackend(m), where: 'the CPU reference interpreter', close: async () => {} };
  if (backend !== 'webgpu') throw new Error(`--backend must be webgpu or cpu, got ${backend}`);
  const device = await import('../runtime/webgpu/device.js');
  const gpu = await device.getGpu({ quiet: true });
  return { make: (m) => tunedWebGpuBackend(gpu, m), where: `WebGPU on ${gpu.adapterDescription}`, close: () => device.shutdownGpu() };
}

export const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
/** Sample standard deviation (n − 1); 0 for fewer than two values. */
export const std = (a: number[]) => (a.length < 2 ? 0 : Math.sqrt(a.reduce((s, x) => s + (x - mean(a)) ** 2, 0) / (a.length - 1)));
/** `mean ± std` with two decimals (just the value for one sample). */
export const meanStd = (a: number[]) => (a.length > 1 ? `${mean(a).toFixed(2)} ± ${std(a).toFixed(2)}` : mean(a).toFixed(2));

/** The first n samples of a data set (a fixed subset: the splits are already seeded permutations). */
export function firstN(d: Dataset, n: number): Dataset {
  if (n >= d.n) return d;
  const size = d.shape[0] * d.shape[1] * d.shape[2];
  return { ...d, name: `${d.name}[0:${n}]`, n, images: d.images.subarray(0, n * size), labels: d.labels.subarray(0, n) };
}

/** The text between `<!-- name:begin -->` and `<!-- name:end -->` in a file, or undefined when the markers are missing. */
export function readSection(file: string, name: string): string | undefined {
  const text = fs.readFileSync(file, 'utf8');
  const begin = `<!-- ${name}:begin -->`, end = `<!-- ${name}:end -->`;
  const a = text.indexOf(begin), b = text.indexOf(end);
  return a < 0 || b < a ? undefined : text.slice(a + begin.length, b).replace(/^\n/, '').replace(/\n$/, '');
}

/** Replaces the text between the markers (which must exist) with `body`. */
export function writeSection(file: string, name: string, body: string): void {
  const text = fs.readFileSync(file, 'utf8');
  const begin = `<!-- ${name}:begin -->`, end = `<!-- ${name}:end -->`;
  const a = text.indexOf(begin), b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${file} has no ${begin} … ${end} section`);
  fs.writeFileSync(file, text.slice(0, a + begin.length) + '\n' + body + '\n' + text.slice(b));
}
