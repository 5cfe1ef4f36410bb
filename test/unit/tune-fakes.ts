/** Shared by the tuner's device-free tests (tune-budget, cost-model, tune-prune): a fake CPU-driver adapter and modules of convolutions. */
import { Builder, emptyGraph, Module } from '../../ir/graph.js';
import type { Gpu } from '../../runtime/webgpu/device.js';

export const fakeGpu = { adapterDescription: 'fake | cpu | test adapter', isCpuDriver: true, limits: { maxStorageBufferBindingSize: 2 ** 30 } } as unknown as Gpu;

/** 3×3 convolutions of growing channel counts on hw×hw maps, each its own shape class, the last the most FLOPs. */
export function convs(sizes: number[], hw: number): Module {
  const g = emptyGraph('train'), b = new Builder(g);
  for (const [i, c] of sizes.entries()) {
    const x = b.add('input', [], { name: `x${i}`, kind: 'data', shape: [2, c, hw, hw], dtype: 'f32' });
    const w = b.add('input', [], { name: `w${i}`, kind: 'data', shape: [c, c, 3, 3], dtype: 'f32' });
    b.add('conv2d', [x, w], { stride: 1, pad: 1 });
  }
  return { version: 1, name: 'convs', graphs: [g] };
}
