/**
 * bench/pytorch-common.ts, shared by the PyTorch comparisons: the exported initial weights read back equal lpc's
 * initial state parameter by parameter at the offsets meta.json gives; the orders equal the training loop's; the
 * step-agreement count and the seed list.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { epochOrder } from '../../runtime/data/batches.js';
import { initState } from '../../runtime/train/init.js';
import { Exchange, agreeingSteps, seedList } from '../../bench/pytorch-common.js';

test('Exchange: init_<seed>.f32 holds initState per parameter at meta.json\'s offsets; order_<seed>.u32 the epochs\' orders', () => {
  const m = runPasses(frontEnd('test/fixtures/tiny_lm.ts', 2, { input: [8] }), { batch: 2, optimizer: { kind: 'adamw', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, wd: 0.01 }, log: () => {} });
  const ex = new Exchange();
  const layout = ex.writeInit(m, [0, 3], { heads: 2 });
  const meta = JSON.parse(fs.readFileSync(path.join(ex.dir, 'meta.json'), 'utf8'));
  expect(meta.heads).toBe(2);
  expect(meta.params).toEqual(layout);
  expect(layout.map((p) => p.name)).toContain('h1.attn0.q.weight');
  for (const seed of [0, 3]) {
    const b = fs.readFileSync(path.join(ex.dir, `init_${seed}.f32`));
    const flat = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    const st = initState(m, seed);
    expect(flat.length).toBe(layout.at(-1)!.offset + layout.at(-1)!.size);
    for (const p of layout) expect(Array.from(flat.subarray(p.offset, p.offset + p.size))).toEqual(Array.from(st.get(p.name)!));
  }
  ex.writeOrders(10, [5], 2);
  const b = fs.readFileSync(path.join(ex.dir, 'order_5.u32'));
  const o = new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  expect(Array.from(o)).toEqual([...epochOrder(10, 5, 1), ...epochOrder(10, 5, 2)]);
  fs.rmSync(ex.dir, { recursive: true, force: true });  // under jest the process outlives the test
});

test('agreeingSteps counts the leading steps within the tolerance; seedList', () => {
  expect(agreeingSteps([1, 2, 3], [1, 2.00001, 3.1], 1e-4)).toBe(2);
  expect(agreeingSteps([1, 2], [1, 2], 1e-4)).toBe(2);
  expect(agreeingSteps([NaN, 2], [1, 2], 1e-4)).toBe(0);
  expect(seedList([0, 1, 2])).toBe('0–2');
  expect(seedList([0, 5])).toBe('0, 5');
});
