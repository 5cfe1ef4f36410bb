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
import { numel } from '../../ir/types.js';
import { Variant } from '../../codegen/kernels/index.js';
import {
  TILED_OPS, Tile, TilePicker, allTiles, defaultTile, parseTile, shapeClass, tileCandidates, tileName,
} from '../../codegen/kernels/tiles.js';
import type { Gpu } from './device.js';

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
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn(`cannot read the tuning cache ${file} (${(e as Error).message}); ignoring it`);
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

/** The cached tile of a node on `adapter`, if there is one and it is still shipped for the op. */
export function cachedTile(c: TuneCache, adapter: string, g: Graph, node: Node): Tile | undefined {
  if (!TILED_OPS.has(node.op)) return undefined;
  const e = c.adapters[adapter]?.[shapeClass(g, node)];
  if (!e) return undefined;
  try {
    const t = parseTile(e.tile);
    return allTiles(node.op).some((x) => tileName(x) === tileName(t)) ? t : undefined;
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
  const { qfmt: _f, qround: _r, ...attrs } = node.attrs;
  return { g: sg, id: b.add(node.op, ids, attrs), feeds };
}

/** Milliseconds per run of each candidate: (4 runs − 1 run)/3 in one pass each, best over alternating rounds. */
async function measure(gpu: Gpu, g: Graph, node: Node, tiles: Tile[], rounds: number): Promise<number[]> {
  // Dawn loads only here: the cache functions above work (and are tested) without a device.
  const { PipelineCache } = await import('./pipelines.js');
  const { runKernels } = await import('./run-kernels.js');
  const s = standalone(g, node);
  const pipelines = new PipelineCache(gpu.device);
  const variant: Variant = gpu.isCpuDriver ? 'cpu-driver' : 'gpu';
  const time = async (t: Tile, reps: number) => {
    const t0 = performance.now();
    await runKernels(gpu.device, s.g, { feeds: s.feeds, run: Array(reps).fill(s.id), read: [s.id], pipelines, variant, tiles: () => t });
    return performance.now() - t0;
  };
  for (const t of tiles) await time(t, 1); // compile (lavapipe JITs at the first dispatch)
  const best = tiles.map(() => Infinity);
  for (let r = 0; r < rounds; r++)
    for (let i = 0; i < tiles.length; i++) {
      const one = await time(tiles[i], 1), four = await time(tiles[i], 4);
      best[i] = Math.min(best[i], Math.max(0, (four - one) / 3));
    }
  return best;
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
      const tiles = tileCandidates(node.op, variant);
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
  const merged = Object.keys(fresh).length ? mergeTuneEntries(adapter, fresh, file, warn) : cache;
  // Measured this run first (even if the write raced another process), then the cache, then the default.
  const picker: TilePicker = (g, node) => {
    const e = fresh[shapeClass(g, node)];
    return e ? parseTile(e.tile) : cachedTile(merged, adapter, g, node);
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
