/**
 * Files lpc reads and writes. Writing: every file lpc writes is fsynced, and a file that replaces another goes through
 * a temporary name in its folder and a rename, so a reader (or a crash) sees the old file or the new one, never half
 * of one. Reading a file that an artifact or a checkpoint names: it must be a regular file (not a symlink, which could point
 * at a device or outside the folder, not a FIFO that would block) no larger than a limit, so that a hostile or
 * damaged folder cannot make lpc hang or exhaust memory. Returns undefined-free results or a reason to report.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The file's bytes, or an Error message (for the caller to attach its place to). */
export function readDataFile(file: string, maxBytes: number): Buffer | string {
  let st: fs.Stats;
  try { st = fs.lstatSync(file); } catch { return 'is missing'; }
  if (st.isSymbolicLink()) return 'is a symbolic link, not a regular file';
  if (!st.isFile()) return 'is not a regular file';
  if (st.size > maxBytes) return `is ${st.size} bytes, more than the ${maxBytes} this file may hold`;
  return fs.readFileSync(file);
}

/** `s` with control characters (a newline, say) escaped as \n or \uXXXX: a name read from a file, safe in a one-line message. */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** Writes `file` and fsyncs it before returning. */
export function writeSynced(file: string, data: Buffer | string): void {
  const fd = fs.openSync(file, 'w');
  try { fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** Writes `file` through a temporary name in its folder (fsynced, then renamed): a reader sees the old file or the new
 *  one, and a failed write leaves no temporary behind. */
export function writeAtomic(file: string, data: Buffer | string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    writeSynced(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // a full disk, a read-only folder
    throw e;
  }
  syncFolder(path.dirname(file));
}

/** fsyncs a folder so that a rename in it is durable (best effort: some file systems refuse). */
export function syncFolder(dir: string): void {
  try { const fd = fs.openSync(dir, 'r'); try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); } } catch { /* not supported here */ }
}
