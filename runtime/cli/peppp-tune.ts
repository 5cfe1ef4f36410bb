/**
 * `lpc peppp tune`: PEPPP as a product. For a new data set and a memory budget: embed the configurations that fit the
 * budget with a meta-training error matrix, choose the few most informative ones (ED-MF), train them through the
 * sweep runner (resumable: rerunning the command reuses finished cells), predict every other configuration's error,
 * and print the recommended `--precision` spec and the predicted memory-error frontier, with an SVG of predicted vs
 * measured points (PEPPP's Figure 1a). Memory is PEPPP's accounting of the model at the data set's shape.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlagSpec, Parsed, UsageError, flag, intFlag, parseArgs } from './args.js';
import { LAMBDA_FLAG, RANK_FLAG, completeIfNeeded, numberFlag, writeOutput } from './peppp-basic.js';
import { checkOutputFile } from './outputs.js';
import { sweepCommand, sweepFlags } from './sweep.js';
import { readMatrixCsv } from '../peppp/matrix-csv.js';
import { embedding, predictRow, recommend } from '../peppp/predict.js';
import { selectColumns } from '../peppp/select.js';
import { predictionSvg } from '../peppp/pareto-plot.js';
import { pepppMemoryOf } from '../peppp/memory.js';
import { ConfigError, loadConfigs } from '../sweep/configs.js';
import { loadTask } from '../sweep/cell.js';
import { parseDataSpec } from '../data/index.js';
import { parsePolicy } from '../../ir/precision/index.js';

const passOn = ['epochs', 'max-steps', 'workers', 'backend', 'batch', 'seed', 'optimizer'];

export const pepppTuneFlags: FlagSpec[] = [
  { name: 'data', value: 'SPEC', help: 'the new data set, as lpc run --data (e.g. fashion-mnist:classes=1,3,5)' },
  { name: 'budget', value: 'MB', help: "memory budget in MB: PEPPP's accounting (lpc peppp memory) of the model at this data set's shape and the training batch (--batch, default 64); candidates are the configurations within it" },
  { name: 'meta', value: 'FILE|DIR', help: 'meta-training error matrix: a CSV, or a sweep directory (its errors.csv); its columns are configuration names' },
  { name: 'measurements', value: 'N', help: 'how many configurations to train on the new data set (default 5)' },
  { name: 'configs', value: 'C', help: 'the configurations the meta columns name, as for lpc sweep (default peppp)' },
  { name: 'out', alias: '-o', value: 'DIR', help: 'work directory: the sweep of the measured configurations (resumable), prediction.json, pareto.svg' },
  RANK_FLAG, LAMBDA_FLAG,
  { name: 'plot', value: 'FILE', help: 'where to write the SVG (default DIR/pareto.svg)' },
  { name: 'json', help: 'print the result as JSON' },
  ...sweepFlags.filter((f) => passOn.includes(f.name)),
];

const g4 = (v: number) => String(Number(v.toPrecision(4)));

export async function pepppTuneCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc peppp tune needs one model file');
  const model = p.positional[0];
  const need = (k: string) => { const v = flag(p, k); if (v === undefined) throw new UsageError(`lpc peppp tune needs --${k}`); return v; };
  const data = need('data'), metaArg = need('meta'), out = need('out');
  const budget = numberFlag(p, 'budget', 0, (v) => v > 0, 'a number of MB > 0');
  if (flag(p, 'budget') === undefined) throw new UsageError('lpc peppp tune needs --budget');
  const n = intFlag(p, 'measurements', 5), rank = intFlag(p, 'rank', 5);
  const lambda = numberFlag(p, 'lambda', 0.1, (v) => v >= 0, 'a number >= 0');
  const batch = intFlag(p, 'batch', 64);
  const metaFile = fs.existsSync(metaArg) && fs.statSync(metaArg).isDirectory() ? path.join(metaArg, 'errors.csv') : metaArg;
  const plot = flag(p, 'plot') ?? path.join(out, 'pareto.svg');
  const dataDir = parseDataSpec(data).dir;
  const inputs = [model, metaFile, ...(dataDir ? [dataDir] : [])];
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new UsageError(`--out ${out}: is not a directory`);
  const configsFile = path.join(out, 'measured-configs.json'), tasksFile = path.join(out, 'task.txt');
  for (const f of [plot, configsFile, tasksFile]) checkOutputFile(f === plot ? '--plot' : '--out', f, inputs, out);

  // the meta-training matrix and the configurations its columns name
  const meta = readMatrixCsv(metaFile, { allowMissing: true });
  let configs;
  try { configs = loadConfigs(flag(p, 'configs') ?? 'peppp'); } catch (e) { throw e instanceof ConfigError ? new UsageError(e.message) : e; }
  const byName = new Map(configs.map((c) => [c.name, c]));
  const missing = meta.cols.find((c) => !byName.has(c));
  if (missing) throw new UsageError(`${metaFile}: column '${missing}' is not a configuration of --configs ${flag(p, 'configs') ?? 'peppp'}`);
  const cols = meta.cols.map((c) => byName.get(c)!);

  // memory of every configuration on the new data set; the candidates fit the budget
  const split = loadTask(data).train;
  const options = { input: [...split.shape], classes: split.classes };
  const memory = cols.map((c) => pepppMemoryOf(model, batch, options, c.precision.trim() ? parsePolicy(c.precision) : undefined));
  recommend(memory, memory.map(() => 0), budget, cols.map((c) => c.name)); // a budget below everything fails here, before training
  const cand = cols.map((_, j) => j).filter((j) => memory[j] <= budget);
  const z = completeIfNeeded(meta.data.filter((_, i) => meta.rows[i] !== data), meta.cols.length, rank, lambda, metaFile);
  const y = embedding(z, cand, rank);
  if (n < y.length) throw new UsageError(`--measurements ${n} is below the embedding's rank ${y.length}: the prediction would be underdetermined`);
  if (n > cand.length) throw new UsageError(`--measurements ${n}: only ${cand.length} configurations fit ${budget} MB`);
  const chosen = selectColumns('ed', y, n).map((q) => cand[q]);

  // train the chosen configurations through the sweep runner; a work directory of another tune is never rewritten
  const selection = JSON.stringify(chosen.map((j) => cols[j]), null, 1) + '\n';
  if (fs.existsSync(configsFile) && fs.readFileSync(configsFile, 'utf8') !== selection)
    throw new UsageError(`--out ${out}: holds a tune that measured other configurations (another data set, budget, meta matrix or --measurements); choose another directory`);
  process.stderr.write(`lpc: peppp tune: ${cand.length} of ${cols.length} configurations fit ${budget} MB; measuring ${n} (ED-MF): ${chosen.map((j) => cols[j].name).join(', ')}\n`);
  fs.mkdirSync(out, { recursive: true });
  writeOutput(configsFile, selection);
  writeOutput(tasksFile, `${data}\n`);
  const sweepDir = path.join(out, 'sweep');
  const args = [model, '--configs', configsFile, '--tasks', tasksFile, '--out', sweepDir, '--batch', String(batch)];
  for (const k of passOn) if (k !== 'batch' && p.flags.has(k)) args.push(`--${k}`, flag(p, k)!);
  await sweepCommand(parseArgs('sweep', args, sweepFlags));
  const measured = readMatrixCsv(path.join(sweepDir, 'errors.csv'), { allowMissing: true });
  const ok = chosen.map((j, i) => ({ j, e: measured.data[0][i] })).filter((m) => !Number.isNaN(m.e));
  if (ok.length < chosen.length)
    process.stderr.write(`lpc: warning: ${chosen.length - ok.length} measured configuration(s) failed (see ${path.join(sweepDir, 'cells')}); predicting from ${ok.length}\n`);
  if (!ok.length) throw new Error(`every measured configuration failed on ${data}; nothing to predict from`);

  // predict the rest; frontier and recommendation under the budget
  const names = cols.map((c) => c.name);
  const pr = predictRow(y, cand, ok.map((m) => m.j), ok.map((m) => m.e), memory, budget, names);
  const front = pr.frontier, best = pr.recommended!;
  const predOf = (j: number) => pr.predicted[cand.indexOf(j)];
  const item = (j: number) => ({ column: j, name: cols[j].name, precision: cols[j].precision, memory_mb: memory[j], predicted_error: predOf(j) });
  // the best configuration already trained: worth knowing beside a prediction (PEPPP's "best error found" counts both)
  const bestMeasured = ok.reduce((a, b) => (b.e < a.e ? b : a));
  const result = {
    data, budget_mb: budget, rank: y.length, candidates: cand.length,
    measured: ok.map((m) => ({ ...item(m.j), error: m.e })), frontier: front.map(item), recommended: item(best),
    best_measured: { ...item(bestMeasured.j), error: bestMeasured.e },
  };
  writeOutput(path.join(out, 'prediction.json'), JSON.stringify({ ...result, predicted: cand.map(item) }, null, 1) + '\n');
  writeOutput(plot, predictionSvg(`${data}: predicted frontier from ${ok.length} measured configurations (budget ${budget} MB)`,
    cand, memory, pr.predicted, front, ok.map((m) => m.j), ok.map((m) => m.e), names));
  if (p.flags.has('json')) { process.stdout.write(JSON.stringify(result, null, 1) + '\n'); return; }
  process.stdout.write(`${data}: predicted frontier under ${budget} MB (${front.length} of ${cand.length} candidates; ${ok.length} measured)\n  memory (MB)  error      name\n`);
  for (const j of front) {
    const m = ok.find((q) => q.j === j);
    process.stdout.write(`  ${g4(memory[j]).padStart(11)}  ${g4(predOf(j)).padEnd(9)}  ${cols[j].name}${m ? ` (measured ${g4(m.e)})` : ''}\n`);
  }
  process.stdout.write(`recommended: ${cols[best].name} (${g4(memory[best])} MB, predicted error ${g4(predOf(best))})\n  --precision '${cols[best].precision}'\n` +
    `best measured: ${cols[bestMeasured.j].name} (${g4(memory[bestMeasured.j])} MB, error ${g4(bestMeasured.e)})\nplot: ${plot}\n`);
}
