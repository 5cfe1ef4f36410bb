/**
 * The tuning cache: `tune.json` under $LPC_CACHE_DIR (default $XDG_CACHE_HOME/lpc, else ~/.cache/lpc), keyed by
 * adapter description and shape class. Writes are atomic (temp file in the same folder, fsync, rename) and merge with
 * what is on disk at that moment; a file that cannot be parsed or has the wrong shape is ignored with a warning (and
 * replaced on the next write), never an error.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Graph, Node } from '../../ir/graph.js';
import { shapeClass } from '../../codegen/kernels/tiles.js';
import { writeAtomic } from '../files.js';

/** Bumped when the kernels change enough that old measurements mean nothing. */
export const TUNE_VERSION = 1;

export interface TuneEntry {
  tile: string;
  /** Milliseconds per run of each candidate measured (best over the rounds). */
  ms: Record<string, number>;
  /** ISO date of the measurement. */
  at: string;
  /** Candidates not timed because the cost model predicted them clearly slower (a pruning tune, tune.ts): a later
   *  budgeted run takes the entry as it is, a full `lpc tune` without pruning measures the class again. */
  pruned?: string[];
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

export type Warn = (msg: string) => void;
export const stderrWarn: Warn = (m) => process.stderr.write(`lpc: warning: ${m}\n`);

function validEntry(e: unknown): e is TuneEntry {
  if (!e || typeof e !== 'object') return false;
  const x = e as Record<string, unknown>;
  return typeof x.tile === 'string' && !!x.ms && typeof x.ms === 'object' && typeof x.at === 'string'
    && (x.pruned === undefined || (Array.isArray(x.pruned) && x.pruned.every((t) => typeof t === 'string')));
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

/** Writes `c` to `file` atomically (runtime/files.ts writeAtomic: temp file in the same folder, fsync, rename). */
export function writeTuneCache(c: TuneCache, file = cachePath()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeAtomic(file, JSON.stringify(c, null, 1) + '\n');
}

/** Adds entries for one adapter to the cache on disk (re-read just before writing, so other adapters' and other
 *  processes' entries survive). */
export function mergeTuneEntries(adapter: string, entries: Record<string, TuneEntry>, file = cachePath(), warn: Warn = stderrWarn): TuneCache {
  const c = readTuneCache(file, warn);
  c.adapters[adapter] = { ...(c.adapters[adapter] ?? {}), ...entries };
  writeTuneCache(c, file);
  return c;
}

