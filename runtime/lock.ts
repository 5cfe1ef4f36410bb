/**
 * One writer per output directory: `DIR/.lock` holds the owner's pid, created exclusively. A lock whose process is
 * gone (a killed run) is taken over. Two sweeps in one directory would delete each other's temporaries and train the
 * same cells; two runs in one checkpoint folder would overwrite each other's checkpoints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const alive = (pid: number) => {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
};

/** Takes `dir`'s lock for this process until it exits; `what` names the other holder in the refusal. */
export function lockDirectory(dir: string, what: string): void {
  const file = path.join(dir, '.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      process.once('exit', () => {
        try { if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.rmSync(file); } catch { /* gone already */ }
      });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = NaN;
      try { pid = Number(fs.readFileSync(file, 'utf8').trim()); } catch { continue; }
      if (pid === process.pid) return; // this process holds it already
      if (Number.isInteger(pid) && pid > 0 && alive(pid))
        throw new Error(`${dir}: another ${what} (pid ${pid}) is running in this directory; wait for it, stop it, or (if none runs) delete ${file}`);
      fs.rmSync(file, { force: true });
    }
  }
  throw new Error(`${dir}: cannot take the lock ${file}`);
}
