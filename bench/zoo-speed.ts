/**
 * `npm run build && LPC_TUNE=off node dist/bench/zoo-speed.js [--models mobilenetv2,densenet121] [--batch 32]
 *  [--input 3x32x32] [--steps 6] [--rounds 3] [--warmup 1] [--lr 0.05] [--agree-steps 2]`
 *
 * The zoo's step time against tfjs-backend-webgpu (issue 28): MobileNetV2 (depthwise convolutions, ReLU6, dropout)
 * and DenseNet-121 (a concat per dense layer) trained in fp32 by lpc and by its tfjs peer (bench/tfjs-peer.ts:
 * tf.depthwiseConv2d, tf.relu6, tf.concat, lpc's own dropout masks) on the same Dawn device in one process, from the
 * same weights on the same batches (seeded synthetic data of the input shape). The losses of the first steps must
 * agree within 1e-4 relative before anything is timed; then the two alternate in rounds (bench/tfjs-compare.ts), the
 * median step of each reported with the ratio. Without LPC_TUNE=off lpc first tunes its kernels for the adapter
 * with no budget (cached per adapter), which takes long on a CPU driver. Small runs (small batches and maps: BN over
 * a few values, ReLU6 masks that f32 rounding flips) are ill-conditioned after one update: MobileNetV2 at b8, 3×32×32,
 * lr 0.01 (synthetic data) gives step-2 losses 2.2768741 on lpc's CPU interpreter and 2.2701514 on its WebGPU run
 * (lavapipe), so there `--agree-steps 1` checks the forward pass only; test/webgpu/tfjs-peer.test.ts checks the
 * peer's gradients of these ops over three steps on a well-conditioned net.
 */
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { Flags } from './common.js';
import { DEFAULT_SGD } from './recipes.js';
import { compareWithTfjs } from './tfjs-compare.js';

const flags = new Flags();
const models = (flags.str('--models') ?? 'mobilenetv2,densenet121').split(',');
for (const m of models) if (!['mobilenetv2', 'densenet121'].includes(m)) throw new Error(`--models: expected mobilenetv2 and/or densenet121, got '${m}'`);
const batch = flags.int('--batch', 32), steps = flags.int('--steps', 6), rounds = flags.int('--rounds', 3), warmup = flags.int('--warmup', 1, 0);
const agreeSteps = flags.int('--agree-steps', 2);
const sgd = { ...DEFAULT_SGD, lr: Number(flags.str('--lr') ?? DEFAULT_SGD.lr) };
if (!(sgd.lr > 0)) throw new Error('--lr must be a positive number');
const inputText = flags.str('--input') ?? '3x32x32';
const input = inputText.split('x').map(Number);
if (input.length !== 3 || !input.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`--input must be CxHxW, got '${inputText}'`);

const gpu = await getGpu({ quiet: true });
const log = (s: string) => console.error(s);
const rows: string[] = [];
for (const name of models) {
  const m = runPasses(frontEnd(`models/${name}.ts`, batch, { input }), { batch, optimizer: sgd, log: () => {} });
  const t0 = performance.now();
  const r = await compareWithTfjs(gpu, m, { sgd, steps, rounds, warmup, agreeSteps, log });
  const minutes = (performance.now() - t0) / 60000;
  log(`${name}: ${minutes.toFixed(1)} minutes`);
  rows.push(`| ${name} | ${batch} | ${input.join('×')} | ${r.maxRelDiff.toExponential(1)} | ${r.agree ? r.lpcMs.toFixed(0) : '—'} | ` +
    `${r.agree ? r.tfjsMs.toFixed(0) : '—'} | ${r.speedup === null ? 'losses disagree: not timed' : `${r.speedup.toFixed(2)}×`} |`);
}
console.log(`lpc vs tfjs-backend-webgpu, fp32 SGD (lr ${sgd.lr}, momentum ${sgd.momentum}, wd ${sgd.wd}), one process on ${gpu.adapterDescription}; ` +
  `median of ${rounds} alternating rounds (${Math.ceil(steps / rounds)} steps each) after ${warmup} warm-up step(s)${process.env.LPC_TUNE === 'off' ? ', LPC_TUNE=off (default tilings)' : ''}`);
console.log(`| model | batch | input | loss rel. diff (${agreeSteps} step${agreeSteps > 1 ? 's' : ''}) | lpc ms/step | tfjs ms/step | tfjs / lpc |\n|---|---|---|---|---|---|---|`);
for (const r of rows) console.log(r);
await shutdownGpu();
