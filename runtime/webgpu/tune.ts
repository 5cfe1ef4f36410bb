/**
 * Per-adapter choice of GEMM tilings (codegen/kernels/tiles.ts). Which tile wins depends on the adapter (register
 * blocking on CPU Vulkan drivers, shared memory on GPUs) and on the shape, so it is measured: for each tiled node
 * of a module whose shape class has no entry yet, every candidate tile runs on random data of the node's shapes,
 * alternating between candidates in rounds, and the fastest is kept.
 *
 * The choices are cached on disk in `tune.json` under $LPC_CACHE_DIR (default $XDG_CACHE_HOME/lpc, else
 * ~/.cache/lpc), keyed by adapter description and shape class. Writes are atomic (temp file in the same folder,
 * fsync, rename) and merge with what is on disk at that moment; a file that cannot be parsed or has the wrong
 * shape is ignored with a warning (and replaced on the next write), never an error. Entries name tiles by their
 * name; one that is no longer shipped is ignored.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Graph, Module, Node, Builder, emptyGraph } from '../../ir/graph.js';
import { withoutQuantizer } from '../../ir/ops.js';
import { numel } from '../../ir/types.js';
import { Variant } from '../../codegen/kernels/index.js';
import {
  TILED_OPS, Tile, TilePicker, allTiles, defaultTile, nodeTileCandidates, parseTile, shapeClass, tileFits, tileName,
} from '../../codegen/kernels/tiles.js';
import type { Gpu } from './device.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';

/** Bumped when the kernels change enough that old measurements mean nothing. */
export const TUNE_VERSION = 1;

export interface TuneEntry {
  tile: string;
  /** Milliseconds per run of each candidate measured (best over the rounds). */
  ms: Record<string, number>;
  /** ISO date of the measurement. */
  at: string;
}

export interface TuneCache {
  version: number;
  /** adapter description → shape class → entry */
  adapters: Record<string, Record<string, TuneEntry>>;
}

export const emptyCache = (): TuneCache => ({ version: TUNE_VERSION, adapters: {} });

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LPC_CACHE_DIR) return env.LPC_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'lpc');
}

export const cachePath = (dir = cacheDir()) => path.join(dir, 'tune.json');

/** The cache key of a node on an adapter: [adapter, shape class] (the two levels of TuneCache.adapters). */
export function tuneKey(adapter: string, g: Graph, node: Node): [string, string] {
  return [adapter, shapeClass(g, node)];
}

type Warn = (msg: string) => void;
const stderrWarn: Warn = (m) => process.stderr.write(`lpc: warning: ${m}\n`);

function validEntry(e: unknown): e is TuneEntry {
  if (!e || typeof e !== 'object') return false;
  const x = e as Record<string, unknown>;
  return typeof x.tile === 'string' && !!x.ms && typeof x.ms === 'object' && typeof x.at === 'string';
}

/** The cache at `file`: empty when missing; empty with a warning when unreadable, corrupt or of another version. */
export function readTuneCache(file = cachePath(), warn: Warn = stderrWarn): TuneCache {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    // no file there (ENOTDIR: a file where a folder should be) reads as empty; writing it will say what is wrong
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') warn(`cannot read the tuning cache ${file} (${(e as Error).message}); ignoring it`);
    return emptyCache();
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    warn(`the tuning cache ${file} is corrupt (${(e as Error).message}); ignoring it`);
    return emptyCache();
  }
  const c = v as Partial<TuneCache>;
  if (!c || typeof c !== 'object' || typeof c.adapters !== 'object' || c.adapters === null || Array.isArray(c.adapters)) {
    warn(`the tuning cache ${file} is corrupt (not a {version, adapters} object); ignoring it`);
    return emptyCache();
  }
  if (c.version !== TUNE_VERSION) {
    warn(`the tuning cache ${file} has version ${String(c.version)}, this lpc uses ${TUNE_VERSION}; ignoring it`);
    return emptyCache();
  }
  const out = emptyCache();
  for (const [a, classes] of Object.entries(c.adapters)) {
    if (!classes || typeof classes !== 'object') continue;
    const ok: Record<string, TuneEntry> = {};
    for (const [k, e] of Object.entries(classes)) if (validEntry(e)) ok[k] = e;
    out.adapters[a] = ok;
  }
  return out;
}

