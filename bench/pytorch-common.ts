/**
 * What the PyTorch comparisons (bench/pytorch-lenet5.ts, bench/pytorch-transformer.ts) share: finding a Python with
 * torch and numpy, a scratch folder of raw little-endian arrays (lpc's initial weights per seed with their layout,
 * lpc's per-epoch sample orders, the data), running the Python side (one JSON line per seed back), and comparing
 * two loss curves step by step. The Python side reads the same files with bench/pytorch_common.py.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Module } from '../ir/graph.js';
import { numel } from '../ir/types.js';
import { epochOrder } from '../runtime/data/batches.js';
import { initState, stateDecls } from '../runtime/train/init.js';

/** PyTorch's version in `python`, or an error that says how to install it. */
export function torchVersion(python: string): string {
  const probe = spawnSync(python, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0)
    throw new Error(`${python} cannot import torch and numpy (install PyTorch, e.g. apt-get install python3-torch): ${probe.stderr.trim()}`);
  return probe.stdout.trim();
}

export const raw = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

export interface ParamLayout { name: string; shape: number[]; offset: number; size: number }

/** A scratch folder for the exported arrays, removed when the process exits (also when a run fails). */
export class Exchange {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-pytorch-'));
  constructor() { process.on('exit', () => fs.rmSync(this.dir, { recursive: true, force: true })); }

  write(name: string, a: ArrayBufferView): void { fs.writeFileSync(path.join(this.dir, name), raw(a)); }

  /** A split's samples (f32) and labels (i32) as `<prefix>_x.f32` and `<prefix>_y.i32`. */
  writeSplit(prefix: string, d: { images: Float32Array; labels: ArrayLike<number> }): void {
    this.write(`${prefix}_x.f32`, d.images);
    this.write(`${prefix}_y.i32`, Int32Array.from(d.labels));
  }

  /**
   * lpc's initial parameters per seed, concatenated in state order as `init_<seed>.f32`, and `meta.json` with their
   * layout (name, shape, offset, size) and `extra` (the recipe, the model's dimensions). Returns the layout.
   */
  writeInit(m: Module, seeds: number[], extra: Record<string, unknown>): ParamLayout[] {
    let offset = 0;
    const layout = stateDecls(m).filter((d) => d.kind === 'param').map((d) => {
      const e = { name: d.name, shape: d.shape, offset, size: numel(d.shape) };
      offset += e.size;
      return e;
    });
    fs.writeFileSync(path.join(this.dir, 'meta.json'), JSON.stringify({ ...extra, params: layout }));
    for (const seed of seeds) {
      const st = initState(m, seed), flat = new Float32Array(offset);
      for (const p of layout) flat.set(st.get(p.name)!, p.offset);
      this.write(`init_${seed}.f32`, flat);
    }
    return layout;
  }

  /** lpc's sample orders of epochs 1 … epochs per seed (as the training loop shuffles), as `order_<seed>.u32`. */
  writeOrders(n: number, seeds: number[], epochs: number): void {
    for (const seed of seeds) {
      const orders = new Uint32Array(epochs * n);
      for (let e = 1; e <= epochs; e++) orders.set(epochOrder(n, seed, e), (e - 1) * n);
      this.write(`order_${seed}.u32`, orders);
    }
  }

  /** Runs a Python script of bench/ with `--dir <this folder>` and `args`; one JSON object per line, by its seed. */
  python<T extends { seed: number }>(python: string, script: string, args: string[]): Map<number, T> {
    // this module runs from dist/bench/ (the scripts stay in bench/) or, under ts-jest, from bench/ itself
    const here = path.dirname(new URL(import.meta.url).pathname);
    const file = [path.join(here, script), path.join(here, '../../bench', script)].find((f) => fs.existsSync(f));
    if (!file) throw new Error(`bench/${script} not found next to ${here}`);
    const r = spawnSync(python, [file, '--dir', this.dir, ...args],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${r.status})`);
    const out = new Map<number, T>();
    for (const line of r.stdout.trim().split('\n')) { const j = JSON.parse(line) as T; out.set(j.seed, j); }
    return out;
  }
}

export const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** How many leading steps of two loss curves agree to `tol` relative (the whole length when all do). */
export function agreeingSteps(a: number[], b: number[], tol: number): number {
  const k = a.findIndex((x, i) => !(rel(x, b[i]) <= tol));
  return k < 0 ? Math.min(a.length, b.length) : k;
}

/** "0–2" for three or more consecutive seeds, else "0, 5". */
export function seedList(seeds: number[]): string {
  const contiguous = seeds.every((x, i) => x === seeds[0] + i);
  return contiguous && seeds.length > 2 ? `${seeds[0]}–${seeds.at(-1)}` : seeds.join(', ');
}
