/**
 * `npm run build && node dist/bench/pytorch-transformer.js [--seeds 0,1,2] [--steps 30] [--losses 20] [--batch 8]
 *   [--seq-len 32] [--val 64] [--optimizer 'adamw(lr=3e-4)'] [--backend webgpu|cpu] [--python python3] [--no-readme]`:
 * models/transformer-lm.ts (4 layers, width 256, 4 heads; T = --seq-len) on sotu:chars in lpc and in PyTorch (fp32),
 * per seed, as bench/pytorch-lenet5.ts does for LeNet-5:
 *   - lpc (as `lpc run lm.lpc --data sotu:chars --seed S --max-steps N` trains);
 *   - PyTorch from lpc's initial weights, visiting the windows in lpc's order (bench/pytorch_transformer.py --mode lpc);
 *   - PyTorch from its own initialisation and shuffling (torch.manual_seed(S); --mode torch).
 * It checks that lpc and PyTorch from the same start give the same first loss (≤ 1e-5 relative), reports the largest
 * relative difference of their losses over the first --losses steps and for how many steps they agree to 1e-4, and
 * the validation loss and perplexity (the first --val validation windows) after --steps steps per arm. The table goes
 * into the README between the pytorch-transformer-table markers. Needs PyTorch and numpy (see pytorch-lenet5.ts).
 */
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { formatOptimizer, parseOptimizer } from '../passes/optimizer.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { train } from '../runtime/train/train.js';
import { Progress } from '../runtime/train/progress.js';
import { Exchange, agreeingSteps, rel, seedList, torchVersion as probeTorch } from './pytorch-common.js';
import { Flags, mean, meanStd, openRunner, std, writeSection } from './common.js';

const flags = new Flags();
const seeds = flags.ints('--seeds', '0,1,2'), steps = flags.int('--steps', 30), LOSSES = Math.min(flags.int('--losses', 20), steps);
const BATCH = flags.int('--batch', 8), T = flags.int('--seq-len', 32), VAL = flags.int('--val', 64);
const optimizer = parseOptimizer(flags.str('--optimizer') ?? 'adamw(lr=3e-4)');
if (optimizer.kind === 'sgd') throw new Error('--optimizer: this comparison runs Adam or AdamW');
const python = flags.str('--python') ?? 'python3', backend = flags.str('--backend') ?? 'webgpu';
const MODEL = 'models/transformer-lm.ts', WIDTH = 256, HEADS = 4, FIRST_TOL = 1e-5, STEP_TOL = 1e-4;
if (VAL % BATCH) throw new Error(`--val must be a multiple of --batch (${BATCH}), so that no validation batch is padded`);

const torchVersion = probeTorch(python);
const ex = new Exchange();
const data = loadDataset('sotu:chars', { sampleShape: [T] });
const V = data.train.classes;
const m = runPasses(frontEnd(MODEL, BATCH, { input: [T], classes: V }), { batch: BATCH, optimizer, log: () => {} });
ex.writeSplit('train', data.train);
ex.writeSplit('test', data.test);
ex.writeInit(m, seeds, { batch: BATCH, T, V, width: WIDTH, heads: HEADS, val: VAL, ...optimizer });
ex.writeOrders(data.train.n, seeds, 1);

interface Run { losses: number[]; val_loss: number }
const pytorch = (mode: 'lpc' | 'torch') => ex.python<Run & { seed: number }>(python, 'pytorch_transformer.py',
  ['--mode', mode, '--seeds', seeds.join(','), '--steps', String(steps), '--losses', String(LOSSES)]);

// PyTorch first: it is the quicker side, and a broken Python set-up fails before lpc's runs.
console.log(`PyTorch ${torchVersion} from lpc's start and order …`);
const same = pytorch('lpc');
console.log(`PyTorch ${torchVersion} from its own initialisation and shuffling …`);
const own = pytorch('torch');
const quiet = new Progress({ write: () => true, isTTY: false } as unknown as NodeJS.WriteStream, false);
const runner = await openRunner(backend);
const lpc = new Map<number, Run>();
for (const seed of seeds) {
  const b = await runner.make(m);
  await b.setState(initState(m, seed));
  const losses: number[] = [];
  const [h] = await train(b, data, {
    epochs: 1, batch: BATCH, seed, maxSteps: steps, testLimit: VAL, lr: () => optimizer.lr, progress: quiet,
    onStep: (_s, loss) => { if (losses.length < LOSSES) losses.push(loss); },
  });
  await b.dispose();
  lpc.set(seed, { losses, val_loss: h.test_loss });
  console.log(`seed ${seed}: validation loss lpc ${h.test_loss.toFixed(4)}, PyTorch from the same start ` +
    `${same.get(seed)!.val_loss.toFixed(4)}, from its own ${own.get(seed)!.val_loss.toFixed(4)}`);
}
await runner.close();