/** Writes `c` to `file` atomically: a temp file in the same folder, fsync, then rename over the old one. */
export function writeTuneCache(c: TuneCache, file = cachePath()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(c, null, 1) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
}

/** Adds entries for one adapter to the cache on disk (re-read just before writing, so other adapters' and other
 *  processes' entries survive). */
export function mergeTuneEntries(adapter: string, entries: Record<string, TuneEntry>, file = cachePath(), warn: Warn = stderrWarn): TuneCache {
  const c = readTuneCache(file, warn);
  c.adapters[adapter] = { ...(c.adapters[adapter] ?? {}), ...entries };
  writeTuneCache(c, file);
  return c;
}

/**
 * The cached tile of a node on `adapter`, if there is one, it is still shipped for the op, and the entry is current:
 * it timed every register and window tile shipped now (both adapter classes measure those; an entry from before a
 * tile was added is measured again) and every time is positive.
 */
export function cachedTile(c: TuneCache, adapter: string, g: Graph, node: Node): Tile | undefined {
  if (!TILED_OPS.has(node.op)) return undefined;
  const e = c.adapters[adapter]?.[shapeClass(g, node)];
  if (!e) return undefined;
  const times = Object.values(e.ms);
  if (times.length && (times.some((t) => !(t > 0)) || allTiles(node.op).some((t) => t.kind !== 'smem' && tileFits(g, node, t) && !(tileName(t) in e.ms)))) return undefined;
  try {
    const t = parseTile(e.tile);
    return allTiles(node.op).some((x) => tileName(x) === tileName(t)) && tileFits(g, node, t) ? t : undefined;
  } catch {
    return undefined;
  }
}

/** A picker answering from the cache (nodes without an entry get the default tile). */
export function cachePicker(c: TuneCache, adapter: string): TilePicker {
  return (g, node) => cachedTile(c, adapter, g, node);
}

export interface TuneRow {
  graph: string;
  node: number;
  op: string;
  cls: string;
  tile: string;
  /** Where the choice came from. */
  source: 'measured' | 'cache' | 'default';
  ms?: Record<string, number>;
}

export interface TuneOptions {
  file?: string;
  /** Measure again even where the cache has an entry. */
  force?: boolean;
  /** Alternating rounds over the candidates (default 3). */
  rounds?: number;
  log?: (s: string) => void;
  warn?: Warn;
}

/** A graph of inputs (random data) feeding a copy of `node` without its quantize epilogue. */
function standalone(g: Graph, node: Node): { g: Graph; id: number; feeds: Map<number, Float32Array> } {
  const sg = emptyGraph('tune');
  const b = new Builder(sg);
  const feeds = new Map<number, Float32Array>();
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 - 0.5; };
  const ids = node.inputs.map((i, k) => {
    const shape = g.nodes[i].type.shape;
    const id = b.add('input', [], { name: `x${k}`, kind: 'data', shape, dtype: 'f32' });
    feeds.set(id, Float32Array.from({ length: numel(shape) }, rnd));
    return id;
  });
  return { g: sg, id: b.add(node.op, ids, withoutQuantizer(node.attrs)), feeds };
}

/**
 * Milliseconds per run of each candidate. Buffers and bind groups are made once per candidate; a timing is `reps`
 * runs of the node's kernels in one compute pass, one submit, awaited (reps sized to ≈ 30 ms, so submit and wait
 * costs are small next to the work); best over `rounds` rounds that alternate between candidates, so drift in the
 * machine's speed hits all alike.
 */
