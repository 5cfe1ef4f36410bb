/**
 * The training loop: per epoch, seeded shuffled batches through the `train` graph (one command buffer and one
 * loss readback per step), then the whole test set through `eval` (the last batch padded with label −1).
 *
 * With `swa` (SWALP): after every epoch ≥ swa.start the `swa_average` graph folds the current (low-precision)
 * weights into the fp32 average on the device (no readback); the SWA model's BN statistics are then re-estimated
 * over the training batches by `swa_bn` (bn_momentum = b/(n+b): an exact cumulative average, SWALP's bn_update) and
 * the SWA model is evaluated by `swa_eval`. Those graphs read and write only swa.* state and draw no random bits, so
 * the SGD run is exactly the run without SWA.
 *
 * Checkpoints (`checkpoint`) are taken after a step (every N steps) or after an epoch's end-of-epoch work; `resume`
 * continues from such a position bit for bit: the state is restored exactly, shuffling is keyed by (seed, epoch) and
 * stochastic rounding by (seed, global step), and the lr is a function of (epoch, global step).
 */
import * as fs from 'node:fs';
import { Backend } from '../backend.js';
import { Progress } from './progress.js';
import type { Dataset } from '../data/types.js';
import { epochBatches, evalBatches } from '../data/batches.js';
import type { Position } from '../checkpoint.js';
import type { StepBits } from '../../ir/quant/rng.js';
import { Module, getGraph } from '../../ir/graph.js';
import type { StepInfo } from '../backend.js';
import { DivergenceError, StepRecord, diagnose, diagnoseEval, nonFiniteState, stepRecord } from './numerics.js';
import { quantStats } from './quant-stats.js';

export type { Position } from '../checkpoint.js';

export interface TrainOptions {
  epochs: number;
  batch: number;
  seed: number;
  /** Learning rate of a step: epoch is 1-based, step the step within the epoch, globalStep counts from 0. */
  lr: (epoch: number, step: number, stepsPerEpoch: number, globalStep: number) => number;
  /** Stop each epoch after this many steps (quick runs, tests, benchmarks). */
  maxSteps?: number;
  metricsPath?: string;
  /** Append to the metrics file instead of starting it afresh (resume). */
  metricsAppend?: boolean;
  /** Also write a per-step record {step, epoch, loss, lr} every this many steps. */
  metricsSteps?: number;
  progress?: Progress;
  /** Called with every step's loss (tests compare loss curves across backends). */
  onStep?: (globalStep: number, loss: number) => void;
  /** SWALP averaging from 1-based epoch `start`; `bn`: the module has `swa_bn` (BN buffers to re-estimate). */
  swa?: { start: number; bn: boolean };
  /** Take a checkpoint every `every` steps or after every epoch; `save` writes it. */
  checkpoint?: { every: number | 'epoch'; save: (pos: Position, nextLr: number) => Promise<void> };
  /** Continue from this position (the backend already holds the checkpoint's state). */
  resume?: Position;
  /** Test-set evaluation batches limited to this many samples (benchmarks); default: all. */
  testLimit?: number;
  /** A precision schedule's widths at a step (CPT); evaluation uses the last training step's, as CPT does. */
  bits?: (globalStep: number) => StepBits;
  /**
   * Diagnostics on the CPU reference interpreter, for `module` (what the backend runs): `check` (--check-numerics)
   * reads the state before every step and, when a step makes a non-finite value, reruns it to name the first node;
   * `quantStats` (--quant-stats N) reruns every N-th step and records each quantizer site's statistics.
   */
  numerics?: { module: Module; check?: boolean; quantStats?: number };
}

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  test_loss: number;
  test_accuracy: number;
  lr: number;
  steps: number;
  /** Steps taken since the start of training, at the end of this epoch. */
  global_step: number;
  seconds: number;
  images_per_sec: number;
  /** With --swa, from the first averaged epoch on: the SWA model's test loss and accuracy, snapshots averaged. */
  swa_test_loss?: number;
  swa_test_accuracy?: number;
  swa_count?: number;
  /** Token sets (sotu:…): e^test_loss, and test_loss in bits per token (per character for sotu:chars). */
  test_perplexity?: number;
  test_bits_per_token?: number;
  test_bits_per_char?: number;
  /** Under a precision schedule: the widths of the epoch's last step (the ones evaluation ran with). */
  bits_fwd?: number;
  bits_bwd?: number;
}

