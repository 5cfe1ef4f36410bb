/**
 * Per-adapter choice of GEMM tilings (codegen/kernels/tiles.ts). Which tile wins depends on the adapter (register
 * blocking on CPU Vulkan drivers, shared memory on GPUs) and on the shape, so it is measured: for each tiled node
 * of a module whose shape class has no entry yet, the candidate tiles run on random data of the node's shapes in
 * alternating rounds, the clearly slower ones dropped after each round (successive halving), and the fastest is kept.
 * Shape classes are measured in order of their share of the step's FLOPs, within a time budget (`lpc run
 * --tune-budget`): those left over run the tile lpc ships for the driver family (shipped-tiles.ts), else the
 * cost model's pick (cost-model.ts, shipped per driver family), else the tile measured best for the nearest class,
 * else the default, and are measured by a later run or by `lpc tune`. A budget is spent only on classes that have no
 * shipped tile; `lpc tune` and `--tune-budget full` measure every class. A budgeted run (or `lpc tune --prune`) also
 * skips the candidates the cost model predicts over 2× slower than its fastest (cost-model.ts pruneCandidates), so the
 * budget measures more classes; a full tune times every candidate, also of classes a pruning run measured.
 *
 * The choices are cached on disk (tune-cache.ts), keyed by adapter description and shape class. Entries name tiles
 * by their name; one that is no longer shipped is ignored.
 */
import { Graph, Module, Node } from '../../ir/graph.js';
import { Variant, kernelsForNode } from '../../codegen/kernels/index.js';
import {
  Tile, isTiledNode, TilePicker, allTiles, defaultTile, nodeTileCandidates, parseTile, shapeClass, tileFits, tileName,
} from '../../codegen/kernels/tiles.js';
import type { Gpu } from './device.js';
import { TuneCache, TuneEntry, Warn, cachePath, mergeTuneEntries, readTuneCache, stderrWarn } from './tune-cache.js';
import { shippedCostModel, shippedTiles, ShippedTable } from './shipped-tiles.js';
import { CostModel, PRUNE_FACTOR, costModelPick, pruneCandidates, relativeProfile } from './cost-model.js';
import { measure } from './tune-measure.js';

export {
  TUNE_VERSION, emptyCache, cacheDir, cachePath, tuneKey, readTuneCache, writeTuneCache, mergeTuneEntries,
} from './tune-cache.js';
export type { TuneEntry, TuneCache } from './tune-cache.js';
export { successiveHalving } from './tune-measure.js';

/**
 * The cached tile of a node on `adapter`, if there is one, it is still shipped for the op, and the entry is current:
 * it timed every register and window tile shipped now (both adapter classes measure those; an entry from before a
 * tile was added is measured again) and every time is positive. A tile the entry's tune pruned (not timed: the cost
 * model predicted it clearly slower) counts as timed, unless `pruned` is false (a full tune without pruning).
 */
export function cachedTile(c: TuneCache, adapter: string, g: Graph, node: Node, pruned = true): Tile | undefined {
  if (!isTiledNode(node)) return undefined;
  const e = c.adapters[adapter]?.[shapeClass(g, node)];
  if (!e) return undefined;
  const times = Object.values(e.ms), skipped = pruned ? e.pruned ?? [] : [];
  if (!pruned && e.pruned?.length) return undefined;
  if (times.length && (times.some((t) => !(t > 0)) || allTiles(node.op).some((t) => t.kind !== 'smem' && tileFits(g, node, t) && !(tileName(t) in e.ms) && !skipped.includes(tileName(t))))) return undefined;
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
  /** Where the choice came from: measured now, the cache, the default (one candidate only), the tile lpc ships for
   *  this driver family (`shipped`), the fastest by the driver family's cost model (`cost-model`: the budget ran out
   *  before this one), the tile measured or shipped best for the nearest shape class of the same structure
   *  (`similar`: the same, where no cost model is shipped), or the default when there is none (`untuned`); a later
   *  run or `lpc tune` measures the last four (a budgeted run: only those without a shipped tile). */
  source: 'measured' | 'cache' | 'default' | 'shipped' | 'cost-model' | 'similar' | 'untuned';
  /** `similar`: the shape class whose tile this one borrows; `cost-model`: the nearest class the model drew on. */
  from?: string;
  ms?: Record<string, number>;
  /** `measured`, `cache`: the candidates not timed because the cost model predicted them clearly slower. */
  pruned?: string[];
}

