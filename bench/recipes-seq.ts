/**
 * `npm run build && node dist/bench/recipes-seq.js [--model models/transformer-lm-small.ts] [--epochs 4] [--steps 100]
 *   [--seq-len 64] [--batch 16] [--test-limit 512] [--seeds 0] [--optimizer 'adamw(lr=3e-3)'] [--backend webgpu|cpu]
 *   [--only fp32,cpt,…] [--out DIR [--reuse]] [--no-readme] [--json FILE]`
 *
 * Low-precision recipes on a Transformer language model (issue 29): validation bits per character on sotu:chars
 * after the same number of steps for fp32, SWALP-style bfp<8>, CPT's cyclic precision (and its static 8-bit
 * baseline) and FP8 activations/errors. Every run is the `lpc` CLI itself (bin/lpc.js compile, then run with
 * --metrics), so the commands in the table are exactly what ran; the table goes into the README between the
 * seq-recipes-table markers. An "epoch" is --steps batches (--max-steps) of a fresh seeded shuffle of the training
 * windows, evaluated on the first --test-limit validation windows. CPT gets one cosine cycle per epoch, so every
 * evaluation runs at the top of a cycle (8 bits), as CPT evaluates. `--reuse` reads the runs already finished in
 * --out with the same command instead of repeating them (to add seeds to a table).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Flags, mean, meanStd, writeSection } from './common.js';
import { CPT_MINMAX8, RECIPES, cptSpec } from './recipes.js';

const flags = new Flags();
const MODEL = flags.str('--model') ?? 'models/transformer-lm-small.ts';
const epochs = flags.int('--epochs', 4), steps = flags.int('--steps', 100), T = flags.int('--seq-len', 64), batch = flags.int('--batch', 16);
const testLimit = flags.int('--test-limit', 512), seeds = flags.ints('--seeds', '0');
const optimizer = flags.str('--optimizer') ?? 'adamw(lr=3e-3)', backend = flags.str('--backend') ?? 'webgpu';
const out = flags.str('--out') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-seq-recipes-'));
fs.mkdirSync(out, { recursive: true });

interface Arm { key: string; label: string; spec?: string }
const ARMS: Arm[] = [
  { key: 'fp32', label: 'fp32' },
  { key: 'swalp_bfp8', label: 'SWALP-style bfp<8> stochastic: W, A, E, G, M (Adam\'s first moment)', spec: RECIPES.swalp_bfp8.spec },
  { key: 'minmax8', label: 'minmax 8 bits, static (CPT\'s 8-bit baseline), CPT placement', spec: CPT_MINMAX8 },
  { key: 'cpt', label: `CPT: forward 3→8 bits cyclic (${epochs} cycles), backward 8`, spec: cptSpec(epochs) },
  { key: 'fp8', label: 'FP8: activations e4m3, errors e5m2', spec: 'A=e4m3 E=e5m2' },
  { key: 'fp8_ls', label: 'FP8 with a static loss scale of 1024', spec: 'A=e4m3 E=e5m2 loss_scale=1024' },
];
const only = flags.str('--only')?.split(',');
const arms = only ? ARMS.filter((a) => only.includes(a.key)) : ARMS;
if (only && arms.length !== only.length) throw new Error(`--only: known arms are ${ARMS.map((a) => a.key).join(', ')}`);

const quote = (s: string) => (/^[\w./=:,-]+$/.test(s) ? s : `'${s}'`);
function lpc(args: string[]): void {
  console.log(`$ lpc ${args.map(quote).join(' ')}`);
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`lpc ${args[0]} failed (${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
}
const compileArgs = (a: Arm, art: string) =>
  ['compile', MODEL, '-o', art, '--seq-len', String(T), '--batch', String(batch), '--optimizer', optimizer, ...(a.spec ? ['--precision', a.spec] : [])];
const runArgs = (art: string, seed: number | string, metrics: string) =>
  ['run', art, '--data', 'sotu:chars', '--epochs', String(epochs), '--max-steps', String(steps), '--test-limit', String(testLimit),
    '--seed', String(seed), '--backend', backend, '--tune-budget', 'off', '--metrics', metrics];

interface Epoch { test_bits_per_char: number; test_perplexity: number; seconds: number; steps: number }
interface Row { arm: Arm; mid: number[]; end: number[]; ppl: number[]; msPerStep: number[] }
const mid = Math.max(1, Math.round(epochs / 2));
const reuse = flags.has('--reuse');
let trainSeconds = 0;
const rows: Row[] = [];
for (const arm of arms) {
  const art = path.join(out, `${arm.key}.lpc`);
  lpc(compileArgs(arm, art));
  const row: Row = { arm, mid: [], end: [], ppl: [], msPerStep: [] };
  for (const seed of seeds) {
    const metrics = path.join(out, `${arm.key}-s${seed}.jsonl`);
    const runText = JSON.stringify([compileArgs(arm, ''), runArgs('', seed, '')]);
    // --reuse: a finished run of the same command in --out is read, not repeated (adding seeds to a table)
    if (!(reuse && fs.existsSync(metrics) && fs.existsSync(`${metrics}.cmd`) && fs.readFileSync(`${metrics}.cmd`, 'utf8') === runText)) {
      fs.rmSync(metrics, { force: true });
      fs.rmSync(`${metrics}.cmd`, { force: true });
      lpc(runArgs(art, seed, metrics));
      fs.writeFileSync(`${metrics}.cmd`, runText);
    }
    const hist = fs.readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.epoch !== undefined && r.test_bits_per_char !== undefined) as Epoch[];
    if (hist.length !== epochs) throw new Error(`${metrics}: expected ${epochs} epoch records, got ${hist.length}`);
    trainSeconds += hist.reduce((a, h) => a + h.seconds, 0);
    row.mid.push(hist[mid - 1].test_bits_per_char);
    row.end.push(hist[epochs - 1].test_bits_per_char);
    row.ppl.push(hist[epochs - 1].test_perplexity);
    row.msPerStep.push((1000 * mean(hist.map((h) => h.seconds))) / steps);
    console.log(`${arm.key} seed ${seed}: bits/char epoch ${mid} ${row.mid.at(-1)!.toFixed(3)}, epoch ${epochs} ${row.end.at(-1)!.toFixed(3)}`);
  }
  rows.push(row);
}
const minutes = trainSeconds / 60;

const fmt3 = (a: number[]) => (a.length > 1 ? `${mean(a).toFixed(3)} ± ${Math.sqrt(a.reduce((s, x) => s + (x - mean(a)) ** 2, 0) / (a.length - 1)).toFixed(3)}` : mean(a).toFixed(3));
const seedText = seeds.length > 1 ? `seeds ${seeds.join(', ')} (mean ± sample std)` : `seed ${seeds[0]} (one run per row)`;
const table = [
  `\`${MODEL}\` (T = ${T}) on sotu:chars, batch ${batch}, \`${optimizer}\` at a constant rate, ${epochs} epochs of ${steps} steps ` +
  `(${epochs * steps * batch * T} training characters; a fresh seeded shuffle of the training windows per epoch), validation bits per ` +
  `character on the first ${testLimit} validation windows (${testLimit * T} characters) after epoch ${mid} and ${epochs}; ${seedText}; ` +
  `\`--backend ${backend}\` (shared, loaded machine: the ms/step column is indicative only); ${minutes.toFixed(0)} minutes of training and evaluation. ` +
  'Produced by `npm run build && node dist/bench/recipes-seq.js`.',
  '',
  `| precision | \`--precision\` | bits/char @ epoch ${mid} | bits/char @ epoch ${epochs} | perplexity @ epoch ${epochs} | ms/step |`,
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.arm.label} | \`${r.arm.spec ?? '(none)'}\` | ${fmt3(r.mid)} | ${fmt3(r.end)} | ${meanStd(r.ppl)} | ${mean(r.msPerStep).toFixed(0)} |`),
  '',
  `Each row is (\`--precision\` from its row${seeds.length > 1 ? '; S = each seed' : ''}):`,
  '',
  '```sh',
  `lpc ${compileArgs({ key: 'ARM', label: '', spec: 'SPEC' }, 'lm.lpc').map(quote).join(' ')}`,
  `lpc ${runArgs('lm.lpc', seeds.length > 1 ? 'S' : seeds[0], 'lm.jsonl').map(quote).join(' ')}`,
  '```',
].join('\n');
console.log(table);
const jsonOut = flags.str('--json');
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ model: MODEL, epochs, steps, T, batch, testLimit, seeds, optimizer, rows }, null, 2) + '\n');
if (!flags.has('--no-readme')) writeSection('README.md', 'seq-recipes-table', table);
