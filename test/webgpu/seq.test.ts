/**
 * The sequence ops' WGSL kernels (codegen/kernels/sequence.ts): every op case's training graph and one pre-LN
 * Transformer block and an LSTM LM run on WebGPU, against PyTorch (test/fixtures/seq/torch-grads.json) within 1e-4 and against the
 * CPU interpreter within 1e-5 (max-norm relative); GELU, tanh and sigmoid element by element within 1e-5 relative
 * of the CPU spec over a wide range; the embedding gradient bit for bit equal to the CPU's, on two runs; five Adam
 * steps of the block LM through every pass against torch.optim.Adam.
 */
import { useGpu } from './gpu-fixture.js'; // first: opening Dawn defines the WebGPU globals run-kernels uses
import { Graph } from '../../ir/graph.js';
import { Builder, emptyGraph } from '../../ir/graph.js';
import { getOp } from '../../ir/ops/index.js';
import { erfc } from '../../ir/ops/activation.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seeded, relErr } from '../unit/helpers.js';
import { TORCH, adamModule, adamSteps, expectAdamRun, modelGraph, opCaseGraph } from '../unit/seq-cases.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { getGpu } from '../../runtime/webgpu/device.js';

const gpu = useGpu();

/** Runs the whole graph on WebGPU: inputs and state fed by name; returns the named outputs. */
async function gpuOutputs(g: Graph, feeds: Record<string, ArrayLike<number>>, state: Map<string, ArrayLike<number>>): Promise<Record<string, Float32Array>> {
  const host = new Map<number, HostArray>();
  for (const n of g.nodes) {
    const name = n.attrs.name as string;
    if (n.op === 'input') host.set(n.id, n.type.dtype === 'i32' ? Int32Array.from(feeds[name]) : Float32Array.from(feeds[name]));
    if (n.op === 'state') host.set(n.id, Float32Array.from(state.get(name)!));
  }
  const run = g.nodes.filter((n) => n.op !== 'input' && n.op !== 'state').map((n) => n.id);
  const read = [...new Set(g.outputs.map((o) => o.node))];
  const { values } = await runKernels(gpu.device, g, { feeds: host, run, read, pipelines: gpu.cache });
  return Object.fromEntries(g.outputs.map((o) => [o.name, values.get(o.node) as Float32Array]));
}

describe('sequence ops on WebGPU vs PyTorch and the CPU interpreter', () => {
  for (const c of TORCH.ops) {
    test(c.name, async () => {
      const { g, feeds, state } = opCaseGraph(c);
      const got = await gpuOutputs(g, feeds, state);
      const cpu = runGraph(g, feeds, state, { precision: 'f64' }).outputs;
      expect(relErr(got.out, c.out)).toBeLessThan(1e-5);
      for (const [name, ref] of Object.entries(c.grads)) {
        expect(relErr(got[`grad:${name}`], ref)).toBeLessThan(1e-4);
        expect(relErr(got[`grad:${name}`], cpu[`grad:${name}`])).toBeLessThan(1e-5);
      }
    });
  }

  test.each([['one pre-LN Transformer block', 'block'], ['an LSTM language model', 'lstm'],
    ['the block with its head tied to the token embedding', 'tied']] as const)('%s: loss and every parameter gradient', async (_, which) => {
    const { g, feeds, state } = modelGraph(which);
    const got = await gpuOutputs(g, feeds, state);
    const cpu = runGraph(g, feeds, state, { precision: 'f64' }).outputs;
    const bc = TORCH[which];
    expect(Math.abs(got.loss[0] - bc.loss) / bc.loss).toBeLessThan(1e-5);
    const scale = Math.max(...Object.values(bc.grads).flatMap((v) => v.map(Math.abs)));
    for (const [name, ref] of Object.entries(bc.grads)) {
      const v = got[`grad:${name}`];
      // the key bias's gradient is 0 in exact arithmetic (see test/unit/seq-grads.test.ts)
      const zero = Math.max(...ref.map(Math.abs)) < 1e-9 * scale;
      const ok = zero ? Math.max(...Array.from(v, Math.abs)) < 1e-6 * scale
        : relErr(v, ref) < 1e-4 && relErr(v, cpu[`grad:${name}`]) < 1e-5;
      expect([name, ok]).toEqual([name, true]);
    }
  });
});

