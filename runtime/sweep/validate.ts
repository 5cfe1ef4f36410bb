/**
 * A worker trusts nothing in a job: before it compiles or trains anything, the job's data is checked field by field
 * (types, ranges, no unknown or missing fields, a precision that parses, a task spec that parses) and its model path
 * must name a file inside the directory the worker was started in (relative, no `..`, no symlink leading out). A job
 * that fails a check is failed for good with the reason (BullMQ's UnrecoverableError), never executed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { precisionProblem } from './configs.js';
import { parseDataSpec } from '../data/index.js';
import { optimizerProblem, OptimizerOptions } from '../../passes/optimizer.js';
import { NAME, RemoteCell } from './redis.js';

const KEYS: (keyof RemoteCell)[] = ['sweep', 'id', 'task', 'config', 'precision', 'model', 'model_sha256', 'info', 'batch', 'optimizer',
  'seed', 'epochs', 'max_steps', 'backend'];

class Invalid extends Error {}
const fail = (why: string): never => { throw new Invalid(why); };
const str = (o: Record<string, unknown>, k: string, max: number, re?: RegExp): string => {
  const v = o[k];
  if (typeof v !== 'string') return fail(`${k} must be a string`);
  if (v.length > max) return fail(`${k} is longer than ${max} characters`);
  if (re && !re.test(v)) return fail(`${k} '${v.slice(0, 80)}' is not of the form ${re.source}`);
  return v;
};
const int = (v: unknown, k: string, min: number, max: number): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) return fail(`${k} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
};
const finite = (v: unknown, k: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > 3.4e38) return fail(`optimizer ${k} must be a finite number`);
  return v;
};

function checkOptimizer(text: string): void {
  let o: unknown;
  try { o = JSON.parse(text); } catch { return fail('optimizer is not JSON'); }
  if (!o || typeof o !== 'object' || Array.isArray(o)) return fail('optimizer must be a JSON object');
  const r = o as Record<string, unknown>;
  const keys = r.kind === 'sgd' ? ['kind', 'lr', 'momentum', 'wd'] : r.kind === 'adam' || r.kind === 'adamw' ? ['kind', 'lr', 'betas', 'eps', 'wd'] : fail(`optimizer kind must be sgd, adam or adamw`);
  const extra = Object.keys(r).filter((k) => !keys.includes(k)), missing = keys.filter((k) => !(k in r));
  if (extra.length || missing.length) fail(`optimizer: ${extra.length ? `unknown field ${extra[0]}` : `no ${missing[0]}`}`);
  for (const k of keys) {
    if (k === 'kind') continue;
    if (k === 'betas') {
      if (!Array.isArray(r.betas) || r.betas.length !== 2) fail('optimizer betas must be two numbers');
      (r.betas as unknown[]).forEach((b, i) => finite(b, `betas[${i}]`));
    } else finite(r[k], k);
  }
  const bad = optimizerProblem(r as unknown as OptimizerOptions);
  if (bad) fail(`optimizer ${bad}`);
}

/** The model file a job names, inside `root` (the worker's directory): its real path, or the reason it is refused. */
export function modelInside(model: string, root: string): string {
  if (!model) return fail('model is empty');
  if (path.isAbsolute(model) || /^[a-zA-Z]:[\\/]/.test(model)) return fail(`model ${model} is an absolute path; a worker loads models only from inside its directory ${root}`);
  if (model.split(/[\\/]/).includes('..')) return fail(`model ${model} leads out of the worker's directory ${root} ('..')`);
  const base = fs.realpathSync(root), file = path.resolve(base, model);
  let real: string;
  try { real = fs.realpathSync(file); } catch { return file; } // missing: the caller's machine fault (another worker may have it)
  const rel = path.relative(base, real);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return fail(`model ${model} is a symlink out of the worker's directory ${root} (to ${real})`);
  return real;
}

/** Checks a job's data and returns it typed with its model's real path; throws `Invalid` with the reason. */
export function validateCell(data: unknown, jobId: string | undefined, root: string): { cell: RemoteCell; file: string } {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return fail('the job data is not an object');
  const o = data as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !(KEYS as string[]).includes(k));
  if (extra.length) fail(`unknown field${extra.length > 1 ? 's' : ''} ${extra.slice(0, 3).join(', ')}`);
  const missing = KEYS.filter((k) => !(k in o));
  if (missing.length) fail(`no ${missing.join(', ')}`);
  const sweep = str(o, 'sweep', 64, NAME), id = str(o, 'id', 32, /^t\d{3,6}-c\d{3,6}$/);
  if (jobId !== undefined && jobId !== `${sweep}.${id}`) fail(`the job's id ${jobId} is not ${sweep}.${id}`);
  const task = str(o, 'task', 4096);
  try { parseDataSpec(task); } catch (e) { fail(`task: ${(e as Error).message.split('\n')[0]}`); }
  str(o, 'config', 256);
  const precision = str(o, 'precision', 4096);
  const bad = precision.trim() ? precisionProblem(precision) : undefined;
  if (bad) fail(`precision ${bad}`);
  const model = str(o, 'model', 1024);
  str(o, 'model_sha256', 64, /^[0-9a-f]{64}$/);
  const info = o.info as Record<string, unknown> | null;
  if (!info || typeof info !== 'object' || Array.isArray(info) || Object.keys(info).sort().join() !== 'classes,shape') fail('info must be {shape, classes}');
  if (!Array.isArray(info!.shape) || info!.shape.length < 1 || info!.shape.length > 4) fail('info.shape must be 1 to 4 dimensions');
  const dims = (info!.shape as unknown[]).map((d, i) => int(d, `info.shape[${i}]`, 1, 4096));
  if (dims.reduce((a, b) => a * b, 1) > 1 << 22) fail('info.shape is too large');
  int(info!.classes, 'info.classes', 2, 100_000);
  int(o.batch, 'batch', 1, 65_536);
  checkOptimizer(str(o, 'optimizer', 1024));
  int(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
  int(o.epochs, 'epochs', 1, 10_000);
  if (o.max_steps !== null) int(o.max_steps, 'max_steps', 1, 100_000_000);
  if (o.backend !== 'cpu' && o.backend !== 'webgpu') fail(`backend must be cpu or webgpu, got ${JSON.stringify(o.backend)?.slice(0, 40)}`);
  return { cell: o as unknown as RemoteCell, file: modelInside(model, root) };
}

export { Invalid as InvalidJob };
