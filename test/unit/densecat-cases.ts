/**
 * The concat-view tests' small DenseNets and their PyTorch references (test/fixtures/densecat/torch_grads.json,
 * written by make_torch_grads.py beside it): the fused training graph of each, without the optimizer, so every
 * parameter's gradient is an output (`grad:<name>`). Shared by test/unit/channel-views.test.ts (CPU) and
 * test/webgpu/channel-views.test.ts.
 */
import * as fs from 'node:fs';
import { frontEnd } from '../../dsl/frontend.js';
import { Module } from '../../ir/graph.js';
import { PASSES } from '../../passes/pipeline.js';
import { initState } from '../../runtime/train/init.js';

export interface TorchCase {
  file: string; input: number[]; x: number[]; y: number[]; loss: number;
  params: Record<string, { shape: number[]; data: number[] }>; grads: Record<string, number[]>;
}
export const TORCH: { torch: string; cases: TorchCase[] } = JSON.parse(fs.readFileSync('test/fixtures/densecat/torch_grads.json', 'utf8'));

/** The model traced at batch 2 and run through every pass but the optimizer's (so gradients stay outputs). */
export function gradientModule(c: TorchCase): Module {
  let m = frontEnd(c.file, 2, { input: c.input });
  const opts = { batch: 2, optimizer: { kind: 'sgd' as const, lr: 0, momentum: 0, wd: 0 } };
  for (const p of PASSES) if (p.name !== 'optimizer') m = p.run(m, opts);
  return m;
}

/** The fixture's parameters over lpc's initial state (BN running statistics stay as initialised). */
export function caseState(m: Module, c: TorchCase): Map<string, Float32Array> {
  const s = initState(m, 0);
  for (const [name, p] of Object.entries(c.params)) {
    if (!s.has(name)) throw new Error(`${c.file}: lpc has no parameter '${name}'`);
    s.set(name, Float32Array.from(p.data));
  }
  return s;
}

export const caseFeeds = (c: TorchCase) => ({ x: Float32Array.from(c.x), y: Int32Array.from(c.y) });
