/**
 * Task lists for sweeps: `--tasks FILE` holds one --data spec per line (`#` starts a comment, blank lines are
 * ignored); every spec is checked as --data checks it, and errors name the file and line.
 */
import * as fs from 'node:fs';
import { parseDataSpec } from './index.js';

export class TaskError extends Error {
  constructor(message: string) { super(message); this.name = 'TaskError'; }
}

export interface TaskLine { spec: string; line: number }

/** The tasks of `file` in order, or a TaskError `file:line: …`. */
export function readTasksFile(file: string): TaskLine[] {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    throw new TaskError(`--tasks ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const out: TaskLine[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const spec = raw.replace(/#.*$/, '').trim();
    if (!spec) return;
    const line = i + 1;
    try { parseDataSpec(spec); } catch (e) { throw new TaskError(`${file}:${line}: ${(e as Error).message}`); }
    if (spec.includes('"') || spec.includes('\n')) throw new TaskError(`${file}:${line}: a task spec may not contain '"'`);
    const before = seen.get(spec);
    if (before !== undefined) throw new TaskError(`${file}:${line}: task '${spec}' is already listed on line ${before}`);
    seen.set(spec, line);
    out.push({ spec, line });
  });
  if (out.length === 0) throw new TaskError(`${file}: lists no tasks (one --data spec per line)`);
  return out;
}

/**
 * The model's logits width against the task's classes: a class-subset task (classes=, superclass=) needs exactly
 * its number of outputs, a full set at least its classes. Returns the one-line problem, or undefined.
 */
export function classesProblem(model: string, outputs: number | undefined, spec: string, classes: number): string | undefined {
  if (outputs === undefined) return undefined;
  const { classes: list, superclass } = parseDataSpec(spec);
  const task = list !== undefined || superclass !== undefined;
  if (task ? outputs !== classes : classes > outputs)
    return `model '${model}' has ${outputs} outputs but ${spec} has ${classes} classes${task ? ` (compile it with --classes ${classes})` : ''}`;
  return undefined;
}
