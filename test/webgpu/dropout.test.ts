/**
 * dropout: the CPU semantics against their definition (kept fraction 1 − p within 4 standard errors, kept values
 * scaled by 1/(1 − p) exactly, a new mask every step, the gradient uses the forward's mask), the WebGPU kernel bit
 * for bit against the CPU interpreter, and the DSL (identity in evaluation, VGG16's classifier).
 */
import { Builder, emptyGraph } from '../../ir/graph.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { autodiff } from '../../passes/autodiff.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { Gpu, getGpu } from '../../runtime/webgpu/device.js';
import { runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom } from '../unit/helpers.js';

let gpu: Gpu;
beforeAll(async () => { gpu = await getGpu({ quiet: true }); });
const rand = seededRandom(1234);

function graph(n: number, p: number, key = 0) {
  const g = emptyGraph('t'), b = new Builder(g);
  const x = b.add('input', [], { name: 'x', kind: 'data', shape: [n], dtype: 'f32' });
  const d = b.add('dropout', [x], { p, key });
  return { g, x, d };
}

test('CPU: P(keep) = 1 − p, kept values × 1/(1 − p), a fresh mask each step and each key', () => {
  const n = 20000, p = 0.3;
  const { g, d } = graph(n, p);
  const x = Float32Array.from({ length: n }, () => 0.5 + rand());
  const a = runGraph(g, { x }, new Map(), { seed: 7, step: 3 }).values[d];
  const kept = [...a].filter((v) => v !== 0).length;
  expect(Math.abs(kept / n - (1 - p))).toBeLessThan(4 * Math.sqrt(p * (1 - p) / n));
  a.forEach((v, i) => { if (v !== 0) expect(v).toBe(Math.fround(x[i] * Math.fround(1 / (1 - p)))); });
  const b = runGraph(g, { x }, new Map(), { seed: 7, step: 4 }).values[d];
  expect([...b]).not.toEqual([...a]);
  const k1 = runGraph(graph(n, p, 1).g, { x }, new Map(), { seed: 7, step: 3 }).values[d];
  expect([...k1]).not.toEqual([...a]);
});

test('the gradient drops the same elements as the forward', () => {
  const n = 64;
  const g = emptyGraph('train'), b = new Builder(g);
  const x = b.add('state', [], { name: 'w', kind: 'param', shape: [1, n], init: 'zeros' });
  const d = b.add('dropout', [x], { p: 0.5, key: 2 });
  const y = b.add('input', [], { name: 'y', kind: 'label', shape: [1], dtype: 'i32' });
  g.outputs.push({ name: 'loss', node: b.add('softmax_xent', [d, y]) });
  const m = autodiff({ version: 1, name: 't', graphs: [g] });
  const tg = m.graphs[0];
  const w = Float32Array.from({ length: n }, () => rand());
  const r = runGraph(tg, { y: [3] }, new Map([['w', w]]), { seed: 1, step: 9 });
  const fwd = r.values[d], grad = r.outputs[tg.outputs.find((o) => o.name !== 'loss')!.name];
  // w > 0 everywhere, so the forward is zero exactly where dropped; the softmax gradient is non-zero elsewhere
  for (let i = 0; i < n; i++) expect([i, grad[i] === 0]).toEqual([i, fwd[i] === 0]);
  const zeros = [...fwd].map((v, i) => (v === 0 ? i : -1)).filter((i) => i >= 0);
  expect(zeros.length).toBeGreaterThan(10);
  for (const i of zeros) expect(grad[i]).toBe(0);
});

test('WebGPU = CPU bit for bit (odd length, two steps)', async () => {
  const n = 1237;
  const { g, x, d } = graph(n, 0.5, 3);
  const data = Float32Array.from({ length: n }, () => rand() * 4 - 2);
  for (const step of [0, 5]) {
    const { values } = await runKernels(gpu.device, g, { feeds: new Map([[x, data]]), run: [d], read: [d], step: { seed: 11, step } });
    const want = runGraph(g, { x: data }, new Map(), { seed: 11, step }).values[d];
    expect([...(values.get(d) as Float32Array)]).toEqual([...want]);
  }
});

test('DSL: VGG16 drops before its two hidden linears in training, nothing in evaluation', () => {
  const m = runPasses(frontEnd('models/vgg16.ts', 2), { batch: 2, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 } });
  const count = (name: string) => m.graphs.find((g) => g.name === name)!.nodes.filter((n) => n.op === 'dropout').length;
  expect(count('train')).toBe(4); // two in forward, their two gradients
  expect(count('eval')).toBe(0);
});
