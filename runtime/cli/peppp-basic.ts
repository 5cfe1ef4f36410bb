/**
 * `lpc peppp fit`, `select` and `pareto`, and the input/output helpers every peppp subcommand shares: flags are
 * checked (usage errors, exit 2) before files are read; files are checked (errors naming file:line, exit 1) before
 * any work; outputs are written through a temporary file and a rename.
 */
import { FlagSpec, Parsed, UsageError, asUsage, flag, intFlag } from './args.js';
import { checkOutputFile } from './outputs.js';
import { NamedMatrix, formatMatrixCsv, readMask, readMatrixCsv, rowIndex, decimal } from '../peppp/matrix-csv.js';
import { writeAtomic } from '../files.js';
import { dense, Dense } from '../peppp/linalg.js';
import { nonuniformMask, nonuniformProbabilities, parseSampling, samplingRng, softImpute, uniformMask } from '../peppp/softimpute.js';
import { Cap, parseCap } from '../peppp/loocv.js';
import { medianOf } from '../peppp/metrics.js';
import { candidatesWithin, embedding } from '../peppp/predict.js';
import { METHODS, Method, selectColumns } from '../peppp/select.js';
import { ParetoRule, paretoFrontier } from '../peppp/pareto.js';
import { paretoSvg } from '../peppp/pareto-plot.js';

// ---- shared helpers ----

export const ERRORS_FLAG: FlagSpec = { name: 'errors', value: 'FILE', help: 'error matrix CSV (header dataset,<configurations>; one row per data set; empty = missing)' };
export const MEMORY_FLAG: FlagSpec = { name: 'memory', value: 'FILE', help: 'memory matrix CSV in MB, same columns as --errors' };
export const RANK_FLAG: FlagSpec = { name: 'rank', value: 'K', help: 'embedding (and completion) rank (default 5)' };
export const LAMBDA_FLAG: FlagSpec = { name: 'lambda', value: 'L', help: 'SoftImpute nuclear-norm weight (default 0.1)' };
export const SEED_FLAG: FlagSpec = { name: 'seed', value: 'S', help: 'seed of the sampling masks and of random-MF (default 0)' };

export function requireFlag(p: Parsed, name: string, cmd: string): string {
  const v = flag(p, name);
  if (v === undefined) throw new UsageError(`lpc peppp ${cmd} needs --${name}; see 'lpc peppp ${cmd} --help'`);
  return v;
}

export function noPositional(p: Parsed, cmd: string): void {
  if (p.positional.length) throw new UsageError(`lpc peppp ${cmd} takes no positional arguments, got '${p.positional[0]}'`);
}

/** A number flag (decimal) with a validity check described by `what`. */
export function numberFlag(p: Parsed, name: string, def: number, ok: (v: number) => boolean, what: string): number {
  const v = flag(p, name);
  if (v === undefined) return def;
  const n = decimal(v);
  if (!ok(n)) throw new UsageError(`--${name} must be ${what}, got '${v}'`);
  return n;
}

export const seedFlag = (p: Parsed) => intFlag(p, 'seed', 0, 0);
export const capFlag = (p: Parsed): Cap => asUsage(() => parseCap(flag(p, 'cap') ?? 'none'));

/** The columns of two matrices must be the same configurations in the same order. */
export function checkColumns(a: NamedMatrix, aFile: string, b: NamedMatrix, bFile: string): void {
  if (a.cols.length !== b.cols.length) throw new Error(`${aFile} has ${a.cols.length} configurations but ${bFile} has ${b.cols.length}`);
  const j = a.cols.findIndex((c, k) => c !== b.cols[k]);
  if (j >= 0) throw new Error(`column ${j + 2} is '${a.cols[j]}' in ${aFile} but '${b.cols[j]}' in ${bFile}`);
}

export function toDense(rows: readonly Float64Array[], n: number): Dense {
  const d = dense(rows.length, n);
  rows.forEach((r, i) => d.a.set(r, i * n));
  return d;
}

