/**
 * Reading a file that an artifact or a checkpoint names: it must be a regular file (not a symlink, which could point
 * at a device or outside the folder, not a FIFO that would block) no larger than a limit, so that a hostile or
 * damaged folder cannot make lpc hang or exhaust memory. Returns undefined-free results or a reason to report.
 */
import * as fs from 'node:fs';

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
