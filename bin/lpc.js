#!/usr/bin/env node
// Thin entry: the CLI lives in runtime/cli (compiled to dist/ by `npm install` / `npm run build`).
//
// Dawn prints two lines straight to file descriptor 2, from C++, whenever it opens a Vulkan adapter whose driver
// reports more dynamic buffers than Dawn supports (lavapipe, RADV): "Warning: maxDynamicUniformBuffersPerPipelineLayout
// artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit." (and the same for storage). They
// are harmless, no Dawn toggle or callback silences them, and JavaScript cannot redirect descriptor 2; so the
// commands that may open WebGPU run in a child process whose stderr passes through here with exactly those two lines
// removed (every other byte, real errors included, passes unchanged and at once).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const DAWN_NOISE = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const NOISE_START = 'Warning: maxDynamic';
const MAY_OPEN_WEBGPU = new Set(['run', 'eval', 'tune', 'sweep', 'worker', 'peppp', 'quant']);

const argv = process.argv.slice(2);
if (process.env.LPC_STDERR_FILTERED === '1' || !MAY_OPEN_WEBGPU.has(argv[0]) || argv.includes('--help') || argv.includes('-h')) {
  if (process.env.LPC_STDERR_FILTERED === '1') {
    delete process.env.LPC_STDERR_FILTERED; // children of this command (sweep workers) inherit the filtered stderr
    if (process.env.LPC_STDERR_TTY === '1') { process.stderr.isTTY = true; delete process.env.LPC_STDERR_TTY; }
    // the filtering parent gone (killed): hang up too. A worker thread watches, since a CPU-bound step may hold this
    // thread's event loop for minutes.
    const { Worker } = await import('node:worker_threads');
    new Worker(`setInterval(() => { if (process.ppid !== ${process.ppid}) process.kill(process.pid, 'SIGHUP'); }, 500);`, { eval: true }).unref();
  }
  const { main } = await import('../dist/runtime/cli/main.js');
  const code = await main(argv);
  // Writes to a pipe are asynchronous: exiting at once would cut off what is still queued (a long `lpc inspect --ir`
  // or `lpc mem --json` piped into another program). An empty write's callback runs once everything before it is out.
  for (const s of [process.stdout, process.stderr]) if (s.writableLength > 0) await new Promise((r) => s.write('', r));
  process.exit(code);
} else {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...argv], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, LPC_STDERR_FILTERED: '1', ...(process.stderr.isTTY ? { LPC_STDERR_TTY: '1' } : {}) },
  });
  let pending = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    pending += text;
    let out = '';
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!DAWN_NOISE.test(line)) out += `${line}\n`;
    }
    // a partial line passes at once (a progress bar redrawn with \r) unless it may be the start of Dawn's line
    if (pending && !(NOISE_START.startsWith(pending) || pending.startsWith(NOISE_START))) { out += pending; pending = ''; }
    if (out) process.stderr.write(out);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  const ended = new Promise((r) => child.stderr.on('end', r));
  child.on('exit', async (code, signal) => {
    await ended;
    if (pending && !DAWN_NOISE.test(pending)) process.stderr.write(pending);
    if (signal) {
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.removeAllListeners(sig);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}
