/**
 * One sweep cell: train a compiled artifact (one configuration) on one task from the seed and report its test
 * error. A cell's result depends only on (model, configuration, task, seed, epochs, steps): the state starts from
 * the seed, shuffling is keyed by (seed, epoch) and stochastic rounding by (seed, step), as in `lpc run`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Artifact, readArtifact } from '../artifact.js';
import { loadDataset, Split } from '../data/index.js';
import { initState } from '../train/init.js';
import { train } from '../train/train.js';
import { silentProgress } from '../train/progress.js';
import { makeBackend } from '../cli/backends.js';
import { scheduleOf } from '../cli/run.js';
import type { CellSource } from './queue.js';

/** A cell ready to run: what it trains and where its artifact is. */
export interface CellJob {
  /** `t<task>-c<config>`, zero-padded: the name of its result file. */
  id: string;
  taskIndex: number;
  configIndex: number;
  task: string;
  config: string;
  /** The compiled artifact for (configuration, input shape, classes). */
  artifact: string;
  /** Its planned memory in MB (2^20 bytes), from `memoryBytes`. */
  memory_mb: number;
  seed: number;
  epochs: number;
  maxSteps?: number;
  backend: string;
  /** Where the cell's per-epoch metrics go (written to a temporary name, renamed when the cell ends). */
  metricsPath: string;
}

export interface CellResult {
  id: string;
  task: string;
  config: string;
  status: 'ok' | 'failed';
  /** Test error = 1 − accuracy after the last epoch; null when the cell failed. */
  error: number | null;
  test_loss: number | null;
  train_loss: number | null;
  steps: number;
  memory_mb: number | null;
  /** Wall-clock seconds of the cell (data, start-up, training, evaluation); not part of the result's identity. */
  seconds: number;
  /** Of those, the training steps' (the epochs' step loops, without evaluation). */
  train_seconds: number;
  reason: string | null;
}

/** The fields of a result that depend only on the cell (not on the machine's speed). */
export function resultIdentity(r: CellResult): Omit<CellResult, 'seconds' | 'train_seconds'> {
  const { seconds: _s, train_seconds: _t, ...rest } = r;
  return rest;
}

// The last task and artifact a process loaded: cells run task by task, so most cells reuse them.
let lastData: { spec: string; split: Split } | undefined;
const artifacts = new Map<string, Artifact>();

export function loadTask(spec: string): Split {
  if (lastData?.spec !== spec) { lastData = undefined; lastData = { spec, split: loadDataset(spec) }; }
  return lastData.split;
}

function artifactAt(dir: string): Artifact {
  let a = artifacts.get(dir);
  if (!a) { a = readArtifact(dir); artifacts.set(dir, a); }
  return a;
}

/** The machine's trouble, not the cell's: no adapter, a full disk, out of memory. */
export class MachineFault extends Error {}
/** System errors (a `code` like ENOSPC) and backend start-up failures: a rerun may succeed, so they are not recorded. */
const machineFault = (e: unknown) => e instanceof MachineFault || typeof (e as NodeJS.ErrnoException)?.code === 'string';

/**
 * Trains the cell. A failure that belongs to the cell (divergence, too little data, a broken artifact) is a failed
 * result, recorded for good; a machine fault is thrown, so the sweep stops and a rerun retries the cell.
 */
export async function runCell(job: CellJob): Promise<CellResult> {
  const t0 = performance.now();
  const base = { id: job.id, task: job.task, config: job.config, memory_mb: job.memory_mb };
  const tmpMetrics = path.join(path.dirname(job.metricsPath), `.${path.basename(job.metricsPath)}.tmp-${process.pid}`);
  let steps = 0, trainSeconds = 0;
  try {
    const art = artifactAt(job.artifact);
    const data = loadTask(job.task);
    const { batch, optimizer, precision } = art.manifest.options;
    const stepsPerEpoch = Math.min(Math.floor(data.train.n / batch), job.maxSteps ?? Infinity);
    const backend = await makeBackend(job.backend, art.module, true).catch((e: Error) => { throw new MachineFault(`${job.backend} backend: ${e.message.split('\n')[0]}`); });
    try {
      await backend.setState(initState(art.module, job.seed));
      const hist = await train(backend, data, {
        epochs: job.epochs, batch, seed: job.seed, maxSteps: job.maxSteps, metricsPath: tmpMetrics, progress: silentProgress(),
        bits: scheduleOf(precision, job.epochs * stepsPerEpoch), lr: () => optimizer.lr,
        onStep: () => { steps++; },
      });
      trainSeconds = hist.reduce((t, m) => t + m.seconds, 0);
      const last = hist[hist.length - 1];
      fs.renameSync(tmpMetrics, job.metricsPath);
      return {
        ...base, status: 'ok', error: 1 - last.test_accuracy, test_loss: last.test_loss, train_loss: last.train_loss, steps,
        seconds: (performance.now() - t0) / 1000, train_seconds: trainSeconds, reason: null,
      };
    } finally {
      await backend.dispose();
    }
  } catch (e) {
    fs.rmSync(tmpMetrics, { force: true });
    if (machineFault(e)) throw e;
    const message = (e as Error).message.split('\n')[0];
    return {
      ...base, status: 'failed', error: null, test_loss: null, train_loss: null, steps,
      seconds: (performance.now() - t0) / 1000, train_seconds: trainSeconds, reason: message,
    };
  }
}

/** A worker's loop: runs cells from `source` until it has none left. */
export async function work(source: CellSource): Promise<void> {
  for (let job = await source.claim(); job; job = await source.claim()) await source.report(await runCell(job));
}
