/**
 * lpc vs tfjs-backend-webgpu on one model, side by side in one process on one Dawn device: the same initial
 * weights (runtime/train/init.ts) and the same batches; the losses must agree before anything is timed.
 */
import { Module, getGraph } from '../ir/graph.js';
import { loadDataset, epochBatches } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { WebGpuBackend } from '../runtime/webgpu/executor.js';
import type { Gpu } from '../runtime/webgpu/device.js';
import type { SgdOptions } from '../passes/optimizer.js';
import { useTfjsWebGpu, TfjsPeer, lossAgreement, PEER_LOSS_RTOL, PeerBatch } from './tfjs-peer.js';

export interface TfjsComparison {
  /** Largest relative loss difference over the agreement steps (step 1: same weights, same batch). */
  maxRelDiff: number;
  agree: boolean;
  lpcMs: number;
  tfjsMs: number;
  /** tfjs step time / lpc step time; null when the losses disagree (no ratio is reported then). */
  speedup: number | null;
}

export interface CompareOptions {
  sgd: SgdOptions;
  /** Timed steps per framework, split over `rounds` alternating rounds. */
  steps: number;
  rounds?: number;
  /** Untimed steps per framework after the agreement check (first-use JIT). */
  warmup?: number;
  /** Steps compared for loss agreement (also warm-up). */
  agreeSteps?: number;
  log?: (s: string) => void;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** MNIST for 1×28×28 models, seeded synthetic data of the model's sample shape otherwise (CIFAR needs a download). */
function batchesFor(m: Module, count: number): PeerBatch[] {
  const x = getGraph(m, 'train').nodes.find((n) => n.op === 'input' && n.attrs.name === 'x')!;
  const [batch, ...sample] = x.type.shape;
  const mnist = sample.join() === '1,28,28';
  const data = loadDataset(mnist ? 'mnist' : 'synthetic', { sampleShape: sample, seed: 0 });
  const bs = epochBatches(data.train, batch, 0, 1);
  return Array.from({ length: count }, (_, i) => bs.get(i % bs.length));
}

export async function compareWithTfjs(gpu: Gpu, m: Module, o: CompareOptions): Promise<TfjsComparison> {
  const rounds = o.rounds ?? 3, perRound = Math.max(1, Math.ceil(o.steps / rounds));
  const warmup = o.warmup ?? 2, agreeSteps = o.agreeSteps ?? 2;
  const log = o.log ?? (() => {});
  const state = initState(m, 0);
  const lpc = new WebGpuBackend(gpu, m);
  await lpc.setState(state);
  await useTfjsWebGpu(gpu);
  const peer = TfjsPeer.create(m, state, o.sgd);
  try {
    const batches = batchesFor(m, Math.max(8, agreeSteps));
    const agreement = await lossAgreement(lpc, peer, batches.slice(0, agreeSteps), o.sgd.lr);
    const agree = agreement.maxRelDiff <= PEER_LOSS_RTOL;
    log(`${m.name}: loss lpc ${agreement.lpc.map((l) => l.toFixed(6)).join(' ')} | tfjs ${agreement.tfjs.map((l) => l.toFixed(6)).join(' ')}` +
      ` | max rel diff ${agreement.maxRelDiff.toExponential(2)} (bar ${PEER_LOSS_RTOL})`);
    if (!agree) return { maxRelDiff: agreement.maxRelDiff, agree, lpcMs: NaN, tfjsMs: NaN, speedup: null };

    const prepared = batches.map((b) => peer.prepare(b));
    const lrBuf = Float32Array.of(o.sgd.lr);
    let step = agreeSteps, k = 0;
    const lpcStep = async () => {
      const b = batches[k++ % batches.length];
      const t0 = performance.now();
      await lpc.run('train', { x: b.x, y: b.y, lr: lrBuf }, { seed: 0, step: step++ }, ['loss']);
      return performance.now() - t0;
    };
    let j = 0;
    const tfjsStep = async () => {
      const b = prepared[j++ % prepared.length];
      const t0 = performance.now();
      await peer.step(b, o.sgd.lr); // resolves once the loss is read back, i.e. the step has run
      return performance.now() - t0;
    };
    for (let i = 0; i < warmup; i++) { await lpcStep(); await tfjsStep(); }
    const lpcTimes: number[] = [], tfjsTimes: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // alternate which goes first, so drift within a round hits both alike
      const order = r % 2 ? [[tfjsStep, tfjsTimes], [lpcStep, lpcTimes]] as const : [[lpcStep, lpcTimes], [tfjsStep, tfjsTimes]] as const;
      for (const [run, times] of order) for (let i = 0; i < perRound; i++) times.push(await run());
    }
    const lpcMs = median(lpcTimes), tfjsMs = median(tfjsTimes);
    return { maxRelDiff: agreement.maxRelDiff, agree, lpcMs, tfjsMs, speedup: tfjsMs / lpcMs };
  } finally {
    peer.dispose();
    await lpc.dispose();
  }
}
