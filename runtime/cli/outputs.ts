/**
 * Output paths, checked before any work: a bad one fails at once (not after an epoch of training), names its flag,
 * and never overwrites an input or a directory lpc did not write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './args.js';
import { fsReason } from '../artifact.js';
import { SIDECAR } from '../checkpoint.js';

const inside = (child: string, parent: string) => !path.relative(parent, child).startsWith('..') && !path.isAbsolute(path.relative(parent, child));

/** A file `what` (a flag, e.g. '--metrics') will write: its folder exists, it is not a folder, and no input is it or holds it. */
export function checkOutputFile(what: string, file: string, inputs: string[] = []): void {
  if (!file) throw new UsageError(`${what}: the file name is empty`);
  const abs = path.resolve(file), dir = path.dirname(abs);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) throw new UsageError(`${what} ${file}: is a directory`);
  if (!fs.existsSync(dir)) throw new UsageError(`${what} ${file}: directory ${path.dirname(file)} does not exist`);
  if (!fs.statSync(dir).isDirectory()) throw new UsageError(`${what} ${file}: ${path.dirname(file)} is not a directory`);
  for (const input of inputs) {
    const a = path.resolve(input);
    if (abs === a) throw new UsageError(`${what} ${file} is the input file too; refusing to overwrite it`);
    if (fs.existsSync(a) && fs.statSync(a).isDirectory() && inside(abs, a)) throw new UsageError(`${what} ${file} is inside ${input}; refusing to write there`);
  }
}

/**
 * Creates the checkpoint directory `dir` (`what`: its flag), or checks an existing one: it must be empty or hold an
 * lpc checkpoint, and, unless this run resumes from it, not another run's unfinished one (it would be replaced).
 */
export function prepareCheckpointDir(what: string, dir: string, resumingFromIt: boolean): void {
  if (!dir) throw new UsageError(`${what}: the directory name is empty`);
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw new UsageError(`${what} ${dir}: is not a directory`);
    const entries = fs.readdirSync(dir);
    if (!entries.includes(SIDECAR)) {
      if (entries.length) throw new UsageError(`${what} ${dir}: exists and is not a checkpoint directory; refusing to write into it (choose a new or empty one)`);
      return;
    }
    if (resumingFromIt) return;
    let finished = false, at = '';
    try {
      const s = JSON.parse(fs.readFileSync(path.join(dir, SIDECAR), 'utf8'));
      finished = s.position.epochDone === true && s.position.epoch >= s.config.epochs;
      at = ` (epoch ${s.position.epoch} of ${s.config.epochs}, step ${s.position.stepsDone})`;
    } catch { /* unreadable: treat as unfinished, so nothing is replaced */ }
    if (!finished) throw new UsageError(`${what} ${dir}: holds an unfinished run${at}; continue it with --resume ${dir}, or choose another directory`);
    return;
  }
  try { fs.mkdirSync(dir, { recursive: true }); } catch (e) {
    throw new UsageError(`${what} ${dir}: cannot create it (${fsReason(e as NodeJS.ErrnoException)})`);
  }
}