test('the embedding gradient: the same bits on two WebGPU runs and on the CPU interpreter (f32)', async () => {
  // many tokens on a few ids, so every sum is long and its order matters
  const N = 600, V = 7, D = 5, r = seeded(29);
  const ids = Int32Array.from({ length: N }, () => Math.floor(r() * V) % V);
  const dy = Float32Array.from({ length: N * D }, () => (r() * 2 - 1) * 10 ** Math.floor(r() * 6 - 3));
  const g = emptyGraph('t');
  const b = new Builder(g);
  const dyId = b.add('input', [], { name: 'dy', kind: 'data', shape: [N, D], dtype: 'f32' });
  const idsId = b.add('input', [], { name: 'ids', kind: 'data', shape: [N], dtype: 'i32' });
  const id = b.add('embedding_bwd', [dyId, idsId], { vocab: V });
  const feeds = new Map<number, HostArray>([[dyId, dy], [idsId, ids]]);
  const run = async () => (await runKernels(gpu.device, g, { feeds, run: [id], read: [id], pipelines: gpu.cache })).values.get(id) as Float32Array;
  const a = await run(), c = await run();
  const cpu = runGraph(g, { dy, ids }, new Map(), { precision: 'f32' }).values[id] as Float32Array;
  const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
  expect(bits(a)).toEqual(bits(c));
  expect(bits(a)).toEqual(bits(cpu));
  // the f32 sum in token order differs from the float64 sum: the test sees the order
  const f64 = runGraph(g, { dy, ids }, new Map(), { precision: 'f64' }).values[id];
  expect(Array.from(a).some((v, k) => v !== Math.fround(f64[k]))).toBe(true);
});

test('gelu, gelu_bwd, tanh, sigmoid element by element within 1e-5 relative of the CPU spec on [−12, 12]', async () => {
  const n = 4801, xs = Float32Array.from({ length: n }, (_, i) => -12 + (24 * i) / (n - 1));
  const dy = Float32Array.from({ length: n }, (_, i) => 1 + (i % 7) / 8);
  for (const op of ['gelu', 'gelu_bwd', 'tanh', 'sigmoid']) {
    const g = emptyGraph('t');
    const b = new Builder(g);
    const ins = op === 'gelu_bwd' ? [dy, xs] : [xs];
    const ids = ins.map((_, i) => b.add('input', [], { name: `x${i}`, kind: 'data', shape: [n], dtype: 'f32' }));
    const id = b.add(op, ids, {});
    const { values } = await runKernels(gpu.device, g, { feeds: new Map(ids.map((k, i) => [k, ins[i]])), run: [id], read: [id], pipelines: gpu.cache });
    const got = values.get(id) as Float32Array, ref = new Float64Array(n);
    getOp(op).cpu(ins.map((v) => Float64Array.from(v)), ref, { attrs: {}, epi: undefined, inTypes: ins.map(() => g.nodes[0].type), type: g.nodes[id].type, rng: { seed: 0, step: 0, tensorId: id } });
    let worst = 0, at = 0;
    for (let i = 0; i < n; i++) {
      const r = Math.fround(ref[i]);
      // values below f32's normal range (GELU of x < −13) may be flushed by the device
      if (Math.abs(r) < 1e-30) continue;
      // GELU′ = Φ(x) + x·φ(x) cancels to 0 near x = −0.75: there the error is held to the terms' magnitude
      const mag = op === 'gelu_bwd' ? dy[i] * (0.5 * erfc(-xs[i] * Math.SQRT1_2) + Math.abs(xs[i]) * Math.exp(-0.5 * xs[i] * xs[i]) / Math.sqrt(2 * Math.PI)) : Math.abs(r);
      const e = Math.abs(got[i] - r) / mag;
      if (e > worst) [worst, at] = [e, xs[i]];
    }
    expect([op, worst < 1e-5 ? 'ok' : `${worst} at x = ${at}`]).toEqual([op, 'ok']);
  }
});

test('five Adam steps of the Transformer block LM (every pass, fused) follow torch.optim.Adam on WebGPU', async () => {
  const m = adamModule();
  const b = new WebGpuBackend(await getGpu({ quiet: true }), m);
  const { losses, state } = await adamSteps(b, m);
  await b.dispose();
  expectAdamRun(losses, state);
});
