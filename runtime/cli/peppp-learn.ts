/** `lpc peppp predict` (a new data set from a few measurements) and `lpc peppp loocv` (PEPPP's meta-LOOCV). */
import * as fs from 'node:fs';
import { FlagSpec, Parsed, UsageError, asUsage, flag, intFlag } from './args.js';
import { checkOutputFile } from './outputs.js';
import {
  ERRORS_FLAG, LAMBDA_FLAG, MEMORY_FLAG, RANK_FLAG, SEED_FLAG, checkColumns, completeIfNeeded, noPositional, numberFlag, requireFlag,
  g6, seedFlag, writeOutput,
} from './peppp-basic.js';
import { checkSameShape, dropRows, readMask, readMatrixCsv, rowIndex, decimal } from '../peppp/matrix-csv.js';
import { embedding, predictRow } from '../peppp/predict.js';
import { predictionSvg } from '../peppp/pareto-plot.js';
import { Cap, parseCap, parseMeasurements, runLoocv } from '../peppp/loocv.js';
import { METHODS, Method } from '../peppp/select.js';
import { parseSampling } from '../peppp/softimpute.js';


// ---- predict ----

export const predictFlags: FlagSpec[] = [
  { ...ERRORS_FLAG, help: 'meta-training error matrix CSV (missing entries are completed first)' },
  { ...MEMORY_FLAG, help: "memory matrix CSV in MB holding the new data set's row (same columns as --errors)" },
  { name: 'memory-row', value: 'NAME', help: "the new data set's row in --memory (default: its only row); a row of that name in --errors is left out of meta-training" },
  { name: 'measured', value: 'LIST', help: "measured errors: 'config=error,config=error,…' (config: a column name or 0-based index)" },
  { name: 'measured-file', value: 'FILE', help: 'the same list read from a file (commas or line breaks between items, # comments)' },
  { name: 'budget', value: 'MB', help: 'recommend the configuration with the lowest predicted error whose memory is at most MB' },
  RANK_FLAG, LAMBDA_FLAG,
  { name: 'json', help: 'print JSON: measured, predicted errors of all configurations, the predicted frontier, the recommendation' },
  { name: 'plot', value: 'FILE', help: 'also write an SVG: predicted errors and frontier, the measured configurations ringed' },
];

