/** `lpc run`: load and validate an artifact, initialise state from the seed, train, evaluate each epoch. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Artifact, readArtifact } from '../artifact.js';
import { inputProblem, loadDataset, parseDataSpec } from '../data/index.js';
import { classesProblem } from '../data/tasks.js';
import { initState, stateDecls } from '../train/init.js';
import { Position, train } from '../train/train.js';
import { Progress } from '../train/progress.js';
import { LrConfig, LrError, describeLr, lrAt, parseLrSchedule, parseSwa, parseWarmup, resolveLr } from '../train/lr.js';
import { CheckpointError, SIDECAR, loadCheckpoint, saveCheckpoint } from '../checkpoint.js';
import { withSwa } from '../../passes/swa.js';
import { FlagSpec, Parsed, UsageError, decimalInt, flag, intFlag } from './args.js';
import { makeBackend, parseTuneBudget } from './backends.js';
import { CHECKPOINT_NAME, checkOutputFile, isWithin, prepareCheckpointDir, realPath, samePath } from './outputs.js';
import { lockDirectory } from '../lock.js';
import { parsePolicy, scheduleBits } from '../../ir/precision/index.js';
import type { StepBits } from '../../ir/quant/rng.js';
import { CHECK_NUMERICS_HINT, DivergenceError } from '../train/numerics.js';
import { describeMismatch, loadStateDict, modelDecls, readWeights, weightsLimit } from '../weights.js';

export const runFlags: FlagSpec[] = [
  { name: 'data', value: 'SET', help: 'mnist (default), fashion-mnist, cifar10:<dir>, cifar100:<dir>, synthetic, or text for token models: sotu:chars, sotu:words[=N]; a task of one: mnist:classes=0,2,4 (labels 0..k−1 in the listed order), cifar100:<dir>:superclass=K (PEPPP\'s partition K = 0..19)' },
  { name: 'epochs', value: 'N', help: 'epochs to train (default 5)' },
  { name: 'backend', value: 'B', help: 'webgpu (default; hardware adapter if present, else a CPU Vulkan driver) or cpu' },
  { name: 'tune-budget', value: 'S|off|full', help: "seconds to spend measuring kernel tilings not yet in this adapter's tune cache before the first step, biggest shapes first (default 60 on a CPU Vulkan driver, 20 on a GPU); off: the cache and defaults only; full: measure all (lpc tune does it ahead of time)" },
  { name: 'seed', value: 'S', help: 'seed for initialisation, shuffling and stochastic rounding (default 0)' },
  { name: 'metrics', value: 'FILE', help: 'write one JSON object per epoch (epoch, train_loss, test_loss, test_accuracy, lr, global_step, swa_*, …)' },
  { name: 'metrics-steps', value: 'N', help: 'also write {step, epoch, loss, lr} to the metrics file every N steps (for lpc plot)' },
  { name: 'max-steps', value: 'N', help: 'stop each epoch after N steps (quick runs)' },
  { name: 'test-limit', value: 'N', help: 'evaluate on the first N test samples only (quick runs; default: all of them)' },
  { name: 'lr-schedule', value: 'S', help: 'const (default; swalp when --swa gives lr=), step(milestones=[E1,E2],gamma=0.1), cosine(t_max=E,eta_min=0[,per=step]) or swalp(start=E,swa_lr=LR); per epoch (0-based; cosine per=step: per optimizer step, T = all steps), base lr from the artifact' },
  { name: 'warmup', value: 'N', help: 'linear warm-up: lr × (s+1)/N for the first N optimizer steps s; Nep = N epochs of steps' },
  { name: 'swa', value: 'start=E[,lr=LR]', help: 'SWALP: average the weights after every epoch ≥ E (1-based) in fp32 on the device, lr = LR after epoch E; reports swa_test_accuracy' },
  { name: 'checkpoint', value: 'DIR', help: 'write checkpoints (safetensors + checkpoint.json) into DIR' },
  { name: 'checkpoint-every', value: 'N|epoch', help: 'checkpoint every N steps or after every epoch (default epoch); always after the last epoch' },
  { name: 'check-numerics', help: 'when a step makes a NaN/Inf (loss, state or evaluation loss), rerun it on the CPU interpreter and name the first op that did: node, role, model file:line:col, step; then exit 1 (reads the state back before every step: slow)' },
  { name: 'quant-stats', value: 'N', help: 'every N steps, record per quantizer site (role, format) the fraction saturated, the fraction flushed to zero and the mean relative rounding error into the --metrics file (a CPU rerun of that step; off: no cost)' },
  { name: 'resume', value: 'DIR', help: 'continue the run checkpointed in DIR exactly (its seed, epochs, schedule, SWA and data; checkpoints go on into DIR)' },
  { name: 'init-from', value: 'FILE|DIR', help: "initial weights and BN running statistics from a PyTorch state_dict in safetensors (F32, F16, BF16 or F64; running_mean/running_var, num_batches_tracked ignored) or a checkpoint folder's weights; strict like load_state_dict: every model tensor with its shape, no others. Momentum, SWA and the step start fresh; not with --resume" },
  { name: 'init-from-non-strict', help: '--init-from loads the tensors that match by name and shape and prints one line naming those it skipped' },
];

/** A fingerprint of what determines training: the IR and the compile options (not the source path). */
export function artifactHash(art: Artifact): string {
  const { batch, optimizer, precision, model } = art.manifest.options;
  return createHash('sha256').update(JSON.stringify({ graph: art.manifest.files['graph.lpir'], batch, optimizer, precision: precision ?? null, model })).digest('hex');
}

