/** A sweep's out directory: checked before anything is written (`lpc sweep`, `lpc sweep collect`). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../cli/args.js';
import { realPath } from '../cli/outputs.js';
import { SWEEP_FILE, SweepFile, SweepIdentity } from './queue.js';

const within = (child: string, parent: string) => {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/** The out directory: not a file, not an input or inside one, and either new, empty, or this very sweep. */
export function checkOutDir(out: string, id: SweepIdentity, inputs: string[]): 'new' | 'resume' {
  if (!out) throw new UsageError('--out: the directory name is empty');
  const real = realPath(out);
  for (const input of inputs) {
    const a = realPath(input);
    if (real === a) throw new UsageError(`--out ${out} is the input ${input}; refusing to write there`);
    if (fs.existsSync(a) && fs.statSync(a).isDirectory() && within(real, a)) throw new UsageError(`--out ${out} is inside the input ${input}; refusing to write there`);
  }
  if (!fs.existsSync(out)) {
    let up = path.resolve(out);
    while (!fs.existsSync(up)) up = path.dirname(up);
    if (!fs.statSync(up).isDirectory()) throw new UsageError(`--out ${out}: cannot create it (${up} is not a directory)`);
    return 'new';
  }
  if (!fs.statSync(out).isDirectory()) throw new UsageError(`--out ${out}: is not a directory`);
  const file = path.join(out, SWEEP_FILE);
  if (!fs.existsSync(file)) {
    if (fs.readdirSync(out).every((f) => f === '.lock')) return 'new';
    throw new UsageError(`--out ${out}: holds files but no ${SWEEP_FILE}; not a sweep directory (choose another)`);
  }
  let old: SweepFile;
  try { old = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { throw new UsageError(`${file}: not valid JSON; not a sweep directory lpc can resume`); }
  const differ = (Object.keys(id) as (keyof SweepIdentity)[]).filter((k) => JSON.stringify(old[k]) !== JSON.stringify(id[k]));
  if (differ.length)
    throw new UsageError(`--out ${out}: holds a sweep made with other options (${differ.map((k) => k === 'model_sha256' ? 'model' : k).join(', ')} differ); resume it with the same options or choose another directory`);
  return 'resume';
}

