/**
 * The cost of `lpc run --quant-stats` (and of `--check-numerics`): LeNet-5 training steps with SWALP's 8-bit block
 * floating point on every role, measured side by side in one process — rounds alternate the arms (off, quant-stats
 * every step, check-numerics) over the same batches from the same state — and the median ms per step of each arm.
 * With both flags off the loop runs exactly the steps (no readback, no extra kernel: test/unit/numerics.test.ts).
 *
 *   npm run build && node dist/bench/quant-stats.js [--backend cpu|webgpu] [--batch 64] [--steps 4] [--rounds 3]
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { parsePolicy } from '../ir/precision/index.js';
import { DEFAULT_SGD } from './recipes.js';
import { loadDataset } from '../runtime/data/index.js';
import { initState } from '../runtime/train/init.js';
import { TrainOptions, train } from '../runtime/train/train.js';
import { Progress } from '../runtime/train/progress.js';
import { Flags, openRunner } from './common.js';

const SWALP = 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic';
const f = new Flags();
const backend = f.str('--backend') ?? 'cpu', batch = f.int('--batch', 64), steps = f.int('--steps', 4), rounds = f.int('--rounds', 3);
const quiet = new Progress({ write: () => true, isTTY: false } as unknown as NodeJS.WriteStream, false);
const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

const m = runPasses(frontEnd('models/lenet5.ts', batch), { batch, optimizer: DEFAULT_SGD, precision: parsePolicy(SWALP), fuse: true });
const data = loadDataset('mnist', { sampleShape: [1, 28, 28], seed: 0 });
const noTest = { ...data.test, n: 0, images: new Float32Array(0), labels: new Int32Array(0) };
const runner = await openRunner(backend);
const b = await runner.make(m);
const metrics = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-bench-qs-')), 'm.jsonl');
const arms: [string, Partial<TrainOptions>][] = [
  ['off', {}],
  ['--quant-stats 1', { numerics: { module: m, quantStats: 1 } }],
  ['--check-numerics', { numerics: { module: m, check: true } }],
];
const times = new Map<string, number[]>(arms.map(([k]) => [k, []]));
const init = initState(m, 0);
// one warm-up step of each arm (first-use JIT, pipelines), then `rounds` rounds of `steps` steps per arm
for (const [round, n] of [[-1, 1], ...Array.from({ length: rounds }, (_, r) => [r, steps])]) {
  for (const [name, extra] of arms) {
    await b.setState(init); // same state and batches in every arm
    let last = 0;
    const t: number[] = [];
    await train(b, { train: data.train, test: noTest }, {
      epochs: 1, batch, seed: 0, maxSteps: n, lr: () => DEFAULT_SGD.lr, progress: quiet, metricsPath: metrics, ...extra,
      onStep: () => { const now = performance.now(); t.push(now - last); last = now; },
    });
    // step i's time runs from the previous step's onStep (the first from the start of train(): excluded)
    if (round >= 0) times.get(name)!.push(...t.slice(1));
    last = performance.now();
  }
}
await b.dispose();
await runner.close();
const off = median(times.get('off')!);
console.log(`LeNet-5, batch ${batch}, SWALP bfp<8> on every role (${arms.length} arms side by side, ${rounds} rounds of ${steps} steps, median ms per step; ${runner.where}):`);
for (const [name] of arms) {
  const v = median(times.get(name)!);
  console.log(`  ${name.padEnd(18)} ${v.toFixed(1).padStart(9)} ms/step  (${(v / off).toFixed(2)}× off${name === 'off' ? '' : `, +${(v - off).toFixed(1)} ms`})`);
}
const per = median(times.get('--quant-stats 1')!) - off;
console.log(`  --quant-stats N adds about ${per.toFixed(1)} ms every N steps: ${(100 * per / off / 10).toFixed(1)}% at N = 10, ${(100 * per / off / 100).toFixed(2)}% at N = 100`);
