/**
 * `lpc peppp <subcommand>`: PEPPP's meta-learning over a (data set x configuration) error matrix and its memory
 * matrix. Each subcommand is one entry of SUBCOMMANDS (usage, summary, flags, run); adding one is one line there.
 * Inputs are checked before any work; outputs go through a temporary file and a rename.
 */
import { FlagSpec, Parsed, UsageError, helpText, parseArgs } from './args.js';
import { fitFlags, fitCommand, paretoFlags, paretoCommand, selectFlags, selectCommand } from './peppp-basic.js';
import { loocvFlags, loocvCommand, predictFlags, predictCommand } from './peppp-learn.js';
import { pepppMemoryCommand, pepppMemoryFlags } from './peppp-memory.js';
import { pepppTuneCommand, pepppTuneFlags } from './peppp-tune.js';

export interface Subcommand { usage: string; summary: string; flags: FlagSpec[]; run(p: Parsed): Promise<void> }

export const SUBCOMMANDS: Record<string, Subcommand> = {
  memory: {
    usage: 'lpc peppp memory <model.ts> [--batch 32] [--input CxHxW] [--classes K] [--configs peppp|grid:…|FILE.json] [--no-planned] [--json]',
    summary: "Each configuration's memory by PEPPP's accounting (as its released matrix), and lpc's own plan with every tensor at its format's width.",
    flags: pepppMemoryFlags, run: pepppMemoryCommand,
  },
  tune: {
    usage: 'lpc peppp tune <model.ts> --data SPEC --budget MB --meta errors.csv|DIR --out DIR [--measurements 5] [--configs peppp] [--epochs N] [--max-steps N] [--workers N] [--json]',
    summary: 'Pick a precision for a new data set under a memory budget: train a few informative configurations, predict the rest, print the recommended --precision and the predicted frontier (+ SVG).',
    flags: pepppTuneFlags, run: pepppTuneCommand,
  },
  fit: {
    usage: 'lpc peppp fit --errors F [--mask F | --sample uniform=R|nonuniform=R [--memory F]] [--rank 5] [--lambda 0.1] [--seed S] -o completed.csv',
    summary: 'Complete an error matrix (missing or unobserved entries) with weighted SoftImpute and write the completed matrix as CSV.',
    flags: fitFlags, run: fitCommand,
  },
  select: {
    usage: 'lpc peppp select --errors F [--memory F --row NAME] [--rank 5] [--method ed|qr|random] [--measurements N] [--cap none|median|MB] [--json]',
    summary: 'Which configurations to measure on a new data set, from the embedding the meta-training error matrix gives.',
    flags: selectFlags, run: selectCommand,
  },
  predict: {
    usage: "lpc peppp predict --errors F --memory F --measured 'col=err,…' | --measured-file F [--memory-row NAME] [--budget MB] [--rank 5] [--json] [--plot out.svg]",
    summary: 'Predict every configuration\'s error on a new data set from a few measured ones; print the predicted frontier and the configuration to use under a memory budget.',
    flags: predictFlags, run: predictCommand,
  },
  pareto: {
    usage: 'lpc peppp pareto --errors F --memory F --row NAME [--rule peppp|textbook] [--json] [--plot out.svg]',
    summary: 'The memory-error Pareto frontier of one measured data set (row).',
    flags: paretoFlags, run: paretoCommand,
  },
  loocv: {
    usage: 'lpc peppp loocv --errors F --memory F [--drop-rows 28] [--rank 5] [--methods ed,qr,random] [--measurements 5..15] [--cap none|median|MB] [--sample none|uniform=R|nonuniform=R [--mask F]] [--seed S] [--per-row] --json OUT',
    summary: 'PEPPP\'s meta leave-one-out cross-validation: hold out each data set, measure a few configurations, predict the rest and score the predicted frontier.',
    flags: loocvFlags, run: loocvCommand,
  },
};

export const PEPPP_USAGE = `lpc peppp <${Object.keys(SUBCOMMANDS).join('|')}> [options]`;
export const PEPPP_SUMMARY = 'PEPPP: memory by its accounting; meta-learning: complete error matrices, choose configurations to measure, predict errors and Pareto frontiers, cross-validate.';

function pepppHelp(): string {
  return `usage: ${PEPPP_USAGE}\n\n${PEPPP_SUMMARY}\n\nsubcommands:\n${Object.entries(SUBCOMMANDS)
    .map(([k, c]) => `  ${k.padEnd(9)} ${c.summary}`).join('\n')}\n\n'lpc peppp <subcommand> --help' shows its options.\n`;
}

/** The dispatcher main.ts calls with the arguments after 'peppp'. */
export async function pepppCommand(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest.length === 1) return pepppCommand([rest[0], '--help']);
    process.stdout.write(pepppHelp());
    if (!name) throw new UsageError(`lpc peppp needs a subcommand: ${Object.keys(SUBCOMMANDS).join(', ')}`);
    return;
  }
  const sub = SUBCOMMANDS[name];
  if (!sub) throw new UsageError(`unknown subcommand 'lpc peppp ${name}'; subcommands are ${Object.keys(SUBCOMMANDS).join(', ')}`);
  if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(helpText(sub.usage, sub.summary, sub.flags)); return; }
  await sub.run(parseArgs(`peppp ${name}`, rest, sub.flags));
}