async function measure(gpu: Gpu, g: Graph, node: Node, tiles: Tile[], rounds: number): Promise<number[]> {
  // Dawn loads only here: the cache functions above work (and are tested) without a device.
  const { PipelineCache } = await import('./pipelines.js');
  const d = gpu.device;
  const s = standalone(g, node);
  const variant: Variant = gpu.isCpuDriver ? 'cpu-driver' : 'gpu';
  const pipelines = new PipelineCache(d);
  const owned: GPUBuffer[] = [];
  const make = (bytes: number, usage: number) => {
    const b = d.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    owned.push(b);
    return b;
  };
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const bufs = new Map<number, GPUBuffer>();
  for (const n of s.g.nodes) {
    const b = make(numel(n.type.shape) * 4, STORAGE);
    bufs.set(n.id, b);
    const v = s.feeds.get(n.id);
    if (v) d.queue.writeBuffer(b, 0, v);
  }
  const stepBuf = make(64, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  try {
    const runs = tiles.map((t) => {
      const scratch = new Map<number, GPUBuffer>();
      return kernelsForNode(s.g, s.id, { variant, tiles: () => t }).map((k) => {
        const { pipeline, layout } = pipelines.get(k);
        const params = make(k.params.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
        d.queue.writeBuffer(params, 0, k.params);
        const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params } }];
        if (k.usesStep) entries.push({ binding: 1, resource: { buffer: stepBuf } });
        k.bindings.forEach((b, i) => {
          let buf: GPUBuffer;
          if (b.ref.kind === 'node') buf = bufs.get(b.ref.id)!;
          else {
            if (!scratch.has(b.ref.index)) scratch.set(b.ref.index, make(b.ref.bytes, STORAGE));
            buf = scratch.get(b.ref.index)!;
          }
          entries.push({ binding: 2 + i, resource: { buffer: buf } });
        });
        return { pipeline, group: d.createBindGroup({ layout, entries }), dispatch: k.dispatch };
      });
    });
    await pipelines.check();
    const time = async (i: number, reps: number) => {
      const t0 = performance.now();
      const enc = d.createCommandEncoder();
      const pass = enc.beginComputePass();
      for (let r = 0; r < reps; r++)
        for (const k of runs[i]) {
          pass.setPipeline(k.pipeline);
          pass.setBindGroup(0, k.group);
          pass.dispatchWorkgroups(...k.dispatch);
        }
      pass.end();
      d.queue.submit([enc.finish()]);
      await d.queue.onSubmittedWorkDone();
      return (performance.now() - t0) / reps;
    };
    const reps: number[] = [];
    for (let i = 0; i < tiles.length; i++) {
      await time(i, 1); // compile: lavapipe JITs at the first dispatch
      reps.push(Math.max(1, Math.min(20, Math.round(30 / Math.max(0.01, await time(i, 1))))));
    }
    const best = tiles.map(() => Infinity);
    for (let r = 0; r < rounds; r++)
      for (let i = 0; i < tiles.length; i++) best[i] = Math.min(best[i], await time(i, reps[i]));
    return best;
  } finally {
    await d.queue.onSubmittedWorkDone();
    for (const b of owned) b.destroy();
  }
}

/**
 * Whether `tile`'s kernels for `node` bind no scratch buffer larger than the device allows (Winograd's transformed
 * tiles are 4× an activation, so at a large batch they can pass maxStorageBufferBindingSize where the others fit).
 */
export function tileFitsDevice(g: Graph, node: Node, tile: Tile, variant: Variant, maxBinding: number): boolean {
  return kernelsForNode(g, node.id, { variant, tiles: () => tile })
    .every((k) => k.bindings.every((b) => b.ref.kind !== 'scratch' || b.ref.bytes <= maxBinding));
}

/**
 * Chooses a tile for every tiled node of `m` on this adapter: from the cache, or measured now (and cached).
 * Returns the picker for the executor and a row per node.
 */
