/** The tiny softmax regression the Adam tests train (test/fixtures/adam_tiny.ts) and its batches. */
import { frontEnd } from '../../dsl/frontend.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Module } from '../../ir/graph.js';
import { runPasses } from '../../passes/pipeline.js';
import { OptimizerOptions } from '../../passes/optimizer.js';
import { rand } from './helpers.js';

export const B = 4, K = 4, C = 3;
export const compileTiny = (optimizer: OptimizerOptions, spec?: string, fuse = true): Module =>
  runPasses(frontEnd('test/fixtures/adam_tiny.ts', B), { batch: B, optimizer, fuse, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });

/** Batch k of a fixed seeded stream: x uniform in [−1, 1), labels 0..2. */
export function tinyBatch(k: number): { x: Float32Array; y: Int32Array } {
  const r = rand(1000 + k);
  return { x: Float32Array.from({ length: B * K }, () => r() * 2 - 1), y: Int32Array.from({ length: B }, () => Math.floor(r() * C)) };
}

