/**
 * A sweep worker process (forked by `lpc sweep --workers N`): takes cells from its parent over IPC, runs them and
 * reports the results; the parent owns the queue and writes every file except a cell's metrics.
 *
 * Protocol: worker → parent `{type: 'claim'}` | `{type: 'result', result}`; parent → worker `{type: 'cell', job}` |
 * `{type: 'done'}`. The worker exits when told there is nothing left, or when its parent goes away.
 */
import { CellJob, CellResult, work } from './cell.js';
import type { CellSource } from './queue.js';
import { closeBackends } from '../cli/backends.js';

export type ToWorker = { type: 'cell'; job: CellJob } | { type: 'done' };
export type ToParent = { type: 'claim' } | { type: 'result'; result: CellResult };

/** The parent's queue seen from a worker. */
class IpcSource implements CellSource {
  private waiting?: (job: CellJob | undefined) => void;
  constructor() {
    process.on('message', (m: ToWorker) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.(m.type === 'cell' ? m.job : undefined);
    });
  }
  claim(): Promise<CellJob | undefined> {
    return new Promise((resolve) => { this.waiting = resolve; this.send({ type: 'claim' }); });
  }
  report(result: CellResult): Promise<void> {
    return new Promise((resolve) => this.send({ type: 'result', result }, resolve));
  }
  private send(m: ToParent, done?: () => void): void {
    if (!process.connected) process.exit(1);
    process.send!(m, undefined, {}, (e) => { if (e) process.exit(1); done?.(); });
  }
}

if (process.send) {
  process.on('disconnect', () => process.exit(1));
  work(new IpcSource())
    .then(() => closeBackends().catch(() => {}))
    .then(() => process.exit(0), (e) => { process.stderr.write(`lpc sweep worker: ${(e as Error).message}\n`); process.exit(1); });
}
