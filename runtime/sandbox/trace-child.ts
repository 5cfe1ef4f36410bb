/**
 * The sandbox's child process (runtime/sandbox/trace.ts starts it under Node's permission model): reads one request
 * from stdin, runs the model's transpiled code, traces it and writes the IR text (and PEPPP's counts when asked) as
 * one JSON object to fd 3. Everything here is synchronous and the process exits as soon as the reply is written, so
 * no timer, promise or socket the model's code starts ever runs.
 */
import * as fs from 'node:fs';
import type { ModelOptions } from '../../dsl/index.js';
import { evalModel, traceModel, TranspiledModel } from '../../dsl/model-run.js';
import { printModule } from '../../ir/print.js';
import { pepppCounts, PepppCounts } from '../peppp/counts.js';

export interface TraceRequest { model: TranspiledModel; batch: number; options: ModelOptions; counts: boolean }
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

function handle(req: TraceRequest): TraceReply {
  try {
    lockDown();
    const def = evalModel(req.model);
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
