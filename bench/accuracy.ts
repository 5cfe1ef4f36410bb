/**
 * `npm run accuracy [-- --epochs N] [-- --seeds 0,1,2] [-- --only KEY,KEY] [-- --no-readme]`: LeNet-5 on MNIST (the
 * default recipe) in each precision recipe of bench/recipes.ts on WebGPU, and the table of final test accuracies
 * written into the README between the accuracy-table markers. Anyone can rerun it; it takes a few minutes per seed
 * on lavapipe. A recipe with a precision schedule (CPT) gets its widths per step as `lpc run` gives them. `--only`
 * reruns the named recipes and keeps the README's rows of the others (same settings assumed).
 */
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { parsePolicy } from '../ir/precision/index.js';
import { runPasses } from '../passes/pipeline.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { train } from '../runtime/train/train.js';
import { Progress } from '../runtime/train/progress.js';
import { tunedWebGpuBackend } from '../runtime/cli/backends.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { epochBatches } from '../runtime/data/batches.js';
import { DEFAULT_SGD, RECIPES, scheduleFor } from './recipes.js';

const args = process.argv.slice(2);
const argOf = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const epochs = Number(argOf('--epochs') ?? 5);
const seeds = (argOf('--seeds') ?? '0').split(',').map(Number);
const only = argOf('--only')?.split(',');
for (const k of only ?? []) if (!RECIPES[k]) throw new Error(`--only: unknown recipe '${k}'; recipes are ${Object.keys(RECIPES).join(', ')}`);
const BATCH = 64;
const BEGIN = '<!-- accuracy-table:begin -->', END = '<!-- accuracy-table:end -->';

const gpu = await getGpu({ quiet: true });
const data = loadDataset('mnist', { sampleShape: [1, 28, 28] });
const rows: { label: string; spec: string; acc?: number[]; line?: string }[] = [];
// the rows --only keeps come from this table alone (other README tables have rows with the same labels)
const readme = fs.readFileSync('README.md', 'utf8');
const kept = readme.slice(readme.indexOf(BEGIN), readme.indexOf(END)).split('\n');
for (const [key, r] of Object.entries(RECIPES)) {
  if (only && !only.includes(key)) {
    const line = kept.find((l) => l.startsWith(`| ${r.label} |`));
    if (!line) throw new Error(`--only: the README's accuracy table has no row for '${r.label}' to keep; rerun it too`);
    rows.push({ label: r.label, spec: r.spec ?? '(none)', line });
    continue;
  }
  const precision = r.spec ? parsePolicy(r.spec) : undefined;
  const m = runPasses(frontEnd('models/lenet5.ts', BATCH), { batch: BATCH, optimizer: DEFAULT_SGD, precision });
  const acc: number[] = [];
  for (const seed of seeds) {
    const b = await tunedWebGpuBackend(gpu, m);
    await b.setState(initState(m, seed));
    const bits = scheduleFor(r.spec, epochs * epochBatches(data.train, BATCH, seed, 1).length);
    const hist = await train(b, data, { epochs, batch: BATCH, seed, lr: () => DEFAULT_SGD.lr, progress: new Progress(), bits });
    await b.dispose();
    acc.push(hist[hist.length - 1].test_accuracy * 100);
    console.log(`${key} seed ${seed}: ${acc[acc.length - 1].toFixed(2)}%`);
  }
  rows.push({ label: r.label, spec: r.spec ?? '(none)', acc });
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const std = (a: number[]) => (a.length < 2 ? 0 : Math.sqrt(a.reduce((s, x) => s + (x - mean(a)) ** 2, 0) / (a.length - 1)));
const cell = (a: number[]) => (a.length > 1 ? `${mean(a).toFixed(2)} ± ${std(a).toFixed(2)}` : mean(a).toFixed(2));
const table = [
  `LeNet-5, MNIST (8,000 train / 2,000 test), ${epochs} epochs of the default recipe, WebGPU on ${gpu.adapterDescription}, ` +
  `seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}${seeds.length > 1 ? ' (mean ± std)' : ''}. Produced by \`npm run accuracy\`.`,
  '',
  '| precision | `--precision` | test accuracy % |',
  '|---|---|---|',
  ...rows.map((r) => r.line ?? `| ${r.label} | \`${r.spec}\` | ${cell(r.acc!)} |`),
].join('\n');
console.log(table);
if (!args.includes('--no-readme')) {
  const readme = fs.readFileSync('README.md', 'utf8');
  const a = readme.indexOf(BEGIN), b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
  fs.writeFileSync('README.md', readme.slice(0, a + BEGIN.length) + '\n' + table + '\n' + readme.slice(b));
}
await shutdownGpu();
