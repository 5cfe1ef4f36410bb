/**
 * `npm run build && node dist/bench/seq-step.js [--model models/transformer-lm.ts] [--batch 8] [--seq-len 32]
 *   [--heads 4] [--rounds 3] [--steps 2] [--python /usr/bin/python3] [--threads 1] [--no-tfjs] [--no-torch]
 *   [--tune-budget off|full|S] [--no-readme] [--json FILE]`
 *
 * The Transformer's training step (issue 29), not a test: lpc on the WebGPU adapter, the same model in
 * tfjs-backend-webgpu on the same Dawn device in this process (bench/tfjs-transformer.ts) and in PyTorch fp32 on
 * the CPU (bench/pytorch_seq_step.py, from lpc's initial weights exported as bench/pytorch-transformer.ts does), all
 * with Adam (lr 3e-4) on the same sotu:chars batches. Before anything is timed the three first losses (same weights,
 * same batch, no update yet) must agree within 1e-4 relative: the same model. Then `--rounds` rounds, each timing
 * `--steps` steps of every framework in turn (rotating which goes first; PyTorch in a child process per round that
 * times its own steps after one untimed step, so its start-up is not counted). A step is the forward, backward,
 * optimizer update and the loss read back. Reports the median ms per step, tokens/s and each framework's time
 * relative to lpc's; then the bytes of saved activations from `lpc mem` in f32, with DIVISION's saving and with
 * bf16 saving. PyTorch runs one thread by default (as bench/pytorch_transformer.py): on a shared 2-core machine more
 * threads oversubscribe the cores. The table goes into the README between the seq-step-table markers.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { frontEnd } from '../dsl/frontend.js';
import { runPasses } from '../passes/pipeline.js';
import { loadDataset, epochBatches } from '../runtime/data/index.js';
import { initState, stateDecls } from '../runtime/train/init.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { parseTuneBudget, tunedWebGpuBackend } from '../runtime/cli/backends.js';
import { Flags, writeSection } from './common.js';
import { Exchange, rel, torchVersion } from './pytorch-common.js';

const flags = new Flags();
const MODEL = flags.str('--model') ?? 'models/transformer-lm.ts';
const B = flags.int('--batch', 8), T = flags.int('--seq-len', 32), HEADS = flags.int('--heads', 4);
const rounds = flags.int('--rounds', 3), perRound = flags.int('--steps', 2);
const python = flags.str('--python') ?? '/usr/bin/python3', threads = flags.int('--threads', 1);
const withTfjs = !flags.has('--no-tfjs'), withTorch = !flags.has('--no-torch');
const budget = parseTuneBudget(flags.str('--tune-budget') ?? 'off');
const LR = 3e-4, TOL = 1e-4;
const optimizer = { kind: 'adam' as const, lr: LR, betas: [0.9, 0.999] as [number, number], eps: 1e-8, wd: 0 };
const log = (s: string) => process.stderr.write(`seq-step: ${s}\n`);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

const data = loadDataset('sotu:chars', { sampleShape: [T] });
const V = data.train.classes;
const m = runPasses(frontEnd(MODEL, B, { input: [T], classes: V }), { batch: B, optimizer, log: () => {} });
const decls = stateDecls(m).filter((d) => d.kind === 'param');
const D = decls.find((d) => d.name === 'tok.weight')!.shape[1];
const layers = new Set(decls.map((d) => d.name.split('.')[0]).filter((n) => /^h\d+$/.test(n))).size;
const K = 1 + perRound;  // batches per round: the first (loss check / warm-up) and the timed ones
const all = epochBatches(data.train, B, 0, 1);
const batches = Array.from({ length: K }, (_, i) => { const b = all.get(i); return { x: Int32Array.from(b.x), y: Int32Array.from(b.y) }; });

const gpu = await getGpu({ quiet: true });
log(`adapter ${gpu.adapterDescription}; ${MODEL} (${layers} layers, width ${D}, ${HEADS} heads), batch ${B} × T ${T}`);
const state = initState(m, 0);

// lpc: a fresh start per round, so every framework runs the same K batches from the same weights each round
const lpc = await tunedWebGpuBackend(gpu, m, { budget });
const lrBuf = Float32Array.of(LR);
const lpcStep = async (k: number) => (await lpc.run('train', { ...batches[k], lr: lrBuf }, { seed: 0, step: k }, ['loss'])).loss[0];
await lpc.setState(state);
const lpcLoss0 = await lpcStep(0);   // also compiles every pipeline (untimed)
log(`lpc first loss ${lpcLoss0}`);

// tfjs on the same device
let tfjsRun: (() => Promise<number[]>) | undefined;
let tfjsLoss0: number | undefined;
if (withTfjs) {
  const { useTfjsWebGpu } = await import('./tfjs-peer.js');
  const { TfjsTransformer } = await import('./tfjs-transformer.js');
  await useTfjsWebGpu(gpu);
  const shapes = new Map(decls.map((d) => [d.name, d.shape]));
  const make = () => new TfjsTransformer(state, shapes, { V, T, D, heads: HEADS, layers }, LR);
  const first = make();
  tfjsLoss0 = await first.evalLoss(batches[0].x, batches[0].y);
  await first.step(batches[0].x, batches[0].y);  // tfjs compiles its shaders at first use: untimed
  first.dispose();
  log(`tfjs first loss ${tfjsLoss0}`);
  tfjsRun = async () => {
    const net = make();
    await net.step(batches[0].x, batches[0].y);
    const ms: number[] = [];
    for (let k = 1; k < K; k++) { const t0 = performance.now(); await net.step(batches[k].x, batches[k].y); ms.push(performance.now() - t0); }
    net.dispose();
    return ms;
  };
}

// PyTorch in a child process per round
let torchRun: (() => number[]) | undefined;
let torchLoss0: number | undefined, torchText = '';
if (withTorch) {
  torchText = `PyTorch ${torchVersion(python)} fp32 on the CPU (${threads} thread${threads === 1 ? '' : 's'})`;
  const ex = new Exchange();
  ex.writeInit(m, [0], { batch: B, T, V, width: D, heads: HEADS, ...optimizer });
  ex.write('steps_x.i32', Int32Array.from(batches.flatMap((b) => [...b.x])));
  ex.write('steps_y.i32', Int32Array.from(batches.flatMap((b) => [...b.y])));
  torchRun = () => {
    const r = ex.python<{ seed: number; loss0: number; ms: number[] }>(python, 'pytorch_seq_step.py', ['--steps', String(perRound), '--threads', String(threads)]).get(0)!;
    torchLoss0 = r.loss0;
    return r.ms;
  };
}

const lpcRun = async () => {
  await lpc.setState(state);
  await lpcStep(0);
  const ms: number[] = [];
  for (let k = 1; k < K; k++) { const t0 = performance.now(); await lpcStep(k); ms.push(performance.now() - t0); }
  return ms;
};
const arms: [string, () => Promise<number[]> | number[]][] = [['lpc', lpcRun]];
if (tfjsRun) arms.push(['tfjs', tfjsRun]);
if (torchRun) arms.push(['torch', torchRun]);
const times = new Map<string, number[]>(arms.map(([k]) => [k, []]));
for (let r = 0; r < rounds; r++)
  for (let i = 0; i < arms.length; i++) {
    const [k, run] = arms[(i + r) % arms.length];
    const ms = await run();
    times.get(k)!.push(...ms);
    log(`round ${r + 1} ${k}: ${ms.map((t) => t.toFixed(0)).join(', ')} ms`);
  }
await lpc.dispose();

for (const [k, l] of [['tfjs', tfjsLoss0], ['PyTorch', torchLoss0]] as const)
  if (l !== undefined && !(rel(l, lpcLoss0) <= TOL)) throw new Error(`${k}'s first loss ${l} differs from lpc's ${lpcLoss0}: not the same model`);

const label: Record<string, string> = {
  lpc: `lpc (WebGPU on ${gpu.adapterDescription})`,
  tfjs: 'tfjs-backend-webgpu (same adapter and device)',
  torch: torchText,
};
const lpcMed = median(times.get('lpc')!);
const rows = arms.map(([k]) => {
  const med = median(times.get(k)!);
  return { key: k, ms: med, tokens_per_s: (B * T) / (med / 1000), vs_lpc: med / lpcMed };
});

// saved activations from `lpc mem` (the CLI, as a user would run it)
const mem = (precision?: string) => {
  const args = ['bin/lpc.js', 'mem', MODEL, '--batch', String(B), '--input', String(T), '--classes', String(V), '--json', ...(precision ? ['--precision', precision] : [])];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`lpc mem failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { saved_activations_bytes: number; peak_bytes: number };
};
const saves: [string, string | undefined][] = [['f32', undefined], ['DIVISION', 'save=division(block=8,bits=2)'], ['bf16', 'save=bf16']];
const memRows = saves.map(([k, p]) => ({ key: k, precision: p, ...mem(p) }));
await shutdownGpu();

const firstLosses = [`lpc ${lpcLoss0.toFixed(6)}`, ...(tfjsLoss0 !== undefined ? [`tfjs ${tfjsLoss0.toFixed(6)}`] : []), ...(torchLoss0 !== undefined ? [`PyTorch ${torchLoss0.toFixed(6)}`] : [])];
const MB = (b: number) => (b / 1e6).toFixed(1);
const table = [
  `\`${MODEL}\` (${layers} layers, width ${D}, ${HEADS} heads, V ${V}), batch ${B} × T ${T} (${B * T} tokens per step), Adam lr ${LR}, ` +
  `sotu:chars batches; first losses (same weights and batch) ${firstLosses.join(', ')}; ${rounds} rounds × ${perRound} timed steps ` +
  'per framework, alternating; median ms per step. Produced by `node dist/bench/seq-step.js`.',
  '',
  '| framework | ms/step (median) | tokens/s | time / lpc\'s |',
  '|---|---|---|---|',
  ...rows.map((r) => `| ${label[r.key].replace(/\|/g, '\\|')} | ${r.ms.toFixed(0)} | ${r.tokens_per_s.toFixed(0)} | ${r.vs_lpc.toFixed(2)} |`),
  '',
  `Saved activations (\`lpc mem ${MODEL} --batch ${B} --input ${T} --json\`, Adam):`,
  '',
  '| saving | `--precision` | saved activations (MB) | peak (MB) |',
  '|---|---|---|---|',
  ...memRows.map((r) => `| ${r.key} | \`${r.precision ?? '(none)'}\` | ${MB(r.saved_activations_bytes)} | ${MB(r.peak_bytes)} |`),
].join('\n');
console.log(table);
if (!flags.has('--no-readme')) writeSection('README.md', 'seq-step-table', table);
const out = flags.str('--json');
if (out) fs.writeFileSync(out, JSON.stringify({ adapter: gpu.adapterDescription, model: MODEL, B, T, rows, times: Object.fromEntries(times), memRows }, null, 2) + '\n');
