/**
 * `npm run build && node dist/bench/recipes-fmnist.js [--epochs 8] [--swa-start 5] [--steps 50] [--test 2000]
 *  [--seeds 0,1,2] [--backend webgpu|cpu] [--no-readme] [--json out.json]`
 *
 * SWALP on Fashion-MNIST with LeNet-5, as the SWALP repository measures it: one run per (precision, seed) with
 * SWALP's learning-rate schedule (lr 0.05 constant, linear decay to 1% by 90% of the way to the SWA start, then
 * swa_lr 0.01) and once-per-epoch averaging from the SWA start. From each run:
 *   SGD @ start  the SGD model's test accuracy after epoch `swa-start` (the end of the decayed schedule: SWALP's
 *                reported SGD number; with bfp<8> this is SGD-LP)
 *   SGD @ end    the SGD model after the last epoch (trained on at swa_lr, no averaging)
 *   SWA @ end    the averaged model (fp32 average of the low-precision iterates, BN re-estimated, fp32 evaluation)
 * Averaging never changes the SGD run (test/unit/swa.test.ts checks it bit for bit), so the SGD columns are the
 * runs without SWA. Precisions: fp32 and SWALP's 8-bit block floating point with stochastic rounding on every role.
 * An "epoch" here is `--steps` batches of 64 (a fresh seeded shuffle of the 60,000 training images each epoch) and
 * accuracy is measured on the first `--test` images of the fixed 10,000-image test split, so the whole table fits in
 * about 15 minutes on a CPU Vulkan driver. Writes the table into the README between the swalp-table markers.
 */
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { parsePolicy } from '../ir/precision/index.js';
import { runPasses } from '../passes/pipeline.js';
import { withSwa } from '../passes/swa.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { train } from '../runtime/train/train.js';
import { Progress } from '../runtime/train/progress.js';
import { lrAt, parseLrSchedule, resolveLr } from '../runtime/train/lr.js';
import { Backend } from '../runtime/backend.js';
import { CpuBackend } from '../runtime/cpu/backend.js';
import { DEFAULT_SGD, RECIPES } from './recipes.js';