/** The meta-training matrix as a dense complete matrix: completed by SoftImpute first if entries are missing. */
export function completeIfNeeded(rows: readonly Float64Array[], n: number, rank: number, lambda: number, file: string): Dense {
  const x = toDense(rows, n);
  const mask = Uint8Array.from(x.a, (v) => (Number.isNaN(v) ? 0 : 1));
  const missing = mask.length - mask.reduce((a, b) => a + b, 0);
  if (!missing) return x;
  if (missing === mask.length) throw new Error(`${file}: every meta-training entry is missing`);
  const res = softImpute(x, mask, undefined, { rank, lambda });
  process.stderr.write(`lpc: ${file}: ${missing} missing entries completed by SoftImpute (rank ${rank}, ${res.iterations} iterations${res.converged ? '' : ', stopped at the cap'})\n`);
  return res.z;
}

/** The candidate columns of a memory row under a cap (NaN memory: never a candidate). */
export function candidatesUnder(memRow: Float64Array | undefined, n: number, cap: Cap, memory?: NamedMatrix): number[] {
  if (!memRow) return Array.from({ length: n }, (_, j) => j);
  return candidatesWithin(memRow, cap === 'none' ? Infinity : cap === 'median' ? medianOf(memory!.data.map((r) => r.filter((v) => !Number.isNaN(v)))) : cap);
}

export function writeOutput(file: string, text: string): void {
  writeAtomic(file, text);
  process.stderr.write(`lpc: wrote ${file}\n`);
}

export const g6 = (v: number) => (Number.isFinite(v) ? String(Number(v.toPrecision(6))) : 'NaN');

// ---- fit ----

export const fitFlags: FlagSpec[] = [
  ERRORS_FLAG,
  { name: 'mask', value: 'FILE', help: 'observe only entries marked 1 (0/1 lines, or the matrix layout); missing entries are never observed' },
  { name: 'sample', value: 'SPEC', help: 'observe a random sample of the entries: uniform=R (ratio R) or nonuniform=R (memory-aware, p_max R; needs --memory)' },
  MEMORY_FLAG, RANK_FLAG, LAMBDA_FLAG, SEED_FLAG,
  { name: 'max-iter', value: 'N', help: 'SoftImpute iteration cap (default 2500)' },
  { name: 'out', alias: '-o', value: 'FILE', help: 'the completed matrix CSV to write (required)' },
];

