/**
 * `npm run build && node dist/bench/zoo-fmnist.js [--model mobilenetv2|densenet121] [--steps N] [--test N]
 *  [--batch 64] [--seed 0] [--backend webgpu|cpu] [--only fp32|swalp_bfp8] [--no-readme] [--json out.json]`
 *
 * The zoo's real run (issue 28): a zoo network on Fashion-MNIST (`--input 1x28x28`), fp32 against the SWALP-style
 * bfp<8> policy (every role bfp<8> with stochastic rounding, bench/recipes.ts), same seed (same initial weights and
 * shuffle), one epoch of SGD (lr 0.05, momentum 0.9, wd 5e-4, constant), test accuracy after it. Without `--steps`
 * the epoch is all 60,000 training images (938 batches of 64); `--steps N` stops it after N batches (a fixed prefix
 * of the seeded shuffle) and the caption says so. `--test N` evaluates on the first N of the 10,000 test images
 * (default all). Each arm prints its mean step time (the first step, which builds pipelines, left out), so a short
 * run sizes a long one. Writes the README's `zoo-fmnist-table` unless `--no-readme`.
 */
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { parsePolicy } from '../ir/precision/index.js';
import { runPasses } from '../passes/pipeline.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { train } from '../runtime/train/train.js';
import { Progress } from '../runtime/train/progress.js';
import { Flags, openRunner, writeSection } from './common.js';
import { DEFAULT_SGD, RECIPES } from './recipes.js';

const flags = new Flags();
const modelName = flags.str('--model') ?? 'mobilenetv2';
if (!['mobilenetv2', 'densenet121'].includes(modelName)) throw new Error(`--model must be mobilenetv2 or densenet121, got '${modelName}'`);
const BATCH = flags.int('--batch', 64), seed = flags.int('--seed', 0, 0);
const steps = flags.str('--steps') === undefined ? undefined : flags.int('--steps', 1);
const testN = flags.str('--test') === undefined ? undefined : flags.int('--test', 1);
const ARMS = ['fp32', 'swalp_bfp8'].filter((k) => (flags.str('--only') ?? k) === k);
if (!ARMS.length) throw new Error(`--only must be fp32 or swalp_bfp8, got '${flags.str('--only')}'`);

const file = `models/${modelName}.ts`, input = [1, 28, 28];
const runner = await openRunner(flags.str('--backend') ?? 'webgpu');
const data = loadDataset('fashion-mnist');
const stepsRun = Math.min(steps ?? Infinity, Math.floor(data.train.n / BATCH));
const tested = Math.min(testN ?? Infinity, data.test.n);
const t0 = performance.now();
const rows: { key: string; label: string; spec?: string; accuracy: number; trainLoss: number; stepMs: number }[] = [];
for (const key of ARMS) {
  const spec = RECIPES[key].spec;
  const m = runPasses(frontEnd(file, BATCH, { input }), { batch: BATCH, optimizer: DEFAULT_SGD, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
  const b = await runner.make(m);
  await b.setState(initState(m, seed));
  const stamps: number[] = [];
  const hist = await train(b, data, {
    epochs: 1, batch: BATCH, seed, lr: () => DEFAULT_SGD.lr, progress: new Progress(),
    ...(steps !== undefined ? { maxSteps: steps } : {}), ...(testN !== undefined ? { testLimit: testN } : {}),
    onStep: () => { stamps.push(performance.now()); },
  });
  await b.dispose();
  const stepMs = stamps.length > 1 ? (stamps[stamps.length - 1] - stamps[0]) / (stamps.length - 1) : NaN;
  const h = hist[hist.length - 1];
  rows.push({ key, label: RECIPES[key].label, spec, accuracy: h.test_accuracy * 100, trainLoss: h.train_loss, stepMs });
  console.log(`${key}: test accuracy ${(h.test_accuracy * 100).toFixed(2)}%  train loss ${h.train_loss.toFixed(4)}  ${stamps.length} steps, ${stepMs.toFixed(0)} ms/step (first left out)`);
}
const minutes = (performance.now() - t0) / 60000;

const subset = stepsRun * BATCH < data.train.n
  ? `**${stepsRun} batches of ${BATCH} (${(stepsRun * BATCH).toLocaleString('en')} of the 60,000 training images: a prefix of the epoch's seeded shuffle, not a full epoch)**`
  : `one epoch (${stepsRun} batches of ${BATCH}, ${(stepsRun * BATCH).toLocaleString('en')} images)`;
const caption = `${modelName === 'mobilenetv2' ? 'MobileNetV2' : 'DenseNet-121'} (\`${file} --input 1x28x28\`), Fashion-MNIST: ${subset}, ` +
  `SGD lr ${DEFAULT_SGD.lr} constant, momentum ${DEFAULT_SGD.momentum}, wd ${DEFAULT_SGD.wd}, seed ${seed}; test accuracy on ` +
  `${tested === data.test.n ? 'all 10,000' : `the first ${tested.toLocaleString('en')} of the 10,000`} test images; ${runner.where}, a shared, loaded ` +
  `2-core machine (step times are only indicative); ${minutes.toFixed(0)} minutes. Produced by \`${process.env.LPC_TUNE === 'off' ? 'LPC_TUNE=off ' : ''}node dist/bench/zoo-fmnist.js --model ${modelName}` +
  `${steps !== undefined ? ` --steps ${steps}` : ''}${testN !== undefined ? ` --test ${testN}` : ''}\`.`;
const table = [
  caption, '',
  '| precision | `--precision` | test accuracy % | train loss (epoch mean) | ms per step |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.label} | \`${r.spec ?? '(none)'}\` | ${r.accuracy.toFixed(2)} | ${r.trainLoss.toFixed(4)} | ${r.stepMs.toFixed(0)} |`),
].join('\n');
console.log(table);
if (!flags.has('--no-readme') && ARMS.length === 2) writeSection('README.md', 'zoo-fmnist-table', table);
const jsonOut = flags.str('--json');
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ model: modelName, batch: BATCH, steps: stepsRun, test: tested, seed, minutes, rows }, null, 2) + '\n');
await runner.close();
