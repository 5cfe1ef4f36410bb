/**
 * Tilings measured once per driver family and shipped with lpc (shipped-tiles-data.ts, written by
 * `node dist/bench/ship-tiles.js` from full `lpc tune` runs of the zoo): the prior for shape classes this adapter has
 * not measured yet. On a CPU Vulkan driver a full tune of ResNet-18 takes minutes (each candidate is a fresh LLVM
 * compile), so a first `lpc run` can measure only a few shapes within its budget; the fixed default tile is 2–3× slower
 * than the best for the backward convolutions, and a table measured on the same driver is far closer.
 *
 * A family is the driver, not the machine: llvmpipe's picks were measured on one x86-64 machine and rank alike on
 * others of its kind, but a later run or `lpc tune` still measures and caches this adapter's own choice.
 */
import * as fs from 'node:fs';
import { SHIPPED_TILES } from './shipped-tiles-data.js';
import { SHIPPED_COST_MODELS } from './shipped-cost-model-data.js';
import type { CostModel } from './cost-model.js';

export type ShippedTable = Record<string, string>;

/** The key of a table file (LPC_SHIPPED_TILES) that holds cost models per driver family beside the tables. */
export const COST_MODELS_KEY = 'cost-models';

/** The driver family of an adapter description (`mesa | software | llvmpipe: …`), if lpc ships tilings for it. */
export function driverFamily(adapter: string): string | undefined {
  if (/llvmpipe/i.test(adapter)) return 'llvmpipe';
  if (/swiftshader/i.test(adapter)) return 'swiftshader';
  return undefined;
}

/**
 * Shape class → tile shipped for `adapter`'s driver family (empty when there is none). `LPC_SHIPPED_TILES=off`
 * leaves them out and `LPC_SHIPPED_TILES=<file.json>` reads another table of the same form (benchmarks compare a
 * table without the benchmarked models with one that has them).
 */
export function shippedTiles(adapter: string, env: NodeJS.ProcessEnv = process.env): ShippedTable {
  const family = driverFamily(adapter);
  if (!family || env.LPC_SHIPPED_TILES === 'off') return {};
  const tables: Record<string, ShippedTable> = env.LPC_SHIPPED_TILES ? JSON.parse(fs.readFileSync(env.LPC_SHIPPED_TILES, 'utf8')) : SHIPPED_TILES;
  return tables[family] ?? {};
}

/**
 * The cost model shipped for `adapter`'s driver family (cost-model.ts; fitted by bench/ship-tiles.ts on the full
 * tunes behind the table), if there is one; LPC_SHIPPED_TILES as for shippedTiles (a table file carries its models
 * under "cost-models").
 */
export function shippedCostModel(adapter: string, env: NodeJS.ProcessEnv = process.env): CostModel | undefined {
  const family = driverFamily(adapter);
  if (!family || env.LPC_SHIPPED_TILES === 'off') return undefined;
  const models: Record<string, CostModel> = env.LPC_SHIPPED_TILES
    ? JSON.parse(fs.readFileSync(env.LPC_SHIPPED_TILES, 'utf8'))[COST_MODELS_KEY] ?? {}
    : SHIPPED_COST_MODELS;
  return models[family];
}
