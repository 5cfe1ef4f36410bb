import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Graph } from '../../ir/graph.js';
import { numel } from '../../ir/types.js';

/** The vendored golden vectors (test/fixtures/golden/README.md says where they came from): tests read nothing outside the repo. */
export const GOLDEN = path.resolve(process.cwd(), 'test/fixtures/golden');
export function golden<T = any>(name: string): T { return JSON.parse(fs.readFileSync(path.join(GOLDEN, name), 'utf8')); }

/** float32 values from a golden tensor's hex bit patterns (the authoritative encoding). */
export function fromHex(t: { hex: string[] }): Float32Array {
  const u = new Uint32Array(t.hex.map((h) => parseInt(h, 16)));
  return new Float32Array(u.buffer);
}

/** Deterministic test data (mulberry32). */
export function rand(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function randn(r: () => number, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())) * scale;
  return out;
}

/** max |a−b| / (max |b| + floor): a norm-relative error, robust to individual near-zero entries. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-12): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / (m + floor);
}

/**
 * Feeds for one training step of `g`: the states from `state`, labels in 0..9, lr 0.05, data uniform in [−1, 1) from
 * `r` (Float32Array / Int32Array values, keyed by node id).
 */
/** Random feeds for a graph's inputs by name: lr 0.05, class ids 0–9, data uniform in [0, 1). */
export function inputFeeds(g: Graph, r: () => number): Record<string, ArrayLike<number>> {
  const feeds: Record<string, ArrayLike<number>> = {};
  for (const n of g.nodes) {
    if (n.op !== 'input') continue;
    const len = numel(n.type.shape);
    feeds[n.attrs.name as string] = n.attrs.name === 'lr' ? [0.05]
      : n.type.dtype === 'i32' ? Int32Array.from({ length: len }, () => Math.floor(r() * 10))
        : Float32Array.from({ length: len }, () => r());
  }
  return feeds;
}

export function stepFeeds(g: Graph, state: Map<string, Float32Array>, r: () => number): Map<number, Float32Array | Int32Array> {
  const feeds = new Map<number, Float32Array | Int32Array>();
  for (const n of g.nodes) {
    if (n.op === 'state') feeds.set(n.id, state.get(n.attrs.name as string)!);
    if (n.op !== 'input') continue;
    const size = numel(n.type.shape);
    feeds.set(n.id, n.type.dtype === 'i32' ? Int32Array.from({ length: size }, () => Math.floor(r() * 10))
      : n.attrs.name === 'lr' ? new Float32Array([0.05]) : Float32Array.from({ length: size }, () => r() * 2 - 1));
  }
  return feeds;
}

/**
 * Runs `node --require <preload> bin/lpc.js ...lpcArgs` with `env`; the preload SIGSTOPs the child at a known point
 * (so the kill cannot race the run to its end on a fast machine). Once `reached()` holds, SIGKILLs the child and
 * waits for it to be gone; `what` names the point in the error when the child ends before it.
 */
export async function killWhen(preload: string, env: Record<string, string>, lpcArgs: string[], reached: () => boolean, what: string): Promise<void> {
  // LPC_STDERR_FILTERED: bin/lpc.js runs the command in this process (not in a child that filters Dawn's warnings),
  // so the SIGKILL lands on the process the preload stopped
  const child = spawn(process.execPath, ['--require', preload, 'bin/lpc.js', ...lpcArgs], { stdio: 'ignore', env: { ...process.env, ...env, LPC_STDERR_FILTERED: '1' } });
  let exited = false;
  child.on('exit', () => { exited = true; });
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    if (reached()) break;
    if (exited) throw new Error(`the child exited before ${what}`);
  }
  child.kill('SIGKILL');
  await new Promise((r) => (exited ? r(null) : child.on('exit', r)));
}

/**
 * Runs `node bin/lpc.js ...lpcArgs` (a run with --checkpoint dir), stops it right after it writes the checkpoint at
 * global step `step`, then SIGKILLs it.
 */
export async function killAfterCheckpoint(lpcArgs: string[], dir: string, step: number): Promise<void> {
  await killWhen('./test/fixtures/stop-after-checkpoint.cjs', { LPC_TEST_STOP_STEP: String(step) }, lpcArgs, () => {
    let at: number | undefined;
    try { at = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8')).position.globalStep; } catch { /* not yet written */ }
    return at !== undefined && at >= step;
  }, `its checkpoint at step ${step}`);
}

/** Runs `lpc sweep …` into `dir`, stops it right after its `cells`-th cell result is renamed into place, SIGKILLs it. */
export async function killAfterCells(lpcArgs: string[], dir: string, cells: number): Promise<void> {
  await killWhen('./test/fixtures/stop-after-cell.cjs', { LPC_TEST_STOP_CELLS: String(cells) }, lpcArgs, () => {
    try { return fs.readdirSync(path.join(dir, 'cells')).filter((f) => /^t\d+-c\d+\.json$/.test(f)).length >= cells; } catch { return false; }
  }, `its cell result ${cells}`);
}

/**
 * A safetensors file assembled by hand from the format's spec, independently of lpc's writer: an 8-byte
 * little-endian header length, the JSON header ({ name: { dtype, shape, data_offsets } }, tensors back to back in the
 * given order), then the bytes.
 */
export function handSafetensors(tensors: [string, string, number[], Buffer][], headerExtra: Record<string, unknown> = {}): Buffer {
  const header: Record<string, unknown> = { ...headerExtra };
  let off = 0;
  for (const [name, dtype, shape, bytes] of tensors) { header[name] = { dtype, shape, data_offsets: [off, off + bytes.length] }; off += bytes.length; }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...tensors.map((t) => t[3])]);
}
