/**
 * The tfjs peer that `npm run bench` times lpc against: on the same weights and batches, lpc and
 * tfjs-backend-webgpu (on lpc's Dawn device) give the same losses (≤ 1e-4 relative, fp32) and end with the same
 * parameters — for LeNet-5 and for a small residual net with batch norm (stride-2 conv, 1×1 shortcut, add,
 * average pooling, BN on a 2-D value), and for the zoo's ops the MobileNetV2/DenseNet comparison needs (depthwise
 * conv2d, relu6 folded into BN, concat, dropout with lpc's masks). Skips where there is no adapter (gpuForTests throws
 * under CI).
 */
import { traceModel } from '../../dsl/frontend.js';
import { frontEnd } from '../../dsl/frontend.js';
import { model, input, conv2d, batchNorm, relu, relu6, add, avgPool, maxPool, flatten, linear, concat, dropout, globalAvgPool } from '../../dsl/index.js';
import { runPasses } from '../../passes/pipeline.js';
import { Module } from '../../ir/graph.js';
import { loadDataset, epochBatches } from '../../runtime/data/index.js';
import { initState } from '../../runtime/train/init.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { gpuForTests, Gpu, shutdownGpu } from '../../runtime/webgpu/device.js';
import { useTfjsWebGpu, TfjsPeer, lossAgreement, PEER_LOSS_RTOL, PeerBatch, tf } from '../../bench/tfjs-peer.js';

const gpu: Gpu | null = await gpuForTests();
const gpuTest = gpu ? test : test.skip;
if (!gpu) console.warn('no WebGPU adapter: skipping test/webgpu/tfjs-peer.test.ts (run ./setup.sh)');

afterAll(async () => { await shutdownGpu(); });

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };

const tinyResnet = model('tiny_resnet', () => {
  const x = input([3, 8, 8]);
  let h = relu(batchNorm(conv2d(x, { out: 8, kernel: 3, pad: 1, bias: false })));
  const y = batchNorm(conv2d(relu(batchNorm(conv2d(h, { out: 16, kernel: 3, stride: 2, pad: 1, bias: false }))),
    { out: 16, kernel: 3, pad: 1, bias: false }));
  h = relu(add(y, batchNorm(conv2d(h, { out: 16, kernel: 1, stride: 2, bias: false }))));
  h = maxPool(avgPool(h, 2), 2);
  return linear(relu(batchNorm(linear(flatten(h), 12))), 10);
});

/** MobileNetV2's and DenseNet's ops: depthwise convs (stride 1 and 2), ReLU6, a channel concat, dropout. */
const tinyZoo = model('tiny_zoo', () => {
  const x = input([3, 8, 8]);
  const h = relu6(batchNorm(conv2d(x, { out: 8, kernel: 3, pad: 1, bias: false })));
  const d = relu6(batchNorm(conv2d(h, { out: 8, kernel: 3, pad: 1, groups: 8, bias: false })));
  let y = relu(batchNorm(conv2d(concat([h, d]), { out: 12, kernel: 1, bias: false })));
  y = batchNorm(conv2d(y, { out: 12, kernel: 3, stride: 2, pad: 1, groups: 12, bias: false }));
  return linear(dropout(flatten(globalAvgPool(relu6(y))), 0.25), 10);
});

async function agree(m: Module, data: ReturnType<typeof loadDataset>, batch: number, steps: number) {
  const state = initState(m, 0);
  const b = new WebGpuBackend(gpu!, m);
  await b.setState(state);
  await useTfjsWebGpu(gpu!);
  const peer = TfjsPeer.create(m, state, sgd);
  try {
    // the peer's parameters are lpc's, moved into tfjs layouts and back exactly
    const start = await peer.getState();
    for (const [name, v] of start) expect(Array.from(v)).toEqual(Array.from(state.get(name) ?? v));
    const bs = epochBatches(data.train, batch, 0, 1);
    const a = await lossAgreement(b, peer, Array.from({ length: steps }, (_, i) => bs.get(i) as PeerBatch), sgd.lr);
    expect(a.maxRelDiff).toBeLessThanOrEqual(PEER_LOSS_RTOL);
    // after the steps every parameter, BN running statistic and momentum buffer still match
    const lpcState = await b.getState(), tfState = await peer.getState();
    for (const [name, v] of tfState) {
      const w = lpcState.get(name)!;
      let scale = 0, diff = 0;
      for (let i = 0; i < v.length; i++) { scale = Math.max(scale, Math.abs(w[i])); diff = Math.max(diff, Math.abs(v[i] - w[i])); }
      // (a bias gradient is a long sum that nearly cancels: the two frameworks' f32 summation orders differ by a few
      // 1e-6 in absolute terms there, hence the absolute floor)
      const tol = 1e-3 * scale + 1e-5;
      if (diff > tol) console.log(name, diff, scale);
      expect({ name, close: diff <= tol }).toEqual({ name, close: true });
    }
    return a;
  } finally {
    peer.dispose();
    await b.dispose();
  }
}

describe('tfjs peer', () => {
  gpuTest('LeNet-5: tfjs-webgpu and lpc agree on the loss and the trained weights', async () => {
    const batch = 8;
    const m = runPasses(frontEnd('models/lenet5.ts', batch), { batch, optimizer: sgd });
    const data = loadDataset('mnist', { sampleShape: [1, 28, 28], seed: 0 });
    const before = tf.memory().numTensors;
    const a = await agree(m, data, batch, 3);
    expect(tf.memory().numTensors).toBe(before); // the peer leaks no tensors
    console.log(`LeNet-5 losses lpc ${a.lpc.map((l) => l.toFixed(6))} tfjs ${a.tfjs.map((l) => l.toFixed(6))}`);
  });

  gpuTest('a residual net with batch norm: same losses, weights, running statistics', async () => {
    const batch = 4;
    const m = runPasses(traceModel(tinyResnet, batch), { batch, optimizer: sgd });
    const data = loadDataset('synthetic', { sampleShape: [3, 8, 8], seed: 0 });
    await agree(m, data, batch, 3);
  });

  gpuTest('the zoo ops (depthwise conv, relu6, concat, dropout): same losses, weights, running statistics', async () => {
    const batch = 8;
    const m = runPasses(traceModel(tinyZoo, batch), { batch, optimizer: sgd });
    expect(m.graphs[0].nodes.filter((n) => n.op === 'conv2d' && n.attrs.groups !== undefined)).toHaveLength(2);
    const data = loadDataset('synthetic', { sampleShape: [3, 8, 8], seed: 0 });
    await agree(m, data, batch, 3);
  });

  gpuTest('refuses a quantized module', async () => {
    const batch = 4;
    const m = runPasses(frontEnd('models/lenet5.ts', batch), {
      batch, optimizer: sgd, precision: (await import('../../ir/precision/index.js')).parsePolicy('A=e5m2'),
    });
    await useTfjsWebGpu(gpu!);
    expect(() => TfjsPeer.create(m, initState(m, 0), sgd)).toThrow(/fp32 only/);
  });
});
