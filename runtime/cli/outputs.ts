/**
 * Output paths, checked before any work: a bad one fails at once (not after an epoch of training), names its flag,
 * and never overwrites an input or files lpc did not write. Paths are compared through symlinks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './args.js';
import { SIDECAR } from '../checkpoint.js';

/** `p` with symlinks resolved as far as it exists (an output usually does not exist yet). */
export function realPath(p: string): string {
  const abs = path.resolve(p);
  if (fs.existsSync(abs)) return fs.realpathSync(abs);
  const parent = path.dirname(abs);
  return parent === abs ? abs : path.join(realPath(parent), path.basename(abs));
}

/** Whether path `child` is path `parent` or lies under it, through symlinks. */
export const isWithin = (child: string, parent: string): boolean => within(realPath(child), realPath(parent));

/** Whether `child` is `parent` or lies under it (real paths). */
function within(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * A file `what` (a flag, e.g. '--metrics') will write: its folder exists (or is `willCreate`, a folder the command
 * will make), it is not a folder, and no input is it or holds it.
 */
export function checkOutputFile(what: string, file: string, inputs: string[] = [], willCreate?: string): void {
  if (!file) throw new UsageError(`${what}: the file name is empty`);
  const real = realPath(file), dir = path.dirname(path.resolve(file));
  refuseKernelFs(what, file, real);
  const st = fs.existsSync(real) ? fs.statSync(real) : undefined;
  if (st?.isDirectory()) throw new UsageError(`${what} ${file}: is a directory`);
  if (st && !st.isFile()) throw new UsageError(`${what} ${file}: is ${kindOf(st)}, not a regular file; name a file to write`);
  for (const input of inputs) {
    const a = realPath(input);
    if (real === a) throw new UsageError(`${what} ${file} is the input file too; refusing to overwrite it`);
    if (fs.existsSync(a) && fs.statSync(a).isDirectory() && within(real, a)) throw new UsageError(`${what} ${file} is inside ${input}; refusing to write there`);
  }
  if (willCreate !== undefined && !fs.existsSync(willCreate) && realPath(dir) === realPath(willCreate)) return;
  if (!fs.existsSync(dir)) throw new UsageError(`${what} ${file}: directory ${path.dirname(file)} does not exist`);
  if (!fs.statSync(dir).isDirectory()) throw new UsageError(`${what} ${file}: ${path.dirname(file)} is not a directory`);
  if (st) {
    // opened for writing without truncating or changing it: a read-only file fails now, not after an epoch
    try { fs.closeSync(fs.openSync(real, 'r+')); } catch (e) { throw new UsageError(`${what} ${file}: cannot be written (${errCode(e)})`); }
  } else probeDir(what, file, dir);
}

/** Kernel file systems: a file there is no place for an output (a write may block, fail late or change the system). */
function refuseKernelFs(what: string, shown: string, real: string): void {
  const root = ['/proc', '/sys', '/dev'].find((r) => real === r || real.startsWith(`${r}/`));
  if (root && !(root === '/dev' && (real === '/dev/shm' || real.startsWith('/dev/shm/'))))
    throw new UsageError(`${what} ${shown}: is under ${root}, a kernel file system, not a place for lpc's outputs`);
}

function kindOf(st: fs.Stats): string {
  return st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a regular file';
}

const errCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

/**
 * Creates and deletes an empty probe file in the existing folder `dir`: a read-only folder or file system fails now
 * (for root too, where permissions do not stop a write but a read-only mount does).
 */
function probeDir(what: string, shown: string, dir: string): void {
  const probe = path.join(dir, `.lpc-write-test-${process.pid}`);
  try {
    fs.writeFileSync(probe, '', { flag: 'wx' });
  } catch (e) {
    if (errCode(e) === 'EEXIST') return; // this process's own probe: the folder takes files
    throw new UsageError(`${what} ${shown}: cannot write in ${dir} (${errCode(e)})`);
  }
  fs.rmSync(probe, { force: true });
}

/** Whether two paths name the same place (through symlinks). */
export const samePath = (a: string, b: string) => realPath(a) === realPath(b);

/** Files of a checkpoint directory that lpc writes (and its clean-up deletes): tensor files and temporaries. */
const OURS = /^(state-\d{8}(-e\d+)?\.safetensors|\.(state-\d{8}(-e\d+)?\.safetensors|checkpoint\.json)\.tmp-\d+)$/;
/** Names the clean-up in saveCheckpoint would delete: only lpc's own may be there. */
const CLEANED = /^(state-.*\.safetensors|\..*\.tmp-\d+)$/;
/** Names a checkpoint folder's writer owns: the sidecar, tensor files, temporaries and its lock. */
export const CHECKPOINT_NAME = new RegExp(`^(${SIDECAR.replace('.', '\\.')}|\\.lock|state-.*\\.safetensors|\\..*\\.tmp-\\d+)$`);

/**
 * Checks the checkpoint directory `dir` (`what`: its flag): a new one must be creatable; an existing one must hold
 * nothing that the checkpoint clean-up would delete but lpc did not write, and, unless this run resumes from it, no
 * other run's unfinished checkpoint (it would be replaced).
 */
export function prepareCheckpointDir(what: string, dir: string, resumingFromIt: boolean): void {
  if (!dir) throw new UsageError(`${what}: the directory name is empty`);
  refuseKernelFs(what, dir, realPath(dir));
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw new UsageError(`${what} ${dir}: is not a directory`);
    probeDir(what, dir, dir);
    const entries = fs.readdirSync(dir);
    const foreign = entries.find((f) => CLEANED.test(f) && !OURS.test(f));
    if (foreign) throw new UsageError(`${what} ${dir}: holds ${foreign}, which checkpointing would delete; refusing to write there (choose another directory)`);
    if (!entries.includes(SIDECAR) || resumingFromIt) return;
    let finished = false, at = '';
    try {
      const s = JSON.parse(fs.readFileSync(path.join(dir, SIDECAR), 'utf8'));
      finished = s.position.epochDone === true && s.position.epoch >= s.config.epochs;
      at = ` (epoch ${s.position.epoch} of ${s.config.epochs}, step ${s.position.stepsDone})`;
    } catch { /* unreadable: treat as unfinished, so nothing is replaced */ }
    if (!finished) throw new UsageError(`${what} ${dir}: holds an unfinished run${at}; continue it with --resume ${dir}, or choose another directory`);
    return;
  }
  // made when training starts (nothing is created for a run that fails before): its nearest existing ancestor must be a folder
  let up = path.resolve(dir);
  while (!fs.existsSync(up)) up = path.dirname(up);
  if (!fs.statSync(up).isDirectory()) throw new UsageError(`${what} ${dir}: cannot create it (${up} is not a directory)`);
  probeDir(what, dir, up);
}
