/** Progress display: a live bar on a TTY, plain lines (a few per epoch) otherwise. */
export class Progress {
  private lastPlain = 0;
  private readonly tty: boolean;
  constructor(private readonly out: Pick<NodeJS.WriteStream, 'write' | 'isTTY'> = process.stderr, tty?: boolean) {
    this.tty = tty ?? !!out.isTTY;
  }

  update(epoch: number, epochs: number, step: number, steps: number, loss: number, imgsPerSec: number): void {
    this.bar(`epoch ${epoch}/${epochs}`, step, steps, `loss ${loss.toFixed(4)}  ${imgsPerSec.toFixed(0)} img/s`, step === steps, 'step ');
  }

  /**
   * `label [████░░] done/total  stats` redrawn in place on a TTY; otherwise a plain line when `force`, or at most
   * every 10 s. `unit` names what is counted in plain lines ('step ' → `step 3/10`).
   */
  bar(label: string, done: number, total: number, stats: string, force = false, unit = ''): void {
    if (this.tty) {
      const w = 24, filled = Math.round((done / Math.max(total, 1)) * w);
      this.out.write(`\r\x1b[2K${label} [${'█'.repeat(filled)}${'░'.repeat(w - filled)}] ${done}/${total}  ${stats}`);
    } else if (force || Date.now() - this.lastPlain > 10000) {
      this.lastPlain = Date.now();
      this.out.write(`${label} ${unit}${done}/${total}  ${stats}\n`);
    }
  }

  /** A status line: on a TTY redrawn in place until the next output (kept when `done`); otherwise a plain line
   *  when `done` (what is only under way is not worth a line of a log). */
  status(s: string, done = false): void {
    if (this.tty) this.out.write(`\r\x1b[2K${s}${done ? '\n' : ''}`);
    else if (done) this.out.write(`${s}\n`);
  }

  line(s: string): void {
    this.out.write(this.tty ? `\r\x1b[2K${s}\n` : `${s}\n`);
  }
}

/** A Progress that shows nothing (training inside a sweep cell). */
export const silentProgress = (): Progress => new Progress({ write: () => true, isTTY: false }, false);