export interface StepMetrics { step: number; epoch: number; loss: number; lr: number; bits_fwd?: number; bits_bwd?: number }

/** The evaluation batches of `data` (the first `limit` samples when given). */
function evalSet(data: Dataset, batch: number, limit?: number) {
  return evalBatches(limit !== undefined && limit < data.n ? subset(data, limit) : data, batch);
}

export async function evaluate(b: Backend, data: Dataset, batch: number, graph = 'eval', limit?: number, bits?: StepBits): Promise<{ loss: number; accuracy: number }> {
  let loss = 0, correct = 0, n = 0;
  for (const { x, y, valid } of evalSet(data, batch, limit)) {
    const o = await b.run(graph, { x, y }, { seed: 0, step: 0, ...(bits ? { bits } : {}) }, ['loss', 'correct']);
    loss += o.loss[0] * valid;
    correct += o.correct[0];
    n += valid;
  }
  // a sequence set's loss is already the mean over its tokens; its accuracy counts tokens
  return { loss: loss / n, accuracy: correct / (n * (data.tokens ? data.shape[0] : 1)) };
}

/** Language-model figures of a token set's mean loss (nats per token): perplexity e^loss and bits per token
 *  (per character for a character set). */
export function tokenMetrics(data: Dataset, loss: number): Partial<EpochMetrics> {
  if (!data.tokens) return {};
  const bits = loss / Math.LN2;
  return { test_perplexity: Math.exp(loss), test_bits_per_token: bits, ...(/:chars\b/.test(data.name) ? { test_bits_per_char: bits } : {}) };
}

function subset(d: Dataset, n: number): Dataset {
  const size = d.shape[0] * d.shape[1] * d.shape[2];
  return { ...d, n, images: d.images.subarray(0, n * size), labels: d.labels.subarray(0, n * (d.tokens ? d.shape[0] : 1)) };
}

/**
 * SWALP's bn_update for the SWA model: the `swa_bn` graph over `steps` training batches of `epoch`'s order with
 * momentum b/(n+b) (n samples seen before the batch), which makes the running statistics the exact average of the
 * per-batch statistics (the first batch has momentum 1, so the old statistics do not matter).
 */
export async function swaBnUpdate(b: Backend, train: Dataset, batch: number, seed: number, epoch: number, steps: number): Promise<void> {
  const batches = epochBatches(train, batch, seed, epoch);
  const keep = new Float32Array(1), mom = new Float32Array(1);
  let seen = 0;
  for (let i = 0; i < Math.min(steps, batches.length); i++) {
    const m = batch / (seen + batch);
    mom[0] = m;
    keep[0] = 1 - m;
    await b.run('swa_bn', { x: batches.get(i).x, bn_keep: keep, bn_momentum: mom }, { seed, step: 0 }, []);
    seen += batch;
  }
}

/** Folds the current weights into the SWA average as snapshot n+1 (swa ← swa·(1 − 1/(n+1)) + w/(n+1)). */
export async function swaAverage(b: Backend, n: number): Promise<void> {
  const alpha = 1 / (n + 1);
  await b.run('swa_average', { swa_keep: Float32Array.of(1 - alpha), swa_alpha: Float32Array.of(alpha) }, { seed: 0, step: 0 }, []);
}

