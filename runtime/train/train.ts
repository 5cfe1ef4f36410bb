/**
 * The training loop: per epoch, seeded shuffled batches through the `train` graph (one command buffer and one
 * loss readback per step), then the whole test set through `eval` (the last batch padded with label −1).
 */
import * as fs from 'node:fs';
import { Backend } from '../backend.js';
import { Progress } from './progress.js';
import type { Dataset } from '../data/types.js';
import { epochBatches, evalBatches } from '../data/batches.js';

export interface TrainOptions {
  epochs: number;
  batch: number;
  seed: number;
  /** Learning rate for a step (schedules plug in here). */
  lr: (epoch: number, step: number, stepsPerEpoch: number) => number;
  /** Stop each epoch after this many steps (quick runs, tests, benchmarks). */
  maxSteps?: number;
  metricsPath?: string;
  progress?: Progress;
  /** Called with every step's loss (tests compare loss curves across backends). */
  onStep?: (globalStep: number, loss: number) => void;
}

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  test_loss: number;
  test_accuracy: number;
  lr: number;
  steps: number;
  seconds: number;
  images_per_sec: number;
}

export async function evaluate(b: Backend, data: Dataset, batch: number): Promise<{ loss: number; accuracy: number }> {
  let loss = 0, correct = 0;
  for (const { x, y, valid } of evalBatches(data, batch)) {
    const o = await b.run('eval', { x, y }, { seed: 0, step: 0 }, ['loss', 'correct']);
    loss += o.loss[0] * valid;
    correct += o.correct[0];
  }
  return { loss: loss / data.n, accuracy: correct / data.n };
}

export async function train(b: Backend, data: { train: Dataset; test: Dataset }, o: TrainOptions): Promise<EpochMetrics[]> {
  const progress = o.progress ?? new Progress();
  if (o.metricsPath) fs.writeFileSync(o.metricsPath, '');
  const history: EpochMetrics[] = [];
  const lrBuf = new Float32Array(1);
  let globalStep = 0;
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const batches = epochBatches(data.train, o.batch, o.seed, epoch);
    const steps = Math.min(batches.length, o.maxSteps ?? Infinity);
    const t0 = performance.now();
    let sum = 0;
    for (let s = 0; s < steps; s++) {
      const { x, y } = batches.get(s);
      lrBuf[0] = o.lr(epoch, s, steps);
      const out = await b.run('train', { x, y, lr: lrBuf }, { seed: o.seed, step: globalStep }, ['loss']);
      const loss = out.loss[0];
      if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch}, step ${s + 1}`);
      o.onStep?.(globalStep, loss);
      globalStep++;
      sum += loss;
      const secs = (performance.now() - t0) / 1000;
      progress.update(epoch, o.epochs, s + 1, steps, sum / (s + 1), ((s + 1) * o.batch) / secs);
    }
    const seconds = (performance.now() - t0) / 1000;
    const ev = await evaluate(b, data.test, o.batch);
    const m: EpochMetrics = {
      epoch, train_loss: sum / steps, test_loss: ev.loss, test_accuracy: ev.accuracy, lr: o.lr(epoch, 0, steps),
      steps, seconds, images_per_sec: (steps * o.batch) / seconds,
    };
    history.push(m);
    progress.line(`epoch ${epoch}/${o.epochs}: train loss ${m.train_loss.toFixed(4)}  test loss ${m.test_loss.toFixed(4)}  ` +
      `test accuracy ${(100 * m.test_accuracy).toFixed(2)}%  (${seconds.toFixed(1)} s, ${m.images_per_sec.toFixed(0)} img/s)`);
    if (o.metricsPath) fs.appendFileSync(o.metricsPath, JSON.stringify(m) + '\n');
  }
  return history;
}
