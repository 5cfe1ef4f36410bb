/** `lpc` — the command line. Each command lives in its own file; this one dispatches and reports errors. */
import * as fs from 'node:fs';
import { compileCommand, compileFlags } from './compile.js';
import { runCommand, runFlags } from './run.js';
import { evalCommand, evalFlags } from './eval.js';
import { inspectCommand, inspectFlags } from './inspect.js';
import { quantCommand, quantFlags } from './quant.js';
import { scheduleCommand, scheduleFlags } from './schedule.js';
import { memCommand, memFlags } from './mem.js';
import { tuneCommand, tuneFlags } from './tune.js';
import { plotCommand, plotFlags } from './plot.js';
import { PEPPP_SUMMARY, PEPPP_USAGE, pepppCommand } from './peppp.js';
import { sweepCommand, sweepFlags } from './sweep.js';
import { workerCommand, workerFlags } from './worker.js';
import { redact } from '../sweep/redact.js';
import { FlagSpec, Parsed, UsageError, helpText, parseArgs } from './args.js';
import { closeBackends } from './backends.js';

/** A command; one with `dispatch` parses its own arguments (subcommands, each with its own flags and --help). */
interface Command { usage: string; summary: string; flags: FlagSpec[]; run(p: Parsed): Promise<void>; dispatch?(argv: string[]): Promise<void> }

const COMMANDS: Record<string, Command> = {
  compile: {
    usage: 'lpc compile <model.ts> [-o out.lpc] [options]',
    summary: 'Type-check a model file, trace it, run the pass pipeline and write a compiled artifact directory.',
    flags: compileFlags, run: compileCommand,
  },
  run: {
    usage: 'lpc run <artifact> [--data mnist] [--epochs N] [--backend webgpu|cpu] [options]',
    summary: 'Train a compiled artifact and evaluate it after every epoch.',
    flags: runFlags, run: runCommand,
  },
  eval: {
    usage: 'lpc eval <artifact> --weights FILE.safetensors|DIR [--data SET] [--swa] [--fp32] [--json OUT] [--backend webgpu|cpu]',
    summary: 'Evaluate weights (a PyTorch state_dict in safetensors, or a checkpoint folder) on a test split: loss, accuracy, per-class accuracy and the confusion matrix, in the artifact\'s precision or with --fp32 in full precision.',
    flags: evalFlags, run: evalCommand,
  },
  inspect: {
    usage: 'lpc inspect <artifact> | <metrics.jsonl>',
    summary: 'Show the kernels, dispatches, FLOPs and bytes moved per step, the memory plan and the IR of an artifact; or a metrics file\'s summary and the quantizer statistics of lpc run --quant-stats.',
    flags: inspectFlags, run: inspectCommand,
  },
  mem: {
    usage: 'lpc mem <model.ts> [--batch N] [--precision SPEC] [--json]',
    summary: 'Plan memory without running: peak bytes by class (weights, gradients, optimizer state, saved activations, workspace).',
    flags: memFlags, run: memCommand,
  },
  tune: {
    usage: 'lpc tune <artifact|model.ts> [--batch N] [--force] [--json]',
    summary: 'Choose the matmul/convolution tilings for this adapter by measuring them (cached on disk) and print the choices.',
    flags: tuneFlags, run: tuneCommand,
  },
  quant: {
    usage: 'lpc quant --format F [--rounding nearest|stochastic] [--shape d0,d1,…] [--seed S] [--hex] [--backend cpu|webgpu]',
    summary: 'Quantize a JSON array read from stdin and write the result as a JSON array (numbers, or float32 hex with --hex).',
    flags: quantFlags, run: quantCommand,
  },
  schedule: {
    usage: "lpc schedule 'cyclic(lo,hi[,periods=N])'|'const(bits)' --iters N [--json]",
    summary: 'Print the bit width of a precision schedule (CPT) at every training iteration.',
    flags: scheduleFlags, run: scheduleCommand,
  },
  plot: {
    usage: 'lpc plot <metrics.jsonl> [-o plot.svg] [--title TEXT]',
    summary: 'Draw a metrics file (lpc run --metrics) as an SVG: loss, accuracy, bit width and lr per step or epoch.',
    flags: plotFlags, run: plotCommand,
  },
  sweep: {
    usage: 'lpc sweep <model.ts> --configs peppp|FILE.json|grid:… --tasks FILE --out DIR [--epochs N] [--max-steps N] [--workers N] [--backend webgpu|cpu] [--batch B] [--seed S] [--optimizer SPEC] [--queue URL [--name SWEEP]]\n       lpc sweep status --queue URL --name SWEEP\n       lpc sweep collect --queue URL --name SWEEP --out DIR',
    summary: 'Train every (task, precision configuration) cell and write PEPPP-layout error and memory matrices (resumable).',
    flags: sweepFlags, run: sweepCommand,
  },
  worker: {
    usage: 'lpc worker --queue redis://[user:password@]host:port[/db]|env [--concurrency N] [--stall-seconds S]',
    summary: 'Run the cells of distributed sweeps (lpc sweep --queue) from a Redis queue until stopped (SIGTERM drains).',
    flags: workerFlags, run: workerCommand,
  },
  peppp: { usage: PEPPP_USAGE, summary: PEPPP_SUMMARY, flags: [], run: async () => {}, dispatch: pepppCommand },
};