export async function train(b: Backend, data: { train: Dataset; test: Dataset }, o: TrainOptions): Promise<EpochMetrics[]> {
  const progress = o.progress ?? new Progress();
  // A fresh run empties the metrics file at its first record, not before: a run that fails first leaves it as it was.
  // (or at its first checkpoint, whose metrics_bytes must count this run's records only).
  let fresh = !!o.metricsPath && !o.metricsAppend;
  const startMetrics = () => { if (fresh) { fs.writeFileSync(o.metricsPath!, ''); fresh = false; } };
  const record = (r: object) => {
    if (!o.metricsPath) return;
    startMetrics();
    fs.appendFileSync(o.metricsPath, metricsLine(r) + '\n');
  };
  const nm = o.numerics, check = !!nm?.check;
  let prev: StepRecord | undefined; // with --check-numerics: the last step run, to rerun when its result is non-finite
  // with --check-numerics: the state a step starts from (= the state the previous step left) must be finite
  const checkState = (state: Map<string, Float32Array>, next: string) => {
    const bad = nonFiniteState(state);
    if (!bad) return;
    const [name, i, v] = bad;
    const observed = `training diverged: state '${name}' holds ${v} (element ${i}) before ${next}`;
    throw prev ? diagnose(nm!.module, prev, observed) : new DivergenceError(`${observed}, the first step of this run`, true);
  };
  // a non-finite evaluation loss is divergence too (after its record is written)
  const evalDiverged = async (what: string, loss: number, graph: string, bits?: StepBits): Promise<DivergenceError> => {
    const observed = `evaluation diverged: ${what} is ${loss}`;
    if (!check) return new DivergenceError(observed, false);
    const feeds = [...evalSet(data.test, o.batch, o.testLimit)].map(({ x, y }) => ({ x, y }));
    return diagnoseEval(nm!.module, graph, feeds, await b.getState(), { seed: 0, step: 0, ...(bits ? { bits } : {}) }, observed);
  };
  const history: EpochMetrics[] = [];
  const lrBuf = new Float32Array(1);
  const r = o.resume;
  let globalStep = r?.globalStep ?? 0, swaCount = r?.swaCount ?? 0;
  const startEpoch = r ? (r.epochDone ? r.epoch + 1 : r.epoch) : 1;
  const every = o.checkpoint?.every;
  for (let epoch = startEpoch; epoch <= o.epochs; epoch++) {
    const batches = epochBatches(data.train, o.batch, o.seed, epoch);
    const steps = Math.min(batches.length, o.maxSteps ?? Infinity);
    const resumed = r && !r.epochDone && epoch === r.epoch;
    const first = resumed ? r.stepsDone : 0;
    const t0 = performance.now();
    let sum = resumed ? r.lossSum : 0;
    const pos = (s: number, done: boolean): Position => ({ epoch, stepsDone: s, epochDone: done, globalStep, lossSum: sum, swaCount });
    for (let s = first; s < steps; s++) {
      const { x, y } = batches.get(s);
      lrBuf[0] = o.lr(epoch, s, steps, globalStep);
      const bits = o.bits?.(globalStep);
      const info: StepInfo = { seed: o.seed, step: globalStep, ...(bits ? { bits } : {}) };
      const what = `training step ${globalStep + 1} (epoch ${epoch}, step ${s + 1})`;
      const statsNow = !!nm?.quantStats && globalStep % nm.quantStats === 0;
      if (check || statsNow) {
        const before = await b.getState();
        if (check) { checkState(before, what); prev = stepRecord('train', { x, y, lr: lrBuf }, before, info, what); }
        if (statsNow) record({ quant_step: globalStep + 1, epoch, graph: 'train', sites: quantStats(getGraph(nm.module, 'train'), { x, y, lr: lrBuf }, before, info) });
      }
      const out = await b.run('train', { x, y, lr: lrBuf }, info, ['loss']);
      const loss = out.loss[0];
      if (!Number.isFinite(loss)) {
        if (o.metricsSteps) record({ step: globalStep + 1, epoch, loss, lr: lrBuf[0] });
        const observed = `training diverged: loss is ${loss} at epoch ${epoch}, step ${s + 1}`;
        throw check && prev ? diagnose(nm!.module, prev, observed) : new DivergenceError(observed, false);
      }
      o.onStep?.(globalStep, loss);
      globalStep++;
      sum += loss;
      if (o.metricsSteps && globalStep % o.metricsSteps === 0)
        record({ step: globalStep, epoch, loss, lr: lrBuf[0], ...(bits ? { bits_fwd: bits.fwd, bits_bwd: bits.bwd } : {}) } satisfies StepMetrics);
      const secs = (performance.now() - t0) / 1000;
      progress.update(epoch, o.epochs, s + 1, steps, sum / (s + 1), ((s + 1 - first) * o.batch) / secs);
      if (typeof every === 'number' && globalStep % every === 0) {
        startMetrics();
        await o.checkpoint!.save(pos(s + 1, false), o.lr(epoch, s + 1, steps, globalStep));
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    if (check && steps > first) checkState(await b.getState(), `the evaluation after epoch ${epoch}`);
    const lastBits = o.bits?.(Math.max(0, globalStep - 1));
    const ev = await evaluate(b, data.test, o.batch, 'eval', o.testLimit, lastBits);
    const m: EpochMetrics = {
      epoch, train_loss: sum / steps, test_loss: ev.loss, test_accuracy: ev.accuracy, lr: o.lr(epoch, 0, steps, globalStep - steps),
      steps, global_step: globalStep, seconds, images_per_sec: ((steps - first) * o.batch) / seconds,
      ...(lastBits ? { bits_fwd: lastBits.fwd, bits_bwd: lastBits.bwd } : {}),
      ...tokenMetrics(data.test, ev.loss),
    };
    // (an empty test set, as benchmarks pass, evaluates nothing: its NaN loss is no divergence)
    const tested = Math.min(data.test.n, o.testLimit ?? Infinity) > 0;
    const bad: [string, number, string][] = !tested || Number.isFinite(ev.loss) ? [] : [['the test loss', ev.loss, 'eval']];
    let swaText = '';
    if (o.swa && epoch >= o.swa.start) {
      await swaAverage(b, swaCount);
      swaCount++;
      if (o.swa.bn) await swaBnUpdate(b, data.train, o.batch, o.seed, epoch, steps);
      const sv = await evaluate(b, data.test, o.batch, 'swa_eval', o.testLimit, lastBits);
      Object.assign(m, { swa_test_loss: sv.loss, swa_test_accuracy: sv.accuracy, swa_count: swaCount });
      if (tested && !Number.isFinite(sv.loss)) bad.push(['the SWA model\'s test loss', sv.loss, 'swa_eval']);
      swaText = `  SWA (${swaCount}) test loss ${sv.loss.toFixed(4)} accuracy ${(100 * sv.accuracy).toFixed(2)}%`;
    }
    history.push(m);
    progress.line(`epoch ${epoch}/${o.epochs}: train loss ${m.train_loss.toFixed(4)}  test loss ${m.test_loss.toFixed(4)}  ` +
      `test accuracy ${(100 * m.test_accuracy).toFixed(2)}%${m.test_perplexity !== undefined ? `  perplexity ${m.test_perplexity.toFixed(2)}` : ''}${swaText}  (${seconds.toFixed(1)} s, ${m.images_per_sec.toFixed(0)} img/s)`);
    record(m);
    if (bad.length) throw await evalDiverged(`${bad[0][0]} after epoch ${epoch}`, bad[0][1], bad[0][2], lastBits);
    if (o.checkpoint && (every === 'epoch' || epoch === o.epochs))
      await o.checkpoint.save(pos(steps, true), o.lr(epoch + 1, 0, steps, globalStep));
  }
  return history;
}

/** One metrics line: JSON, with NaN and ±Inf written as the strings "NaN", "Infinity", "-Infinity" (never null). */
export function metricsLine(r: object): string {
  return JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}