export interface TuneOptions {
  file?: string;
  /** Measure again even where the cache has an entry. */
  force?: boolean;
  /** Alternating rounds over the candidates (default 3). */
  rounds?: number;
  log?: (s: string) => void;
  warn?: Warn;
  /** Milliseconds to spend measuring (undefined: no limit). A shape is started only while the longest one measured
   *  so far would still fit in what is left. */
  budgetMs?: number;
  /** Progress after each shape class (and once before the first). */
  progress?: (p: TuneProgress) => void;
  /** The clock (tests use a fake one). */
  now?: () => number;
  /** How the candidates of one node are timed (tests use synthetic ones). */
  measure?: (g: Graph, node: Node, tiles: Tile[], rounds: number) => Promise<number[]>;
  /** Tiles shipped for this adapter's driver family (default: shipped-tiles.ts's table; tests give their own). */
  shipped?: ShippedTable;
  /** The cost model for classes the budget leaves unmeasured and for pruning (default: the one shipped for the driver
   *  family; null: none, they borrow the nearest class's tile and nothing is pruned). */
  costModel?: CostModel | null;
  /** Time only the candidates the cost model predicts within `pruneFactor`× of its fastest (cost-model.ts
   *  pruneCandidates; always its fastest and the default tile). Default: on for a budgeted run, off without a budget
   *  (`lpc tune`, `--tune-budget full` time every candidate unless `lpc tune --prune`); nothing is pruned without a
   *  cost model. */
  prune?: boolean;
  /** Default PRUNE_FACTOR (2). */
  pruneFactor?: number;
}

