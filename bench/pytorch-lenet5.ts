/**
 * `npm run build && node dist/bench/pytorch-lenet5.js [--seeds 0,1,2] [--epochs 5] [--python python3] [--no-readme]`:
 * lpc's default MNIST recipe against PyTorch itself on the same 8,000/2,000 split, per seed:
 *   - lpc on WebGPU (as `lpc run lenet5.lpc --data mnist --seed S` trains);
 *   - PyTorch from lpc's initial weights, visiting the images in lpc's order (bench/pytorch_lenet5.py --mode lpc);
 *   - PyTorch from its own initialisation and shuffling (torch.manual_seed(S); --mode torch).
 * It checks that lpc and PyTorch, from the same start, give the same first loss (≤ 1e-5 relative: the same model,
 * weights and data) and reports for how many steps their loss curves agree (≤ 1e-4) before f32 rounding differences
 * grow apart. The table of final accuracies goes into the README between
 * the pytorch-table markers. Needs PyTorch (Debian: `apt-get install python3-torch`, PyTorch 1.13) and numpy; `--python`
 * names the interpreter that has them.
 */
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { train } from '../runtime/train/train.js';
import { Progress } from '../runtime/train/progress.js';
import { Exchange, agreeingSteps, rel, seedList, torchVersion as probeTorch } from './pytorch-common.js';
import { Flags, mean, meanStd, openRunner, writeSection } from './common.js';
import { DEFAULT_SGD } from './recipes.js';

const flags = new Flags();
const seeds = flags.ints('--seeds', '0,1,2'), epochs = flags.int('--epochs', 5);
const python = flags.str('--python') ?? 'python3';
const BATCH = 64, LOSSES = 50, FIRST_TOL = 1e-5, STEP_TOL = 1e-4, BAR = 96.5;

const torchVersion = probeTorch(python);

// The split, lpc's initial weights and lpc's per-epoch orders, as raw little-endian arrays.
const ex = new Exchange();
const data = loadDataset('mnist', { sampleShape: [1, 28, 28] });
const m = runPasses(frontEnd('models/lenet5.ts', BATCH), { batch: BATCH, optimizer: DEFAULT_SGD });
ex.writeSplit('train', data.train);
ex.writeSplit('test', data.test);
ex.writeInit(m, seeds, { batch: BATCH, ...DEFAULT_SGD });
ex.writeOrders(data.train.n, seeds, epochs);

interface Run { accuracy: number[]; losses: number[] }
function pytorch(mode: 'lpc' | 'torch'): Map<number, Run> {
  return ex.python<Run & { seed: number }>(python, 'pytorch_lenet5.py',
    ['--mode', mode, '--seeds', seeds.join(','), '--epochs', String(epochs), '--losses', String(LOSSES)]);
}

// PyTorch first: it is the quicker side, and a broken Python set-up fails before lpc's runs.
console.log(`PyTorch ${torchVersion} from lpc's start and order …`);
const same = pytorch('lpc');
console.log(`PyTorch ${torchVersion} from its own initialisation and shuffling …`);
const own = pytorch('torch');
const runner = await openRunner('webgpu');
const lpc = new Map<number, Run>();
for (const seed of seeds) {
  const b = await runner.make(m);
  await b.setState(initState(m, seed));
  const losses: number[] = [];
  const hist = await train(b, data, {
    epochs, batch: BATCH, seed, lr: () => DEFAULT_SGD.lr, progress: new Progress(),
    onStep: (_s, loss) => { if (losses.length < LOSSES) losses.push(loss); },
  });
  await b.dispose();
  lpc.set(seed, { accuracy: hist.map((h) => h.test_accuracy * 100), losses });
  console.log(`lpc seed ${seed}: ${lpc.get(seed)!.accuracy.at(-1)!.toFixed(2)}% (PyTorch from the same start: ` +
    `${same.get(seed)!.accuracy.at(-1)!.toFixed(2)}%, from its own: ${own.get(seed)!.accuracy.at(-1)!.toFixed(2)}%)`);
}
await runner.close();

// Same start, same order: the first loss (initial weights, first batch) must agree; then the curves agree until
// f32 rounding differences (another summation order) grow — how many steps that takes depends on the seed.
const first = Math.max(...seeds.map((s) => rel(lpc.get(s)!.losses[0], same.get(s)!.losses[0])));
if (!(first <= FIRST_TOL)) throw new Error(`lpc and PyTorch disagree on the first loss from the same start: ${first.toExponential(2)} relative`);
const agree = seeds.map((s) => agreeingSteps(lpc.get(s)!.losses, same.get(s)!.losses, STEP_TOL)).sort((x, y) => x - y);

// Accuracies on 2,000 images are multiples of 0.05%: rounded, so that 96.50 computed in f32 as 96.4999… counts as 96.5.
const final = (runs: Map<number, Run>) => seeds.map((s) => Math.round(runs.get(s)!.accuracy.at(-1)! * 100) / 100);
const arms: [string, number[]][] = [
  ['lpc (WebGPU)', final(lpc)],
  [`PyTorch ${torchVersion}, lpc's initial weights and order`, final(same)],
  [`PyTorch ${torchVersion}, its own initialisation and shuffling`, final(own)],
];
const fmt = (a: number[]) => `${meanStd(a)} | ${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)} | ${a.filter((x) => x >= BAR).length}/${a.length}`;
const table = [
  `LeNet-5, MNIST (8,000 train / 2,000 test), ${epochs} epochs of the default recipe, seeds ${seedList(seeds)}` +
  ` (${seeds.length} runs per row); ${runner.where}. From the same start, lpc's and PyTorch's first losses agree to` +
  ` ${first.toExponential(1)} relative, and their loss curves to ${STEP_TOL} for at least the first ${agree[0]} steps` +
  ` (median ${agree[agree.length >> 1]} of the ${LOSSES} compared); then f32 rounding` +
  ` differences grow and the runs part. Produced by \`node dist/bench/pytorch-lenet5.js\`.`,
  '',
  `| run | test accuracy % (mean ± std) | min–max | runs ≥ ${BAR}% |`,
  '|---|---|---|---|',
  ...arms.map(([label, a]) => `| ${label} | ${fmt(a)} |`),
].join('\n');
console.log(table);
console.log(`per seed (lpc / PyTorch same start / PyTorch own): ${seeds.map((s, i) => `${s}: ${arms.map(([, a]) => a[i].toFixed(2)).join(' / ')}`).join('; ')}`);
console.log(`mean difference lpc − PyTorch (same start): ${(mean(arms[0][1]) - mean(arms[1][1])).toFixed(2)} points`);
if (!flags.has('--no-readme')) writeSection('README.md', 'pytorch-table', table);
