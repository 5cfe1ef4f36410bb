/**
 * lpc vs tfjs-backend-webgpu on one model, side by side in one process on one Dawn device: the same initial
 * weights (runtime/train/init.ts) and the same batches; the losses must agree before anything is timed.
 */
import { Module, getGraph } from '../ir/graph.js';
import { loadDataset, epochBatches } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { tunedWebGpuBackend } from '../runtime/cli/backends.js';
import type { Gpu } from '../runtime/webgpu/device.js';
import type { Backend } from '../runtime/backend.js';
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
export function batchesFor(m: Module, count: number): PeerBatch[] {
  const x = getGraph(m, 'train').nodes.find((n) => n.op === 'input' && n.attrs.name === 'x')!;
  const [batch, ...sample] = x.type.shape;
  const mnist = sample.join() === '1,28,28';
  const data = loadDataset(mnist ? 'mnist' : 'synthetic', { sampleShape: sample, seed: 0 });
  const bs = epochBatches(data.train, batch, 0, 1);
  return Array.from({ length: count }, (_, i) => bs.get(i % bs.length) as PeerBatch); // image sets: x is f32
}

/** A timed lpc training step (upload, one command buffer, loss readback — as the training loop runs it), cycling
 *  through `batches`. */
export function lpcStepper(b: Backend, batches: PeerBatch[], lr: number, firstStep = 0): () => Promise<number> {
  const lrBuf = Float32Array.of(lr);
  let step = firstStep;
  return async () => {
    const { x, y } = batches[step % batches.length];
    const t0 = performance.now();
    await b.run('train', { x, y, lr: lrBuf }, { seed: 0, step: step++ }, ['loss']);
    return performance.now() - t0;
  };
}

/** `warmup` untimed steps of each runner, then `rounds` rounds of `perRound` timed steps each, rotating which runner
 *  goes first so drift hits all alike. Every runner's times (ms). */
export async function alternateTimes(runs: (() => Promise<number>)[], rounds: number, perRound: number, warmup = 0): Promise<number[][]> {
  for (let i = 0; i < warmup; i++) for (const r of runs) await r();
  const times: number[][] = runs.map(() => []);
  for (let r = 0; r < rounds; r++)
    for (let k = 0; k < runs.length; k++) {
      const i = (k + r) % runs.length;
      for (let s = 0; s < perRound; s++) times[i].push(await runs[i]());
    }
  return times;
}

/** alternateTimes' median ms per runner. */
export async function alternate(runs: (() => Promise<number>)[], rounds: number, perRound: number, warmup = 0): Promise<number[]> {
  return (await alternateTimes(runs, rounds, perRound, warmup)).map(median);
}

export async function compareWithTfjs(gpu: Gpu, m: Module, o: CompareOptions): Promise<TfjsComparison> {
  const rounds = o.rounds ?? 3, perRound = Math.max(1, Math.ceil(o.steps / rounds));
  const warmup = o.warmup ?? 2, agreeSteps = o.agreeSteps ?? 2;
  const log = o.log ?? (() => {});
  const state = initState(m, 0);
  const lpc = await tunedWebGpuBackend(gpu, m);
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
    let j = 0;
    const tfjsStep = async () => {
      const b = prepared[j++ % prepared.length];
      const t0 = performance.now();
      await peer.step(b, o.sgd.lr); // resolves once the loss is read back, i.e. the step has run
      return performance.now() - t0;
    };
    const [lpcMs, tfjsMs] = await alternate([lpcStepper(lpc, batches, o.sgd.lr, agreeSteps), tfjsStep], rounds, perRound, warmup);
    return { maxRelDiff: agreement.maxRelDiff, agree, lpcMs, tfjsMs, speedup: tfjsMs / lpcMs };
  } finally {
    peer.dispose();
    await lpc.dispose();
  }
}