export async function tuneModule(gpu: Gpu, m: Module, o: TuneOptions = {}): Promise<{ picker: TilePicker; rows: TuneRow[] }> {
  const file = o.file ?? cachePath();
  const warn = o.warn ?? stderrWarn;
  const adapter = gpu.adapterDescription;
  const variant: Variant = gpu.isCpuDriver ? 'cpu-driver' : 'gpu';
  const cache = readTuneCache(file, warn);
  const maxBinding = gpu.limits.maxStorageBufferBindingSize;
  const fresh: Record<string, TuneEntry> = {};
  const rows: TuneRow[] = [];
  for (const g of m.graphs)
    for (const node of g.nodes) {
      if (!TILED_OPS.has(node.op)) continue;
      const cls = shapeClass(g, node);
      const row = { graph: g.name, node: node.id, op: node.op, cls };
      const done = fresh[cls];
      const hit = o.force ? undefined : cachedTile(cache, adapter, g, node);
      if (done) { rows.push({ ...row, tile: done.tile, source: 'measured', ms: done.ms }); continue; }
      if (hit) { rows.push({ ...row, tile: tileName(hit), source: 'cache', ms: cache.adapters[adapter][cls].ms }); continue; }
      const tiles = nodeTileCandidates(g, node, variant).filter((t) => tileFitsDevice(g, node, t, variant, maxBinding));
      if (tiles.length < 2) {
        rows.push({ ...row, tile: tileName(tiles[0] ?? defaultTile(g, node, variant)), source: 'default' });
        continue;
      }
      o.log?.(`tuning ${cls} (${tiles.map(tileName).join(', ')})`);
      const ms = await measure(gpu, g, node, tiles, o.rounds ?? 3);
      const win = ms.indexOf(Math.min(...ms));
      const entry: TuneEntry = {
        tile: tileName(tiles[win]), at: new Date().toISOString(),
        ms: Object.fromEntries(tiles.map((t, i) => [tileName(t), +ms[i].toFixed(4)])),
      };
      fresh[cls] = entry;
      rows.push({ ...row, tile: entry.tile, source: 'measured', ms: entry.ms });
    }
  // The cache is an optimisation: when it cannot be written, this run still uses what it measured.
  let merged = cache;
  if (Object.keys(fresh).length) {
    try { merged = mergeTuneEntries(adapter, fresh, file, () => {}); } catch (e) {
      warn(`cannot write the tuning cache ${file} (${(e as Error).message}); this run's measurements are not kept`);
    }
  }
  // Measured this run first (even if the write raced another process), then the cache, then the default.
  // A class spans sizes up to 2× apart: a tile measured on a smaller member may not fit this one's buffers.
  const picker: TilePicker = (g, node) => {
    const e = fresh[shapeClass(g, node)];
    const t = e ? parseTile(e.tile) : cachedTile(merged, adapter, g, node);
    return t && tileFitsDevice(g, node, t, variant, maxBinding) ? t : undefined;
  };
  return { picker, rows };
}

/** The rows as a table: one line per shape class (nodes sharing it listed), the choice and each candidate's ms. */
export function tuneTable(rows: TuneRow[]): string {
  const byCls = new Map<string, TuneRow[]>();
  for (const r of rows) byCls.set(r.cls, [...(byCls.get(r.cls) ?? []), r]);
  const lines = ['| shape class | nodes | tile | source | ms per candidate |', '|---|---|---|---|---|'];
  for (const [cls, rs] of byCls) {
    const r = rs[0];
    const ms = r.ms ? Object.entries(r.ms).map(([t, v]) => `${t} ${v.toFixed(3)}`).join(', ') : '—';
    lines.push(`| ${cls} | ${rs.map((x) => `${x.graph}:%${x.node}`).join(' ')} | ${r.tile} | ${r.source} | ${ms} |`);
  }
  return lines.join('\n');
}