const args = process.argv.slice(2);
const argOf = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const int = (k: string, d: number) => {
  const v = Number(argOf(k) ?? d);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be an integer ≥ 1`);
  return v;
};
const epochs = int('--epochs', 8), swaStart = int('--swa-start', 5), stepsPerEpoch = int('--steps', 50), testN = int('--test', 2000);
const seeds = (argOf('--seeds') ?? '0,1,2').split(',').map(Number);
const backendName = argOf('--backend') ?? 'webgpu';
if (swaStart > epochs) throw new Error('--swa-start must be ≤ --epochs');
const BATCH = 64, SWA_LR = 0.01;
const BEGIN = '<!-- swalp-table:begin -->', END = '<!-- swalp-table:end -->';
const ARMS = [{ key: 'fp32', label: 'fp32' }, { key: 'swalp_bfp8', label: 'bfp<8> stochastic, all roles (SWALP)' }];

let device: typeof import('../runtime/webgpu/device.js') | undefined;
let gpu: import('../runtime/webgpu/device.js').Gpu | undefined;
if (backendName === 'webgpu') { device = await import('../runtime/webgpu/device.js'); gpu = await device.getGpu({ quiet: true }); }
const makeBackend = async (m: import('../ir/graph.js').Module): Promise<Backend> => {
  if (!gpu) return new CpuBackend(m);
  const { WebGpuBackend } = await import('../runtime/webgpu/executor.js');
  return new WebGpuBackend(gpu, m);
};

const data = loadDataset('fashion-mnist');
const lr = resolveLr({ base: DEFAULT_SGD.lr, schedule: parseLrSchedule(`swalp(start=${swaStart},swa_lr=${SWA_LR})`), epochs, swa: { start: swaStart, lr: SWA_LR } });
interface Row { label: string; spec: string; sgdStart: number[]; sgdEnd: number[]; swaEnd: number[] }
const rows: Row[] = [];
const t0 = performance.now();
for (const arm of ARMS) {
  const spec = RECIPES[arm.key].spec;
  const m = withSwa(runPasses(frontEnd('models/lenet5.ts', BATCH), { batch: BATCH, optimizer: DEFAULT_SGD, precision: spec ? parsePolicy(spec) : undefined, log: () => {} }));
  const row: Row = { label: arm.label, spec: spec ?? '(none)', sgdStart: [], sgdEnd: [], swaEnd: [] };
  for (const seed of seeds) {
    const b = await makeBackend(m);
    await b.setState(initState(m, seed));
    const hist = await train(b, data, {
      epochs, batch: BATCH, seed, maxSteps: stepsPerEpoch, testLimit: testN, progress: new Progress(),
      lr: (epoch, _s, _n, g) => lrAt(lr, epoch - 1, g), swa: { start: swaStart, bn: m.graphs.some((g) => g.name === 'swa_bn') },
    });
    await b.dispose();
    const last = hist[hist.length - 1];
    row.sgdStart.push(hist[swaStart - 1].test_accuracy * 100);
    row.sgdEnd.push(last.test_accuracy * 100);
    row.swaEnd.push(last.swa_test_accuracy! * 100);
    console.log(`${arm.key} seed ${seed}: SGD@${swaStart} ${row.sgdStart.at(-1)!.toFixed(2)}%  SGD@${epochs} ${row.sgdEnd.at(-1)!.toFixed(2)}%  SWA@${epochs} ${row.swaEnd.at(-1)!.toFixed(2)}%`);
  }
  rows.push(row);
}
const minutes = (performance.now() - t0) / 60000;

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const std = (a: number[]) => (a.length < 2 ? 0 : Math.sqrt(a.reduce((s, x) => s + (x - mean(a)) ** 2, 0) / (a.length - 1)));
const cell = (a: number[]) => (a.length > 1 ? `${mean(a).toFixed(2)} ± ${std(a).toFixed(2)}` : mean(a).toFixed(2));
const where = gpu ? `WebGPU on ${gpu.adapterDescription}` : 'the CPU reference interpreter';
const table = [
  `LeNet-5, Fashion-MNIST: ${epochs} epochs of ${stepsPerEpoch} batches of ${BATCH} (${epochs * stepsPerEpoch * BATCH} images; a fresh seeded shuffle of the ` +
  `60,000 training images per epoch), test accuracy on the first ${testN} of the 10,000 test images; SGD momentum 0.9, wd 5e-4, ` +
  `\`--lr-schedule swalp(start=${swaStart},swa_lr=${SWA_LR})\` from lr ${DEFAULT_SGD.lr}, \`--swa start=${swaStart},lr=${SWA_LR}\`; ` +
  `${where}; seeds ${seeds.join(', ')} (mean ± sample std); ${minutes.toFixed(0)} minutes. Produced by \`node dist/bench/recipes-fmnist.js\`.`,
  '',
  `| precision | \`--precision\` | SGD @ epoch ${swaStart} % | SGD @ epoch ${epochs} % | SWA @ epoch ${epochs} % |`,
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.label} | \`${r.spec}\` | ${cell(r.sgdStart)} | ${cell(r.sgdEnd)} | ${cell(r.swaEnd)} |`),
].join('\n');
console.log(table);
const jsonOut = argOf('--json');
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ epochs, swaStart, stepsPerEpoch, testN, seeds, rows }, null, 2) + '\n');
if (!args.includes('--no-readme')) {
  const readme = fs.readFileSync('README.md', 'utf8');
  const a = readme.indexOf(BEGIN), b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
  fs.writeFileSync('README.md', readme.slice(0, a + BEGIN.length) + '\n' + table + '\n' + readme.slice(b));
}
if (device) await device.shutdownGpu();