function topHelp(): string {
  return `lpc — a low-precision training compiler\n\nusage: lpc <command> [options]\n\ncommands:\n${Object.entries(COMMANDS)
    .map(([k, c]) => `  ${k.padEnd(9)} ${c.summary}`).join('\n')}\n\n'lpc <command> --help' (or 'lpc help <command>') shows a command's options; 'lpc --version' prints the version.\n\n` +
    `environment:\n` +
    `  LPC_MODEL_TIMEOUT=S    seconds a model's code may run while it is traced in the sandbox (default 60)\n` +
    `  LPC_MODEL_MEMORY=MIB   heap a model's code may use while it is traced (default 2048)\n` +
    `  LPC_CACHE_DIR=DIR      where tilings chosen by lpc tune are cached (default $XDG_CACHE_HOME/lpc)\n` +
    `  LPC_TUNE=off           use the default tilings, measure nothing\n` +
    `  LPC_DEBUG=1            print the stack of an error\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest.length === 1) return main([rest[0], '--help']);
  if (!name || name === '--help' || name === '-h' || name === 'help') { process.stdout.write(topHelp()); return name ? 0 : 2; }
  if (name === '--version' || name === '-V') { process.stdout.write(`lpc ${packageVersion()}\n`); return 0; }
  const cmd = COMMANDS[name];
  try {
    if (!cmd) throw new UsageError(`unknown command '${name}'; commands are ${Object.keys(COMMANDS).join(', ')}`);
    if (cmd.dispatch) { await cmd.dispatch(rest); return 0; }
    if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(helpText(cmd.usage, cmd.summary, cmd.flags)); return 0; }
    await cmd.run(parseArgs(name, rest, cmd.flags));
    return 0;
  } catch (e) {
    // on a terminal, a status line may be under way (loading data, tuning): the error replaces it
    const clear = process.stderr.isTTY ? '\r\x1b[2K' : '';
    if (!(e instanceof Error)) { process.stderr.write(`${clear}lpc: internal error: a non-Error value was thrown: ${String(e)}\n`); return 1; }
    process.stderr.write(`${clear}lpc: ${redact(e.message)}\n`);
    if (process.env.LPC_DEBUG) process.stderr.write(`${e.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  } finally {
    await closeBackends().catch(() => {});
  }
}

/** The version in lpc's package.json (in the folder that holds dist/). */
function packageVersion(): string {
  const pj = new URL('../../../package.json', import.meta.url);
  return JSON.parse(fs.readFileSync(pj, 'utf8')).version as string;
}