/**
 * The precision schedule's widths per global step (CPT: P = floor(total iterations / periods), total = epochs ×
 * steps per epoch), or undefined when the artifact has none. A direction without a schedule reads 32 (unused).
 */
export function scheduleOf(spec: string | undefined, totalIters: number): ((t: number) => StepBits) | undefined {
  const s = spec ? parsePolicy(spec).schedule : undefined;
  if (!s) return undefined;
  return (t) => ({ fwd: s.fwd ? scheduleBits(s.fwd, t, totalIters) : 32, bwd: s.bwd ? scheduleBits(s.bwd, t, totalIters) : 32 });
}

/** Flags that define the run; --resume takes them from the checkpoint and refuses different values. */
const RUN_CONFIG = ['data', 'epochs', 'seed', 'max-steps', 'lr-schedule', 'warmup', 'swa'] as const;

export async function runCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc run needs one artifact directory');
  const art = readArtifact(p.positional[0]);
  const hash = artifactHash(art);

  // The run's configuration: flags, or the checkpoint's with --resume.
  const resumeDir = flag(p, 'resume');
  const initFrom = flag(p, 'init-from');
  if (initFrom !== undefined && resumeDir !== undefined)
    throw new UsageError('--init-from and --resume exclude each other: --resume continues a run with all its state, --init-from starts a new run from weights');
  if (p.flags.has('init-from-non-strict') && initFrom === undefined) throw new UsageError('--init-from-non-strict needs --init-from FILE');
  let sidecarConfig: Record<string, string | number | null> | undefined;
  if (resumeDir) {
    const side = path.join(resumeDir, SIDECAR);
    if (!fs.existsSync(side)) throw new CheckpointError(side, 'not found (is this a checkpoint directory written by --checkpoint?)');
    try { sidecarConfig = JSON.parse(fs.readFileSync(side, 'utf8')).config; } catch { throw new CheckpointError(side, 'is not valid JSON (corrupt?)'); }
    if (!sidecarConfig || typeof sidecarConfig !== 'object') throw new CheckpointError(side, 'has no run configuration');
    for (const k of RUN_CONFIG) {
      const given = flag(p, k), saved = sidecarConfig[k];
      if (given !== undefined && String(given) !== String(saved ?? ''))
        throw new UsageError(`--${k} ${given} differs from the checkpoint's (${saved ?? 'not set'}); a resumed run keeps its configuration`);
    }
  }
  const cfg = (k: (typeof RUN_CONFIG)[number]): string | undefined => {
    if (sidecarConfig) { const v = sidecarConfig[k]; return v === null || v === undefined ? undefined : String(v); }
    return flag(p, k);
  };
  // With --resume a bad value came from the checkpoint, not from a flag the user typed: blame the checkpoint.
  const configError = (k: string, message: string): Error => (resumeDir
    ? new CheckpointError(path.join(resumeDir, SIDECAR), `config.${k}: ${message.replace(/^--\S+ /, '')}`)
    : new UsageError(message));
  const get = (k: (typeof RUN_CONFIG)[number], def: number, min = 1): number => {
    try {
      return intFlag({ positional: [], flags: new Map(cfg(k) === undefined ? [] : [[k, [cfg(k)!]]]) }, k, def, min);
    } catch (e) {
      throw e instanceof UsageError ? configError(k, e.message) : e;
    }
  };
  const epochs = get('epochs', 5);
  const tuneText = flag(p, 'tune-budget');
  const tuneBudget = tuneText === undefined ? undefined : parseTuneBudget(tuneText);
  const seed = get('seed', 0, 0);
  const maxSteps = cfg('max-steps') !== undefined ? get('max-steps', 1) : undefined;
  const dataSpec = cfg('data') ?? 'mnist';
  try { parseDataSpec(dataSpec); } catch (e) { throw configError('data', (e as Error).message); }
  const metricsSteps = p.flags.has('metrics-steps') ? intFlag(p, 'metrics-steps', 1) : undefined;
  const quantStats = p.flags.has('quant-stats') ? intFlag(p, 'quant-stats', 1) : undefined;
  if (quantStats !== undefined && flag(p, 'metrics') === undefined) throw new UsageError('--quant-stats needs --metrics FILE (its records go there)');
  const checkNumerics = p.flags.has('check-numerics');
  const testLimit = p.flags.has('test-limit') ? intFlag(p, 'test-limit', 1) : undefined;

  const everyText = flag(p, 'checkpoint-every') ?? (sidecarConfig?.['checkpoint-every'] as string | undefined) ?? 'epoch';
  let every: number | 'epoch';
  if (everyText === 'epoch') every = 'epoch';
  else {
    every = decimalInt(everyText);
    if (!Number.isSafeInteger(every) || every < 1) throw new UsageError(`--checkpoint-every must be 'epoch' or an integer ≥ 1, got '${everyText}'`);
  }
  const ckptDir = flag(p, 'checkpoint') ?? resumeDir;
  if (p.flags.has('checkpoint-every') && !ckptDir) throw new UsageError('--checkpoint-every needs --checkpoint DIR');

  // Outputs before any work (loading data, starting a device); a metrics file may go into a checkpoint folder made later.
  const metricsPath = flag(p, 'metrics');
  if (ckptDir) prepareCheckpointDir(flag(p, 'checkpoint') !== undefined ? '--checkpoint' : '--resume', ckptDir, !!resumeDir && samePath(ckptDir, resumeDir));
  if (metricsPath !== undefined) checkOutputFile('--metrics', metricsPath, [p.positional[0]], ckptDir);
  if (ckptDir) {
    const what = flag(p, 'checkpoint') !== undefined ? '--checkpoint' : '--resume';
    if (samePath(ckptDir, p.positional[0]) || isWithin(ckptDir, p.positional[0]) || isWithin(p.positional[0], ckptDir))
      throw new UsageError(`${what} ${ckptDir}: is the artifact ${p.positional[0]}, inside it or around it; checkpoints go into a folder of their own`);
    // a metrics file under a name the checkpoint writes (or cleans up) would be overwritten or deleted
    if (metricsPath !== undefined && samePath(path.dirname(path.resolve(metricsPath)), ckptDir) && CHECKPOINT_NAME.test(path.basename(metricsPath)))
      throw new UsageError(`--metrics ${metricsPath}: the checkpoint writes ${path.basename(metricsPath)} in ${ckptDir}; name the metrics file otherwise`);
  }

  const { batch, optimizer } = art.manifest.options;
  const x = art.module.graphs[0].nodes.find((n) => n.op === 'input' && n.attrs.name === 'x')!;
  const evalG = art.module.graphs.find((g) => g.name === 'eval') ?? art.module.graphs[0];
  const xent = evalG.nodes.find((n) => n.op === 'softmax_xent');
  const classes = xent ? evalG.nodes[xent.inputs[0]].type.shape[1] : undefined;
  const progress = new Progress();
  const t0 = performance.now();
  progress.status(`lpc: loading ${dataSpec} …`);
  const data = loadDataset(dataSpec, { sampleShape: x.type.shape.slice(1), seed, classes });
  const loadSeconds = (performance.now() - t0) / 1000;
  progress.status(`lpc: loaded ${dataSpec} (${data.train.n} + ${data.test.n} ${data.train.tokens ? 'sequences' : 'images'}) in ${loadSeconds.toFixed(1)} s`);
  const inputBad = inputProblem(art.manifest.options.model, x.type, dataSpec, data.train);
  if (inputBad) throw new UsageError(inputBad);
  // token ids index embedding tables: one smaller than the data's vocabulary would be read out of range
  const ex = evalG.nodes.find((n) => n.op === 'input' && n.attrs.name === 'x');
  for (const e of evalG.nodes.filter((n) => n.op === 'embedding' && n.inputs[0] === ex?.id)) {
    const rows = evalG.nodes[e.inputs[1]].type.shape[0];
    if (rows < data.train.classes)
      throw new UsageError(`${e.loc ? `${e.loc.file}:${e.loc.line}:${e.loc.col}: ` : ''}the embedding has ${rows} rows but ${dataSpec} has token ids 0..${data.train.classes - 1}; use a vocabulary of ${data.train.classes} (--classes ${data.train.classes})`);
  }
  const mismatch = classesProblem(art.manifest.options.model, classes, dataSpec, data.train.classes);
  if (mismatch) throw new UsageError(mismatch);
  if (batch > data.train.n) throw new UsageError(`the artifact's batch ${batch} is larger than ${dataSpec}'s ${data.train.n} training images; recompile with a lower --batch`);
  const stepsPerEpoch = Math.min(Math.floor(data.train.n / batch), maxSteps ?? Infinity);

  let lr: LrConfig;
  try {
    const swa = cfg('swa') !== undefined ? parseSwa(cfg('swa')!) : undefined;
    const schedText = cfg('lr-schedule');
    const schedule = schedText !== undefined ? parseLrSchedule(schedText) : swa?.lr !== undefined ? parseLrSchedule('swalp') : parseLrSchedule('const');
    const warmupSteps = cfg('warmup') !== undefined ? parseWarmup(cfg('warmup')!, stepsPerEpoch) : 0;
    lr = resolveLr({ base: optimizer.lr, schedule, epochs, stepsPerEpoch, warmupSteps, swa });
    if (swa && swa.start > epochs) throw new LrError(`--swa start=${swa.start} is after the last epoch (${epochs}); nothing would be averaged`);
  } catch (e) {
    if (e instanceof LrError) throw new UsageError(e.message);
    throw e;
  }
  const swa = lr.swa;

  const module = swa ? withSwa(art.module) : art.module;
  const decls = stateDecls(module);

  // Load the checkpoint before starting a device: a bad one is refused without delay.
  let resume: Position | undefined, state = initState(module, seed);
  if (resumeDir) {
    const ck = loadCheckpoint(resumeDir, decls, hash);
    if (ck.sidecar.seed !== seed) throw new CheckpointError(path.join(resumeDir, SIDECAR), `seed ${ck.sidecar.seed} disagrees with its configuration (${seed})`);
    resume = ck.sidecar.position;
    state = ck.state;
    if (resume.epochDone && resume.epoch >= epochs) throw new UsageError(`checkpoint ${resumeDir} is at the end of the run (epoch ${resume.epoch} of ${epochs}); nothing to resume`);
    // The metrics file goes back to what it held at the checkpoint, so no record appears twice; only the run's own
    // file is ever truncated (another existing file is refused, a new one starts empty).
    if (metricsPath && fs.existsSync(metricsPath)) {
      const own = ck.sidecar.metrics_path;
      if (own !== undefined && (own === null || realPath(metricsPath) !== own))
        throw new UsageError(`--metrics ${metricsPath}: not the metrics file of the run in ${resumeDir} (${own ?? 'it wrote none'}); name that file, or a new one`);
      if (ck.sidecar.metrics_bytes !== null && fs.statSync(metricsPath).size >= ck.sidecar.metrics_bytes) fs.truncateSync(metricsPath, ck.sidecar.metrics_bytes);
    }
  }

  if (initFrom !== undefined) {
    // weights and BN statistics only: optimizer state, SWA and the step start as a fresh run's
    const w = readWeights(initFrom, '--init-from', weightsLimit(decls));
    const r = loadStateDict(state, decls, modelDecls(decls), w, { what: '--init-from', model: art.manifest.options.model, strict: !p.flags.has('init-from-non-strict') });
    process.stderr.write(`lpc: --init-from ${w.file}: loaded ${r.loaded} of ${r.expected} model tensors${r.loaded < r.expected || r.unexpected.length ? `; skipped: ${describeMismatch(r)}` : ''}\n`);
  }

  const config: Record<string, string | number | null> = {
    data: dataSpec, epochs, seed, 'max-steps': maxSteps ?? null, 'lr-schedule': cfg('lr-schedule') ?? null,
    warmup: cfg('warmup') ?? null, swa: cfg('swa') ?? null, 'checkpoint-every': every === 'epoch' ? 'epoch' : every,
  };

  const backend = await makeBackend(flag(p, 'backend'), module, false, { budget: tuneBudget, hint: `recompile with a lower --batch (the artifact's is ${batch})` });
  process.stderr.write(`lpc: training ${art.manifest.options.model} on ${backend.description}: ${data.train.n} train / ${data.test.n} test ${data.train.tokens ? `sequences of ${data.train.shape[0]} tokens` : 'images'} (loaded in ${loadSeconds.toFixed(1)} s), batch ${batch}, ${epochs} epochs, precision ${art.manifest.options.precision ?? 'f32'}, lr ${describeLr(lr)}${swa ? `, SWA from epoch ${swa.start}` : ''}${resume ? `; resuming at epoch ${resume.epoch}, step ${resume.stepsDone}${resume.epochDone ? ' (epoch done)' : ''}` : ''}\n`);
  try {
    if (ckptDir) { fs.mkdirSync(ckptDir, { recursive: true }); lockDirectory(ckptDir, 'lpc run'); }
    await backend.setState(state);
    // the driver compiles each kernel at its first dispatch: on a CPU driver the first step takes seconds longer
    if ('pipelinesCreated' in backend) progress.status(`lpc: first step: the driver compiles ${String(backend.pipelinesCreated)} kernels at their first use`, true);
    await train(backend, data, {
      epochs, batch, seed, maxSteps, testLimit, metricsPath, metricsAppend: !!resume, metricsSteps, progress, resume,
      bits: scheduleOf(art.manifest.options.precision, epochs * stepsPerEpoch),
      lr: (epoch, _s, _n, globalStep) => lrAt(lr, epoch - 1, globalStep),
      swa: swa ? { start: swa.start, bn: module.graphs.some((g) => g.name === 'swa_bn') } : undefined,
      numerics: checkNumerics || quantStats ? { module, check: checkNumerics, quantStats } : undefined,
      checkpoint: ckptDir ? {
        every,
        save: async (pos, nextLr) => {
          saveCheckpoint(ckptDir, {
            decls, state: await backend.getState(),
            sidecar: {
              artifact_sha256: hash, model: art.manifest.options.model, position: pos, seed,
              lr: { schedule: describeLr(lr), next: nextLr }, config,
              metrics_bytes: metricsPath && fs.existsSync(metricsPath) ? fs.statSync(metricsPath).size : null,
              metrics_path: metricsPath ? realPath(metricsPath) : null,
            },
          });
        },
      } : undefined,
    });
  } catch (e) {
    if (e instanceof DivergenceError && !e.checked) throw new DivergenceError(`${e.message}; ${CHECK_NUMERICS_HINT}`, false);
    throw e;
  } finally {
    await backend.dispose();
  }
}