export async function fitCommand(p: Parsed): Promise<void> {
  noPositional(p, 'fit');
  const errFile = requireFlag(p, 'errors', 'fit'), out = requireFlag(p, 'out', 'fit');
  const rank = intFlag(p, 'rank', 5), maxIter = intFlag(p, 'max-iter', 2500), seed = seedFlag(p);
  const lambda = numberFlag(p, 'lambda', 0.1, (v) => v >= 0, 'a number >= 0');
  const sampling = asUsage(() => parseSampling(flag(p, 'sample') ?? 'none'));
  const maskFile = flag(p, 'mask'), memFile = flag(p, 'memory');
  if (maskFile && sampling.kind !== 'none') throw new UsageError('--mask and --sample exclude each other');
  if (sampling.kind === 'nonuniform' && !memFile) throw new UsageError('--sample nonuniform=R needs --memory (the probabilities follow memory)');
  checkOutputFile('-o', out, [errFile, ...(maskFile ? [maskFile] : []), ...(memFile ? [memFile] : [])]);
  const err = readMatrixCsv(errFile, { allowMissing: true });
  const R = err.rows.length, C = err.cols.length;
  const x = toDense(err.data, C);
  const mask = Uint8Array.from(x.a, (v) => (Number.isNaN(v) ? 0 : 1));
  let weights: Float64Array | undefined;
  if (maskFile) readMask(maskFile, R, C, err.rows).forEach((row, i) => row.forEach((v, j) => { if (!v) mask[i * C + j] = 0; }));
  if (sampling.kind === 'uniform') {
    const s = uniformMask(R, C, sampling.ratio, samplingRng(seed));
    s.forEach((v, i) => { if (!v) mask[i] = 0; });
  } else if (sampling.kind === 'nonuniform') {
    const mem = readMatrixCsv(memFile!, { shape: [R, C] });
    checkColumns(err, errFile, mem, memFile!);
    const s = nonuniformMask(nonuniformProbabilities(toDense(mem.data, C).a, sampling.pMax), samplingRng(seed));
    s.mask.forEach((v, i) => { if (!v) mask[i] = 0; });
    weights = s.weights;
  }
  const seen = mask.reduce((a, b) => a + b, 0);
  if (!seen) throw new Error(`${errFile}: no entry is observed (after the mask or sampling); nothing to complete from`);
  const t0 = Date.now();
  const res = softImpute(x, mask, weights, { rank, lambda, maxIter });
  process.stderr.write(`lpc: completed ${R} x ${C} from ${seen} observed entries (${((100 * seen) / (R * C)).toFixed(1)}%): ${res.iterations} iterations${res.converged ? '' : ' (stopped at the cap)'}, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  const rows = Array.from({ length: R }, (_, i) => res.z.a.slice(i * C, (i + 1) * C));
  writeOutput(out, formatMatrixCsv({ rows: err.rows, cols: err.cols, data: rows }));
}

// ---- select ----

export const selectFlags: FlagSpec[] = [
  ERRORS_FLAG,
  { ...MEMORY_FLAG, help: 'memory matrix CSV in MB (needed with --row and a --cap)' },
  { name: 'row', value: 'NAME', help: "the new data set's row in --memory (its memory decides the cap); a row of that name in --errors is left out of meta-training" },
  RANK_FLAG,
  { name: 'method', value: 'M', help: 'ed (QR pivots, then greedy D-optimal design; default), qr (QR pivots) or random' },
  { name: 'measurements', value: 'N', help: 'how many configurations to measure (default: the rank)' },
  { name: 'cap', value: 'C', help: 'candidates: none (default), median (of --memory) or a number of MB; needs --row' },
  LAMBDA_FLAG, SEED_FLAG,
  { name: 'json', help: 'print JSON instead of a table' },
];

export async function selectCommand(p: Parsed): Promise<void> {
  noPositional(p, 'select');
  const errFile = requireFlag(p, 'errors', 'select');
  const rank = intFlag(p, 'rank', 5), n = intFlag(p, 'measurements', rank), seed = seedFlag(p);
  const lambda = numberFlag(p, 'lambda', 0.1, (v) => v >= 0, 'a number >= 0');
  const method = (flag(p, 'method') ?? 'ed') as Method;
  if (!METHODS.includes(method)) throw new UsageError(`--method must be one of ${METHODS.join(', ')}, got '${method}'`);
  const cap = capFlag(p), rowName = flag(p, 'row'), memFile = flag(p, 'memory');
  if (cap !== 'none' && !rowName) throw new UsageError('--cap needs --row (the new data set whose memory is capped)');
  if (rowName && !memFile) throw new UsageError('--row needs --memory');
  const err = readMatrixCsv(errFile, { allowMissing: true });
  let memRow: Float64Array | undefined, mem: NamedMatrix | undefined;
  if (memFile) {
    mem = readMatrixCsv(memFile, { allowMissing: true });
    checkColumns(err, errFile, mem, memFile);
    if (rowName) memRow = mem.data[rowIndex(mem, rowName, memFile)];
  }
  const train = err.data.filter((_, i) => err.rows[i] !== rowName);
  const z = completeIfNeeded(train, err.cols.length, rank, lambda, errFile);
  const cand = candidatesUnder(memRow, err.cols.length, cap, mem);
  if (!cand.length) throw new Error(`no configuration of ${rowName} fits under the cap ${cap} MB`);
  if (n > cand.length) throw new UsageError(`--measurements ${n} exceeds the ${cand.length} candidate configurations`);
  const y = embedding(z, cand, rank);
  const chosen = selectColumns(method, y, n, seed).map((q) => cand[q]);
  const items = chosen.map((j) => ({ column: j, name: err.cols[j], ...(memRow ? { memory_mb: memRow[j] } : {}) }));
  if (p.flags.has('json')) {
    process.stdout.write(JSON.stringify({ method, rank, cap, candidates: cand.length, selected: items }, null, 1) + '\n');
    return;
  }
  process.stdout.write(`measure these ${n} of ${cand.length} candidate configurations (${method}, rank ${rank}${cap !== 'none' ? `, cap ${cap}` : ''}):\n`);
  for (const it of items) process.stdout.write(`  ${String(it.column).padStart(4)}  ${it.name}${it.memory_mb !== undefined ? `  ${g6(it.memory_mb)} MB` : ''}\n`);
}

// ---- pareto ----

export const paretoFlags: FlagSpec[] = [
  ERRORS_FLAG, MEMORY_FLAG,
  { name: 'row', value: 'NAME', help: 'the data set (row name, or 0-based index) whose frontier to show' },
  { name: 'rule', value: 'R', help: 'peppp (default: exact duplicates leave the frontier) or textbook (they stay)' },
  { name: 'json', help: 'print JSON instead of a table' },
  { name: 'plot', value: 'FILE', help: 'also write an SVG: all configurations, the frontier as a step line' },
];

export async function paretoCommand(p: Parsed): Promise<void> {
  noPositional(p, 'pareto');
  const errFile = requireFlag(p, 'errors', 'pareto'), memFile = requireFlag(p, 'memory', 'pareto'), rowName = requireFlag(p, 'row', 'pareto');
  const rule = (flag(p, 'rule') ?? 'peppp') as ParetoRule;
  if (rule !== 'peppp' && rule !== 'textbook') throw new UsageError(`--rule must be peppp or textbook, got '${rule}'`);
  const plot = flag(p, 'plot');
  if (plot) checkOutputFile('--plot', plot, [errFile, memFile]);
  const err = readMatrixCsv(errFile, { allowMissing: true }), mem = readMatrixCsv(memFile, { allowMissing: true });
  checkColumns(err, errFile, mem, memFile);
  const e = err.data[rowIndex(err, rowName, errFile)], m = mem.data[rowIndex(mem, rowName, memFile)];
  const front = paretoFrontier(m, e, undefined, rule);
  const known = e.reduce((a, v, j) => a + (Number.isNaN(v) || Number.isNaN(m[j]) ? 0 : 1), 0);
  if (!known) throw new Error(`${errFile}: row ${rowName} has no configuration with both an error and a memory`);
  const items = front.map((j) => ({ column: j, name: err.cols[j], memory_mb: m[j], error: e[j] }));
  if (plot) {
    const points = Array.from(e, (v, j) => ({ x: m[j], y: v, label: err.cols[j] }));
    writeOutput(plot, paretoSvg(`${rowName}: memory-error Pareto frontier (${rule} rule)`, [{ name: 'measured', points, frontier: front }]));
  }
  if (p.flags.has('json')) {
    process.stdout.write(JSON.stringify({ row: rowName, rule, configurations: known, frontier: items }, null, 1) + '\n');
    return;
  }
  process.stdout.write(`${rowName}: ${items.length} of ${known} configurations on the frontier (${rule} rule)\n  column  memory (MB)  error     name\n`);
  for (const it of items) process.stdout.write(`  ${String(it.column).padStart(6)}  ${g6(it.memory_mb).padStart(11)}  ${g6(it.error).padEnd(8)}  ${it.name}\n`);
}
