/** Progress display: a live bar on a TTY, plain lines (a few per epoch) otherwise. */
export class Progress {
  private lastPlain = 0;
  private readonly tty: boolean;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr, tty?: boolean) {
    this.tty = tty ?? !!out.isTTY;
  }

  update(epoch: number, epochs: number, step: number, steps: number, loss: number, imgsPerSec: number): void {
    const stats = `loss ${loss.toFixed(4)}  ${imgsPerSec.toFixed(0)} img/s`;
    if (this.tty) {
      const w = 24, done = Math.round((step / steps) * w);
      this.out.write(`\r\x1b[2Kepoch ${epoch}/${epochs} [${'█'.repeat(done)}${'░'.repeat(w - done)}] ${step}/${steps}  ${stats}`);
    } else if (step === steps || Date.now() - this.lastPlain > 10000) {
      this.lastPlain = Date.now();
      this.out.write(`epoch ${epoch}/${epochs} step ${step}/${steps}  ${stats}\n`);
    }
  }

  line(s: string): void {
    this.out.write(this.tty ? `\r\x1b[2K${s}\n` : `${s}\n`);
  }
}
