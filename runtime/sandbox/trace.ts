/**
 * Model files are programs: compiling one runs its code. lpc type-checks and transpiles a model here (which runs
 * nothing), then runs and traces it in a child process (trace-child.ts) under Node's permission model: it may read
 * only lpc's own files, and write none, start no process or worker and load no native addon; network, signals and
 * process.exit are taken from it; a time and a memory limit end it. What comes back is IR text, parsed and verified
 * like an artifact's.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelOptions } from '../../dsl/index.js';
import { checkModelOptions, repoRoot, transpileModel, typeCheck } from '../../dsl/frontend.js';
import { Module } from '../../ir/graph.js';
import { parseModule } from '../../ir/parse.js';
import { verifyModule } from '../../ir/verify.js';
import { checkModes, ModeMismatchError } from '../../passes/check-modes.js';
import type { PepppCounts } from '../peppp/counts.js';
import type { TraceReply, TraceRequest } from './trace-child.js';

export interface SandboxLimits { seconds: number; memoryMiB: number }

const DEFAULT_LIMITS: SandboxLimits = { seconds: 60, memoryMiB: 2048 };
/** What a model's printing may add up to (it is passed on to stderr). */
const MAX_OUTPUT = 16 * 2 ** 20;
/** The largest reply: ResNet-74's two graphs print as ≈0.2 MB. */
const MAX_REPLY = 256 * 2 ** 20;

/** The limits, from LPC_MODEL_TIMEOUT (seconds) and LPC_MODEL_MEMORY (MiB) where set. */
export function sandboxLimits(env: NodeJS.ProcessEnv = process.env): SandboxLimits {
  const read = (name: string, dflt: number, min: number) => {
    const v = env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number ≥ ${min}, got '${v}'`);
    return n;
  };
  return { seconds: read('LPC_MODEL_TIMEOUT', DEFAULT_LIMITS.seconds, 0.1), memoryMiB: Math.round(read('LPC_MODEL_MEMORY', DEFAULT_LIMITS.memoryMiB, 64)) };
}

/** The folders the child may read: lpc itself and the packages its DSL and IR import (when installed elsewhere). */
function readableFolders(root: string): string[] {
  const req = createRequire(path.join(root, 'package.json'));
  const folders = new Set([fs.realpathSync(root)]);
  try {
    const entry = fs.realpathSync(req.resolve('chevrotain'));
    folders.add(entry.slice(0, entry.lastIndexOf(`${path.sep}node_modules${path.sep}`) + '/node_modules'.length));
  } catch { /* resolved inside lpc's own node_modules, or absent: then importing the IR fails loudly anyway */ }
  return [...folders];
}

function childScript(root: string): string {
  const js = path.join(root, 'dist', 'runtime', 'sandbox', 'trace-child.js');
  if (!fs.existsSync(js)) throw new Error(`lpc is not built: ${js} is missing (run npm run build)`);
  return js;
}

/** Runs and traces a model file in the sandbox: its module and, with `counts`, PEPPP's element counts. */
export function traceSandboxed(file: string, batch: number, options: ModelOptions, o: { counts?: boolean; limits?: SandboxLimits } = {}):
  { module: Module; counts?: PepppCounts } {
  checkModelOptions(options);
  const limits = o.limits ?? sandboxLimits();
  const root = repoRoot();
  const request: TraceRequest = { model: transpileModel(file), batch, options, counts: o.counts ?? false };
  const args = ['--experimental-permission', ...readableFolders(root).map((d) => `--allow-fs-read=${d}/*`), '--no-warnings',
    `--max-old-space-size=${limits.memoryMiB}`, '--stack-size=984', childScript(root)];
  const r = spawnSync(process.execPath, args, {
    input: JSON.stringify(request), stdio: ['pipe', 'pipe', 'pipe', 'pipe'], timeout: limits.seconds * 1000, killSignal: 'SIGKILL',
    maxBuffer: MAX_REPLY, env: {}, cwd: path.dirname(path.resolve(file)),
  });
  const printed = Buffer.concat([r.output?.[1] ?? Buffer.alloc(0), r.output?.[2] ?? Buffer.alloc(0)]);
  const outOfMemory = /heap out of memory|Reached heap limit|Allocation failed/.test(printed.toString('latin1'));
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ETIMEDOUT') throw new Error(`${file}: the model's code ran longer than ${limits.seconds} s while tracing (an endless loop?); LPC_MODEL_TIMEOUT=SECONDS allows more`);
  if (outOfMemory) throw new Error(`${file}: the model's code used more than ${limits.memoryMiB} MiB while tracing; LPC_MODEL_MEMORY=MIB allows more`);
  if (code === 'ENOBUFS') throw new Error(`${file}: the model's code printed more than ${MAX_REPLY / 2 ** 20} MiB while tracing`);
  if (r.error) throw new Error(`${file}: cannot start the tracing process: ${r.error.message}`);
  if (printed.length) process.stderr.write(printed.length > MAX_OUTPUT ? printed.subarray(0, MAX_OUTPUT) : printed);
  const replyText = r.output?.[3]?.toString('utf8') ?? '';
  if (!replyText) throw new Error(`${file}: the model's code ended the tracing process (${r.signal ? `signal ${r.signal}` : `exit code ${r.status}`}) before it returned a model`);
  return readReply(file, replyText, o.counts ?? false);
}

function readReply(file: string, text: string, wantCounts: boolean): { module: Module; counts?: PepppCounts } {
  let reply: TraceReply;
  try { reply = JSON.parse(text) as TraceReply; } catch { throw new Error(`${file}: the tracing process replied with something that is not JSON`); }
  if (!reply || typeof reply !== 'object') throw new Error(`${file}: the tracing process replied with something that is not a trace`);
  if (reply.ok === false) throw new Error(String(reply.message).split('\n').slice(0, 40).join('\n'));
  if (reply.ok !== true || typeof reply.ir !== 'string') throw new Error(`${file}: the tracing process replied with something that is not a trace`);
  let module: Module;
  try { module = parseModule(reply.ir, `${file} (traced)`); verifyModule(module); } catch (e) {
    // two graphs that disagree on a parameter fail verification: the mode check says why in the model's terms
    try { if (module!) checkModes(module); } catch (m) { if (m instanceof ModeMismatchError) throw m; }
    throw new Error(`${file}: the model's trace is not valid IR: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!wantCounts) return { module };
  const c = reply.counts as unknown as Record<string, unknown> | undefined;
  const keys = ['batch', 'params', 'activations', 'output', 'input'] as const;
  if (!c || !keys.every((k) => Number.isSafeInteger(c[k]) && (c[k] as number) >= 0)) throw new Error(`${file}: the tracing process returned invalid element counts`);
  return { module, counts: Object.fromEntries(keys.map((k) => [k, c[k]])) as unknown as PepppCounts };
}

/** Type-check here, then run and trace in the sandbox: the front end for model files from the command line. */
export function frontEndSandboxed(file: string, batch: number, options: ModelOptions = {}): Module {
  checkModelOptions(options); // before the type-check, which takes longer
  typeCheck(file);
  return traceSandboxed(file, batch, options).module;
}