export interface TuneProgress {
  /** Shape classes measured so far, of `total` that have no cache entry. */
  done: number;
  total: number;
  elapsedMs: number;
  /** Estimated time to measure the rest (within the budget), once one has been measured. */
  leftMs?: number;
  /** Classes that the budget left unmeasured (known once `finished`), and of those how many the cost model picks for
   *  and how many borrow the tile of a similar measured class (the rest run the default). */
  untuned: number;
  costModel: number;
  similar: number;
  /** Classes not measured because lpc ships a tile for them (a budgeted run leaves them to `lpc tune`). */
  shipped: number;
  /** Candidates not timed so far because the cost model predicted them clearly slower, and in how many classes. */
  pruned: number;
  prunedClasses: number;
  finished: boolean;
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
 * The pick for a shape class the budget left unmeasured where no cost model is shipped (cost-model.ts): the tile
 * measured best for the nearest class of the same op and kernel size, among the tiles that are candidates for this
 * node. Nearest: the sum of |log2| ratios of the GEMM sizes m, n, k, plus 1 for each other structural difference
 * (transposes, bias, stride, padding). A tile's speed ranks alike for nearby sizes, mostly.
 */
export function nearestMeasured(cls: string, measured: [string, string][], candidates: string[]): { tile: string; from: string } | undefined {
  const split = (c: string) => {
    const parts = c.split(' ');
    const structure = parts.slice(0, -3);
    const kernel = structure.find((x) => /^k\d+x\d+$/.test(x)) ?? '';
    return { family: `${structure[0]} ${kernel}`, rest: structure.slice(1), sizes: parts.slice(-3).map((p) => Math.log2(Number(p.slice(1)) || 1)) };
  };
  const me = split(cls);
  let best: { tile: string; from: string; d: number } | undefined;
  for (const [other, tile] of measured) {
    const o = split(other);
    if (other === cls || o.family !== me.family || !candidates.includes(tile)) continue;
    const structural = o.rest.filter((x, i) => x !== me.rest[i]).length + Math.abs(o.rest.length - me.rest.length);
    const d = structural + o.sizes.reduce((sum, v, i) => sum + Math.abs(v - me.sizes[i]), 0);
    if (!best || d < best.d) best = { tile, from: other, d };
  }
  return best && { tile: best.tile, from: best.from };
}

/**
 * The order in which shape classes are measured: by FLOPs, but taking turns between the op kinds (forward, input
 * gradient, weight gradient, matmul …), so that within a budget every kind has its biggest class measured and the
 * rest of that kind can borrow from it.
 */
export function measureOrder<T extends { flops: number }>(todo: Map<string, T>): [string, T][] {
  const byOp = new Map<string, [string, T][]>();
  for (const e of [...todo.entries()].sort((a, b) => b[1].flops - a[1].flops)) {
    const op = e[0].split(' ')[0];
    byOp.set(op, [...(byOp.get(op) ?? []), e]);
  }
  const out: [string, T][] = [];
  for (let i = 0; out.length < todo.size; i++)
    for (const list of [...byOp.values()].sort((a, b) => b[0][1].flops - a[0][1].flops)) if (list[i]) out.push(list[i]);
  return out;
}

/** A node's arithmetic work with the default tile: what orders the shape classes for measuring. */
function nodeFlops(g: Graph, node: Node, variant: Variant): number {
  return kernelsForNode(g, node.id, { variant, tiles: () => defaultTile(g, node, variant) }).reduce((sum, k) => sum + (k.flops ?? 0), 0);
}

/**
 * Chooses a tile for every tiled node of `m` on this adapter: from the cache, or measured now (and cached), the
 * classes with the most FLOPs first while the budget lasts. Returns the picker for the executor and a row per node.
 */
export async function tuneModule(gpu: Gpu, m: Module, o: TuneOptions = {}): Promise<{ picker: TilePicker; rows: TuneRow[] }> {
  const file = o.file ?? cachePath();
  const warn = o.warn ?? stderrWarn;
  const now = o.now ?? (() => performance.now());
  const adapter = gpu.adapterDescription;
  const variant: Variant = gpu.isCpuDriver ? 'cpu-driver' : 'gpu';
  const cache = readTuneCache(file, warn);
  const maxBinding = gpu.limits.maxStorageBufferBindingSize;
  const time = o.measure ?? ((g, node, tiles, rounds) => measure(gpu, g, node, tiles, rounds));
  const shipped = o.shipped ?? shippedTiles(adapter);
  // a budgeted run leaves classes with a shipped tile to `lpc tune`: its time goes where lpc knows nothing
  const shippedPick = (cls: string, tiles: Tile[]) => (o.budgetMs !== undefined && tiles.some((t) => tileName(t) === shipped[cls]) ? shipped[cls] : undefined);
  const fromShipped = new Map<string, string>();
  // a pruning tune takes pruned cache entries as they are; a full one measures them again, every candidate
  const pruning = o.prune ?? o.budgetMs !== undefined;
  const model = o.costModel === undefined ? shippedCostModel(adapter) : o.costModel ?? undefined;
  // what each shape class needs: the cache's entry, the default (fewer than two candidates), or a measurement
  type Todo = { g: Graph; node: Node; tiles: Tile[]; flops: number };
  const todo = new Map<string, Todo>();
  const single = new Map<string, string>();
  for (const g of m.graphs)
    for (const node of g.nodes) {
      if (!isTiledNode(node)) continue;
      const cls = shapeClass(g, node);
      if (todo.has(cls)) { todo.get(cls)!.flops += nodeFlops(g, node, variant); continue; }
      if (single.has(cls) || (!o.force && cachedTile(cache, adapter, g, node, pruning))) continue;
      const tiles = nodeTileCandidates(g, node, variant).filter((t) => tileFitsDevice(g, node, t, variant, maxBinding));
      if (tiles.length < 2) single.set(cls, tileName(tiles[0] ?? defaultTile(g, node, variant)));
      else if (shippedPick(cls, tiles)) fromShipped.set(cls, shipped[cls]);
      else todo.set(cls, { g, node, tiles, flops: nodeFlops(g, node, variant) });
    }
  const order = measureOrder(todo);
  const fresh: Record<string, TuneEntry> = {};
  const t0 = now();
  let measured = 0, pruned = 0, prunedClasses = 0;
  const report = (finished: boolean, modelled = 0, borrowed = 0) => {
    const elapsedMs = now() - t0, per = measured ? elapsedMs / measured : undefined;
    const left = order.length - measured;
    o.progress?.({ done: measured, total: order.length, elapsedMs, untuned: finished ? left : 0, costModel: modelled, similar: borrowed, shipped: fromShipped.size,
      pruned, prunedClasses, finished,
      ...(per !== undefined && !finished ? { leftMs: Math.min(per * left, Math.max(0, (o.budgetMs ?? Infinity) - elapsedMs)) } : {}) });
  };
  // the cost model also draws on every class this adapter has measured (its profiles are this machine's own)
  const ownProfiles = () => Object.fromEntries([...Object.entries(cache.adapters[adapter] ?? {}), ...Object.entries(fresh)]
    .map(([c, e]) => [c, relativeProfile(e.ms)]).filter(([, p]) => p)) as Record<string, Record<string, number>>;
  if (order.length || fromShipped.size) report(false);
  let longest = 0;
  for (const [cls, t] of order) {
    // start a shape only if the longest one so far would still fit: a budget is a promise to the user
    const elapsed = now() - t0;
    if (o.budgetMs !== undefined && (o.budgetMs <= 0 || elapsed + longest > o.budgetMs)) break;
    const started = now();
    const names = t.tiles.map(tileName);
    const { kept, dropped } = model && pruning
      ? pruneCandidates(model, cls, names, [tileName(defaultTile(t.g, t.node, variant))], ownProfiles(), o.pruneFactor ?? PRUNE_FACTOR)
      : { kept: names, dropped: [] };
    const tiles = t.tiles.filter((x) => kept.includes(tileName(x)));
    o.log?.(`tuning ${cls} (${kept.join(', ')}${dropped.length ? `; the cost model skips ${dropped.join(', ')}` : ''})`);
    const ms = await time(t.g, t.node, tiles, o.rounds ?? 3);
    const win = ms.indexOf(Math.min(...ms));
    fresh[cls] = {
      tile: tileName(tiles[win]), at: new Date().toISOString(),
      ms: Object.fromEntries(tiles.map((x, i) => [tileName(x), +ms[i].toFixed(4)])),
      ...(dropped.length ? { pruned: dropped } : {}),
    };
    measured++;
    pruned += dropped.length;
    prunedClasses += dropped.length ? 1 : 0;
    longest = Math.max(longest, now() - started);
    report(false);
  }
  // measured tiles first: at equal distance a measurement on this adapter beats the shipped table
  const known: [string, string][] = [
    ...[...Object.entries(fresh), ...Object.entries(cache.adapters[adapter] ?? {})].map(([c, e]): [string, string] => [c, e.tile]),
    ...Object.entries(shipped),
  ];
  const profiles = ownProfiles();
  const similar = new Map<string, { tile: string; from?: string; source: 'cost-model' | 'similar' }>();
  for (const [cls, t] of order) {
    if (fresh[cls]) continue;
    const names = t.tiles.map(tileName);
    const pick = model ? costModelPick(model, cls, names, profiles) : nearestMeasured(cls, known, names);
    if (pick) similar.set(cls, { ...pick, source: model ? 'cost-model' : 'similar' });
  }
  const modelled = [...similar.values()].filter((x) => x.source === 'cost-model').length;
  if (order.length || fromShipped.size) report(true, modelled, similar.size - modelled);
  const rows: TuneRow[] = [];
  for (const g of m.graphs)
    for (const node of g.nodes) {
      if (!isTiledNode(node)) continue;
      const cls = shapeClass(g, node);
      const row = { graph: g.name, node: node.id, op: node.op, cls };
      const hit = o.force ? undefined : cachedTile(cache, adapter, g, node, pruning);
      const entry = fresh[cls] ?? (hit && cache.adapters[adapter][cls]);
      const skipped = entry && entry.pruned ? { pruned: entry.pruned } : {};
      if (fresh[cls]) rows.push({ ...row, tile: fresh[cls].tile, source: 'measured', ms: fresh[cls].ms, ...skipped });
      else if (hit) rows.push({ ...row, tile: tileName(hit), source: 'cache', ms: entry!.ms, ...skipped });
      else if (single.has(cls)) rows.push({ ...row, tile: single.get(cls)!, source: 'default' });
      else if (fromShipped.has(cls)) rows.push({ ...row, tile: fromShipped.get(cls)!, source: 'shipped' });
      else if (similar.has(cls)) {
        const { tile, from, source } = similar.get(cls)!;
        rows.push({ ...row, tile, source, ...(from ? { from } : {}) });
      }
      else rows.push({ ...row, tile: tileName(defaultTile(g, node, variant)), source: 'untuned' });
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
    const cls = shapeClass(g, node), e = fresh[cls], near = fromShipped.get(cls) ?? similar.get(cls)?.tile;
    const t = e ? parseTile(e.tile) : cachedTile(merged, adapter, g, node) ?? (near ? parseTile(near) : undefined);
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
    const ms = (r.ms ? Object.entries(r.ms).map(([t, v]) => `${t} ${v.toFixed(3)}`).join(', ') : '—') + (r.pruned ? `; not timed (cost model): ${r.pruned.join(', ')}` : '');
    const from = r.from ? ` (${r.source === 'cost-model' ? 'nearest' : 'from'} ${r.from})` : '';
    lines.push(`| ${cls} | ${rs.map((x) => `${x.graph}:%${x.node}`).join(' ')} | ${r.tile} | ${r.source}${from} | ${ms} |`);
  }
  return lines.join('\n');
}
