/** The tiny sweep the local and the queued sweep tests share: two configurations × two MNIST tasks of LeNet-size. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const F43 = 'W=float<4,3>:stochastic A=float<4,3>:stochastic E=float<5,2>:stochastic G=float<4,3>:stochastic M=float<6,9>:stochastic ACC=float<6,9>:stochastic';

/** The configurations and tasks files in `tmp`, and the sweep's arguments with `--out OUT`. */
export function tinySweep(tmp: string) {
  const configs = path.join(tmp, 'configs.json');
  fs.writeFileSync(configs, JSON.stringify([{ name: 'fp32', precision: '' }, { name: 'f43', precision: F43 }]));
  const tasks = path.join(tmp, 'tasks.txt');
  fs.writeFileSync(tasks, '# two MNIST tasks\nmnist:classes=0,1\nmnist:classes=7,2,4   # three digits\n');
  const args = (out: string, extra: string[] = []) => ['sweep', 'test/fixtures/sweep_tiny.ts', '--configs', configs, '--tasks', tasks, '--out', out,
    '--backend', 'cpu', '--epochs', '2', '--max-steps', '3', '--batch', '16', '--seed', '1', ...extra];
  return { configs, tasks, args };
}

export const read = (f: string) => fs.readFileSync(f, 'utf8');
/** Cell results without their wall-clock fields. */
export const cells = (dir: string) => fs.readdirSync(path.join(dir, 'cells')).filter((f) => f.endsWith('.json')).sort().map((f) => {
  const r = JSON.parse(read(path.join(dir, 'cells', f)));
  delete r.seconds; delete r.train_seconds;
  return r;
});
/** Per-cell training metrics without wall-clock fields. */
export const cellMetrics = (dir: string) => fs.readdirSync(path.join(dir, 'cells')).filter((f) => f.endsWith('.jsonl')).sort().map((f) =>
  read(path.join(dir, 'cells', f)).trim().split('\n').map((l) => { const o = JSON.parse(l); delete o.seconds; delete o.images_per_sec; return o; }));