/** Parses `col=err` items (commas or line breaks between them) against the configuration names. */
export function parseMeasured(text: string, cols: readonly string[], where: string): { cols: number[]; errors: number[] } {
  const items = text.split('\n').map((l) => l.replace(/#.*/, '')).join(',').split(',').map((s) => s.trim()).filter((s) => s);
  if (!items.length) throw new UsageError(`${where}: no 'config=error' items`);
  const out = { cols: [] as number[], errors: [] as number[] };
  for (const it of items) {
    const eq = it.lastIndexOf('=');
    if (eq <= 0) throw new UsageError(`${where}: '${it}' is not config=error`);
    const key = it.slice(0, eq).trim(), val = it.slice(eq + 1).trim();
    let j = cols.indexOf(key);
    if (j < 0 && /^\d+$/.test(key) && Number(key) < cols.length) j = Number(key);
    if (j < 0) throw new UsageError(`${where}: '${key}' is neither a configuration name nor a column index below ${cols.length}`);
    const e = decimal(val);
    if (!Number.isFinite(e)) throw new UsageError(`${where}: the error of '${key}' is '${val}', not a number`);
    if (out.cols.includes(j)) throw new UsageError(`${where}: configuration '${cols[j]}' is measured twice`);
    out.cols.push(j); out.errors.push(e);
  }
  return out;
}

export async function predictCommand(p: Parsed): Promise<void> {
  noPositional(p, 'predict');
  const errFile = requireFlag(p, 'errors', 'predict'), memFile = requireFlag(p, 'memory', 'predict');
  const rank = intFlag(p, 'rank', 5), lambda = numberFlag(p, 'lambda', 0.1, (v) => v >= 0, 'a number >= 0');
  const budget = flag(p, 'budget') === undefined ? undefined : numberFlag(p, 'budget', 0, (v) => v > 0, 'a number of MB > 0');
  const measuredText = flag(p, 'measured'), measuredFile = flag(p, 'measured-file');
  if ((measuredText === undefined) === (measuredFile === undefined)) throw new UsageError('lpc peppp predict needs exactly one of --measured and --measured-file');
  const plot = flag(p, 'plot');
  if (plot) checkOutputFile('--plot', plot, [errFile, memFile, ...(measuredFile ? [measuredFile] : [])]);
  const err = readMatrixCsv(errFile, { allowMissing: true }), mem = readMatrixCsv(memFile, { allowMissing: true });
  checkColumns(err, errFile, mem, memFile);
  let rowName = flag(p, 'memory-row');
  if (rowName === undefined) {
    if (mem.rows.length !== 1) throw new UsageError(`${memFile} has ${mem.rows.length} rows; name the new data set's with --memory-row`);
    rowName = mem.rows[0];
  }
  const memRow = mem.data[rowIndex(mem, rowName, memFile)];
  let text = measuredText;
  if (measuredFile !== undefined) {
    if (!fs.existsSync(measuredFile) || fs.statSync(measuredFile).isDirectory()) throw new Error(`${measuredFile}: no such file`);
    text = fs.readFileSync(measuredFile, 'utf8');
  }
  const meas = parseMeasured(text!, err.cols, measuredFile ?? '--measured');
  const cand = err.cols.map((_, j) => j).filter((j) => !Number.isNaN(memRow[j]));
  for (const j of meas.cols) if (Number.isNaN(memRow[j])) throw new Error(`${memFile}: row ${rowName} has no memory for measured configuration ${err.cols[j]}`);
  const z = completeIfNeeded(err.data.filter((_, i) => err.rows[i] !== rowName), err.cols.length, rank, lambda, errFile);
  const y = embedding(z, cand, rank);
  if (meas.cols.length < y.length) process.stderr.write(`lpc: warning: ${meas.cols.length} measurements for a rank-${y.length} embedding; the fit is the minimum-norm one and underdetermined\n`);
  const pr = predictRow(y, cand, meas.cols, meas.errors, memRow, budget, err.cols);
  const front = pr.frontier, rec = pr.recommended;
  const predOf = (j: number) => pr.predicted[cand.indexOf(j)];
  const item = (j: number) => ({ column: j, name: err.cols[j], memory_mb: memRow[j], predicted_error: predOf(j) });
  if (plot) writeOutput(plot, predictionSvg(`${rowName}: predicted memory-error frontier from ${meas.cols.length} measurements`,
    cand, memRow, pr.predicted, front, meas.cols, meas.errors, err.cols));
  if (p.flags.has('json')) {
    process.stdout.write(JSON.stringify({
      memory_row: rowName, rank: y.length, measured: meas.cols.map((j, i) => ({ column: j, name: err.cols[j], error: meas.errors[i] })),
      predicted: cand.map(item), frontier: front.map(item), recommended: rec === undefined ? null : { ...item(rec), budget_mb: budget },
    }, null, 1) + '\n');
    return;
  }
  process.stdout.write(`${rowName}: predicted frontier (${front.length} of ${cand.length} configurations, rank ${y.length}, ${meas.cols.length} measured)\n  column  memory (MB)  predicted  name\n`);
  for (const j of front) process.stdout.write(`  ${String(j).padStart(6)}  ${g6(memRow[j]).padStart(11)}  ${g6(predOf(j)).padEnd(9)}  ${err.cols[j]}${meas.cols.includes(j) ? ` (measured ${g6(meas.errors[meas.cols.indexOf(j)])})` : ''}\n`);
  if (rec !== undefined) process.stdout.write(`recommended under ${budget} MB: ${err.cols[rec]} (column ${rec}, ${g6(memRow[rec])} MB, predicted error ${g6(predOf(rec))})\n`);
}

// ---- loocv ----

export const loocvFlags: FlagSpec[] = [
  { ...ERRORS_FLAG, help: 'complete error matrix CSV (data sets x configurations)' },
  { ...MEMORY_FLAG, help: 'complete memory matrix CSV in MB, same rows and columns' },
  { name: 'drop-rows', value: 'LIST', help: 'rows left out of everything first: 0-based indices or names, comma-separated (PEPPP drops 28)' },
  RANK_FLAG,
  { name: 'methods', value: 'LIST', help: `comma list of ${METHODS.join(', ')} (default ed,random)` },
  { name: 'measurements', value: 'RANGE', help: 'measurements per held-out data set: N, A..B or a comma list (default 5..15)' },
  { name: 'cap', value: 'LIST', help: 'memory cap on the candidates: none (default), median, a number of MB, or a comma list of those' },
  { name: 'sample', value: 'SPEC', help: 'meta-training observed fully (none, default), uniform=R or nonuniform=R, then completed by SoftImpute' },
  { name: 'mask', value: 'FILE', help: "with --sample uniform=R: this fixed (rows−1) x columns mask instead of a drawn one (e.g. PEPPP's loocv_train_mask.csv)" },
  LAMBDA_FLAG, SEED_FLAG,
  { name: 'max-iter', value: 'N', help: 'SoftImpute iteration cap (default 2500)' },
  { name: 'per-row', help: 'also write every held-out row\'s metrics and selections into the JSON' },
  { name: 'json', value: 'FILE', help: 'the JSON results to write (required): {"results":[{method,cap,measurements,hyperdiff,convergence,regret,memory_fraction,…}]}' },
];

export async function loocvCommand(p: Parsed): Promise<void> {
  noPositional(p, 'loocv');
  const errFile = requireFlag(p, 'errors', 'loocv'), memFile = requireFlag(p, 'memory', 'loocv'), out = requireFlag(p, 'json', 'loocv');
  const rank = intFlag(p, 'rank', 5), seed = seedFlag(p), maxIter = intFlag(p, 'max-iter', 2500);
  const lambda = numberFlag(p, 'lambda', 0.1, (v) => v >= 0, 'a number >= 0');
  const methods = (flag(p, 'methods') ?? 'ed,random').split(',').map((s) => s.trim()) as Method[];
  for (const m of methods) if (!METHODS.includes(m)) throw new UsageError(`--methods: '${m}' is not one of ${METHODS.join(', ')}`);
  const measurements = asUsage(() => parseMeasurements(flag(p, 'measurements') ?? '5..15'));
  const caps: Cap[] = asUsage(() => (flag(p, 'cap') ?? 'none').split(',').map((s) => parseCap(s.trim())));
  const sampling = asUsage(() => parseSampling(flag(p, 'sample') ?? 'none'));
  const maskFile = flag(p, 'mask');
  if (maskFile && sampling.kind !== 'uniform') throw new UsageError('--mask goes with --sample uniform=R');
  checkOutputFile('--json', out, [errFile, memFile, ...(maskFile ? [maskFile] : [])]);
  let err = readMatrixCsv(errFile), mem = readMatrixCsv(memFile);
  checkSameShape(err, errFile, mem, memFile);
  const drop = (flag(p, 'drop-rows') ?? '').split(',').map((s) => s.trim()).filter((s) => s).map((s) => rowIndex(err, s, errFile));
  err = dropRows(err, drop); mem = dropRows(mem, drop);
  let mask: Uint8Array | undefined;
  if (maskFile) {
    const rows = readMask(maskFile, err.rows.length - 1, err.cols.length);
    mask = new Uint8Array(rows.length * err.cols.length);
    rows.forEach((r, i) => mask!.set(r, i * err.cols.length));
  }
  const t0 = Date.now();
  const every = sampling.kind === 'none' ? 10 : 1;
  const res = runLoocv(err, mem, {
    rank, lambda, maxIter, seed, methods, measurements, caps, sampling, mask,
    onProgress: (done, total, note) => {
      if (done % every === 0 || done === total) process.stderr.write(`lpc: loocv ${done}/${total} held-out rows, ${((Date.now() - t0) / 1000).toFixed(1)} s${note ? ` (${note})` : ''}\n`);
    },
  });
  const { per_row, ...rest } = res;
  const doc = {
    settings: { errors: errFile, memory: memFile, dropped_rows: drop, rows: err.rows.length, rank, lambda, seed, methods, measurements, caps, sampling, mask: maskFile ?? null },
    ...rest, seconds: (Date.now() - t0) / 1000, ...(p.flags.has('per-row') ? { per_row } : {}),
  };
  writeOutput(out, JSON.stringify(doc, null, 1) + '\n');
  const table = summaryTable(res.results);
  process.stdout.write(table);
}

function summaryTable(rs: ReturnType<typeof runLoocv>['results']): string {
  const lines = ['cap     method  n   hyperdiff  convergence  regret   mem.frac  (median)  rows'];
  for (const r of rs) lines.push(`${String(r.cap).padEnd(7)} ${r.method.padEnd(7)} ${String(r.measurements).padEnd(3)} ${r.hyperdiff.toFixed(4).padStart(9)}  ${r.convergence.toFixed(4).padStart(11)}  ${r.regret.toFixed(4).padStart(6)}   ${r.memory_fraction.toFixed(4)}    ${r.memory_fraction_median.toFixed(4)}    ${r.rows}`);
  return lines.join('\n') + '\n';
}