const first = Math.max(...seeds.map((s) => rel(lpc.get(s)!.losses[0], same.get(s)!.losses[0])));
const worst = Math.max(...seeds.flatMap((s) => lpc.get(s)!.losses.map((x, i) => rel(x, same.get(s)!.losses[i]))));
const agree = seeds.map((s) => agreeingSteps(lpc.get(s)!.losses, same.get(s)!.losses, STEP_TOL)).sort((x, y) => x - y);
console.log('step | ' + seeds.map((s) => `seed ${s}: lpc / PyTorch (rel. diff)`).join(' | '));
for (let i = 0; i < LOSSES; i++)
  console.log(`${i + 1} | ` + seeds.map((s) => { const a = lpc.get(s)!.losses[i], b = same.get(s)!.losses[i]; return `${a.toFixed(5)} / ${b.toFixed(5)} (${rel(a, b).toExponential(1)})`; }).join(' | '));
if (!(first <= FIRST_TOL)) throw new Error(`lpc and PyTorch disagree on the first loss from the same start: ${first.toExponential(2)} relative`);

const vals = (runs: Map<number, Run>) => seeds.map((s) => runs.get(s)!.val_loss);
const arms: [string, number[]][] = [
  [`lpc (${backend === 'cpu' ? 'CPU interpreter' : 'WebGPU'})`, vals(lpc)],
  [`PyTorch ${torchVersion}, lpc's initial weights and order`, vals(same)],
  [`PyTorch ${torchVersion}, its own initialisation and shuffling`, vals(own)],
];
const f4 = (a: number[]) => (a.length > 1 ? `${mean(a).toFixed(4)} ± ${std(a).toFixed(4)}` : mean(a).toFixed(4));
const table = [
  `\`${MODEL}\` (4 layers, width 256, 4 heads, T = ${T}) on sotu:chars, batch ${BATCH},` +
  ` ${formatOptimizer(optimizer)} at a constant rate, ${steps} steps, seeds ${seedList(seeds)} (${seeds.length} runs per row);` +
  ` lpc on ${runner.where}, PyTorch fp32 on the CPU (one thread). From the same start, lpc's and PyTorch's first losses` +
  ` agree to ${first.toExponential(1)} relative, their losses over the first ${LOSSES} steps to ${worst.toExponential(1)}` +
  ` (to ${STEP_TOL} for at least the first ${agree[0]} steps of every seed). Validation: the first ${VAL} validation windows` +
  ` (${VAL * T} characters). Produced by \`node dist/bench/pytorch-transformer.js${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\`.`,
  '',
  '| run | validation loss (nats/char, mean ± std) | perplexity (mean ± std) | per seed |',
  '|---|---|---|---|',
  ...arms.map(([label, a]) => `| ${label} | ${f4(a)} | ${meanStd(a.map(Math.exp))} | ${a.map((x) => x.toFixed(4)).join(', ')} |`),
  '',
  `| step | ${seeds.map((s) => `seed ${s}: lpc / PyTorch loss`).join(' | ')} | largest relative difference |`,
  `|---|${seeds.map(() => '---|').join('')}---|`,
  ...[1, 2, 5, 10, 15, 20, 30, 50].filter((i) => i <= LOSSES).map((i) => `| ${i} | ` +
    seeds.map((s) => `${lpc.get(s)!.losses[i - 1].toFixed(5)} / ${same.get(s)!.losses[i - 1].toFixed(5)}`).join(' | ') +
    ` | ${Math.max(...seeds.map((s) => rel(lpc.get(s)!.losses[i - 1], same.get(s)!.losses[i - 1]))).toExponential(1)} |`),
].join('\n');
console.log(table);
console.log(`mean difference lpc − PyTorch (same start): ${(mean(arms[0][1]) - mean(arms[1][1])).toExponential(2)} nats; ` +
  `seed-to-seed std: lpc ${std(arms[0][1]).toFixed(4)}, PyTorch own ${std(arms[2][1]).toFixed(4)}`);
if (!flags.has('--no-readme')) writeSection('README.md', 'pytorch-transformer-table', table);
