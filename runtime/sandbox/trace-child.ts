/**
 * The sandbox's child process (runtime/sandbox/trace.ts starts it under Node's permission model): reads one request
 * from stdin, runs the model's transpiled code, traces it and writes the IR text (and PEPPP's counts when asked) as
 * one JSON object to fd 3. Everything here is synchronous and the process exits as soon as the reply is written, so
 * no timer, promise or socket the model's code starts ever runs.
 */
import * as fs from 'node:fs';
import type { ModelOptions } from '../../dsl/index.js';
import { evalModel, ModelProject, traceModel } from '../../dsl/model-run.js';
import { printModule } from '../../ir/print.js';
import { pepppCounts, PepppCounts } from '../peppp/counts.js';

export interface TraceRequest { model: ModelProject; batch: number; options: ModelOptions; counts: boolean }
export type TraceReply = { ok: true; ir: string; counts?: PepppCounts } | { ok: false; message: string };

const REPLY_FD = 3;
// process.exit calls process.reallyExit, which lockDown replaces: keep the original to end the process with
const reallyExit = (process as unknown as { reallyExit: (code: number) => never }).reallyExit.bind(process);

/** What the permission model (files, child processes, workers, native addons) leaves open to model code: network,
 *  signals and ending the process. Each is replaced by an error thrown at the model's line. */
function lockDown(): void {
  const g = globalThis as Record<string, unknown>;
  for (const name of ['fetch', 'WebSocket', 'EventSource', 'XMLHttpRequest']) delete g[name];
  const refuse = (what: string) => () => { throw new Error(`a model's code may not ${what}`); };
  const p = process as unknown as Record<string, unknown>;
  for (const name of ['exit', 'reallyExit', 'abort']) p[name] = refuse('end the process (process.' + name + ')');
  for (const name of ['kill', '_kill']) p[name] = refuse('send signals (process.' + name + ')');
  for (const name of ['chdir', 'dlopen', 'setuid', 'setgid', 'seteuid', 'setegid', 'setgroups', 'initgroups'])
    if (name in p) p[name] = refuse(`call process.${name}`);
}

/** A fixed-seed generator (mulberry32) for Math.random, restarted before each call of the build function. */
let seed = 0;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const SEED = 0x6c7063; // 'lpc'

/**
 * The sources of nondeterminism a model's code can reach, made constant: a compile is a function of the model file
 * and the options, and the train and eval traces see the same values. Math.random() is seeded (the same sequence in
 * each trace); the clock (Date, performance.now, process.hrtime, process.uptime) reads 0; process.pid and ppid read 0;
 * crypto is absent.
 */
function determinize(): void {
  Math.random = random;
  const RealDate = Date;
  class FixedDate extends RealDate {
    constructor(...a: unknown[]) { if (a.length) super(...(a as [number])); else super(0); }
    static override now(): number { return 0; }
  }
  const g = globalThis as Record<string, unknown>;
  g.Date = FixedDate;
  delete g.crypto;
  if (typeof performance !== 'undefined') performance.now = () => 0;
  const hrtime = Object.assign(() => [0, 0] as [number, number], { bigint: () => 0n });
  Object.assign(process, { hrtime, uptime: () => 0 });
  for (const name of ['pid', 'ppid']) Object.defineProperty(process, name, { value: 0, configurable: true });
}

function handle(req: TraceRequest): TraceReply {
  try {
    lockDown();
    determinize();
    const def0 = evalModel(req.model);
    const def = { ...def0, build: (o: ModelOptions) => { seed = SEED; return def0.build(o); } };
    const ir = printModule(traceModel(def, req.batch, req.options));
    return { ok: true, ir, ...(req.counts ? { counts: pepppCounts(def, req.batch, req.options) } : {}) };
  } catch (e) {
    try { return { ok: false, message: e instanceof Error ? messageOf(e) : String(e) }; } catch { return { ok: false, message: 'the model threw a value that cannot be shown' }; }
  }
}

/** An error's message; the permission model's terse ones ("process.binding") say what was denied. */
function messageOf(e: Error): string {
  const d = e as Error & { code?: unknown; permission?: unknown; resource?: unknown };
  if (d.code !== 'ERR_ACCESS_DENIED') return String(e.message);
  const what = [d.permission, d.resource].filter((x) => typeof x === 'string' && x).join(' ');
  return `${String(e.message)}: denied by the sandbox${what ? ` (${what})` : ''}; a model's code may read no files but lpc's, write none and start no process or worker`;
}

/** All of `text` to `fd`, which may be a non-blocking pipe (EAGAIN while the parent has not read yet). */
function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let off = 0; off < buf.length;) {
    try { off += fs.writeSync(fd, buf, off); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

const reply = handle(JSON.parse(fs.readFileSync(0, 'utf8')) as TraceRequest);
writeAll(REPLY_FD, JSON.stringify(reply));
reallyExit(0);
