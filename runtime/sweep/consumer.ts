/**
 * `lpc worker`: takes cell jobs from the sweep queue (BullMQ), compiles each configuration once per process (cached
 * by artifact hash in a temporary folder), trains the cell in a forked cell process (runtime/sweep/worker.ts, the
 * one `lpc sweep --workers` uses, so this process's event loop stays free to renew the job's lock) and returns its
 * result and metrics.
 *
 * A cell's own failure (divergence, too little data, a configuration that does not compile) is a result, recorded
 * once; a machine fault (the model file missing or different here, the backend not starting, the cell process
 * dying) fails the try, and BullMQ gives the job to a worker again (ATTEMPTS tries). After a fault this worker rests
 * a few seconds so that another takes the retry; after 3 faults in a row it stops. A worker killed outright loses its
 * job's lock, and another worker's stall check hands the job on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fork, ChildProcess } from 'node:child_process';
import { Job, Worker, WaitingError, UnrecoverableError } from 'bullmq';
import { CellJob, CellResult, MachineFault } from './cell.js';
import { artifactKey } from './queue.js';
import { compileSweepArtifact } from './compile.js';
import { MAX_STALLED, QUEUE_NAME, RemoteCell, RemoteResult, connect, probe, redactUrl } from './redis.js';
import { redact, withoutQueue } from './redact.js';
import { InvalidJob, validateCell } from './validate.js';
import type { ToParent, ToWorker } from './worker.js';

export interface WorkerOptions { url: string; concurrency: number; stallSeconds: number }

const log = (line: string) => process.stderr.write(`lpc worker: ${redact(line)}\n`);

/** One forked cell process: runs one cell at a time. */
class CellProcess {
  private readonly proc: ChildProcess;
  private claimed = false;
  private onClaim?: () => void;
  private current?: { resolve: (r: CellResult) => void; reject: (e: Error) => void };
  dead = false;
  constructor(private readonly free: CellProcess[]) {
    this.proc = fork(new URL('./worker.js', import.meta.url), [], { execArgv: [], env: withoutQueue(process.env), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: ToParent) => {
      if (m.type === 'claim') {
        const go = this.onClaim;
        this.onClaim = undefined;
        if (go) go(); else this.claimed = true;
      } else {
        const c = this.current;
        this.current = undefined;
        this.free.push(this);
        c?.resolve(m.result);
      }
    });
    this.proc.on('exit', (code, signal) => {
      this.dead = true;
      const i = this.free.indexOf(this);
      if (i >= 0) this.free.splice(i, 1);
      this.current?.reject(new MachineFault(`the cell process exited (${signal ?? `code ${code}`})`));
      this.current = undefined;
    });
  }
  run(job: CellJob): Promise<CellResult> {
    return new Promise((resolve, reject) => {
      this.current = { resolve, reject };
      const go = () => { this.claimed = false; this.send({ type: 'cell', job }); };
      if (this.claimed) go(); else this.onClaim = go;
    });
  }
  private send(m: ToWorker): void { if (this.proc.connected) this.proc.send(m); }
  /** Ends the process: told there is nothing left when it waits for a cell, killed when it runs one. */
  stop(): void {
    if (this.dead) return;
    if (this.claimed) this.send({ type: 'done' }); else this.proc.kill('SIGKILL');
  }
}

/** This worker in results and reasons: `host:pid`. */
const me = `${os.hostname()}:${process.pid}`;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function runWorker(o: WorkerOptions): Promise<void> {
  await probe(o.url);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-worker-'));
  process.once('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  const free: CellProcess[] = [], all = new Set<CellProcess>();
  const compiled = new Map<string, { dir: string; memory_mb: number } | { failed: string }>();
  const announced = new Set<string>();
  let faults = 0, handingBack = false, stopping = false;

  /** The model file here, checked against the sweep's hash: a machine fault when this machine lacks it. */
  const modelHere = (cell: RemoteCell, file: string): string => {
    let text: Buffer;
    try { text = fs.readFileSync(file); } catch { throw new MachineFault(`no model file ${cell.model} on this machine (in ${process.cwd()})`); }
    if (sha256(text) !== cell.model_sha256) throw new MachineFault(`${file} differs from the sweep's model (another version?)`);
    return file;
  };
  const artifact = (cell: RemoteCell, file: string) => {
    const key = artifactKey(cell, cell.precision, cell.info);
    let a = compiled.get(key);
    if (!a) {
      const dir = path.join(tmp, `${key}.lpc`);
      try {
        a = { dir, memory_mb: compileSweepArtifact(file, cell.precision, cell.info, cell.batch, JSON.parse(cell.optimizer), dir).memory_mb };
      } catch (e) {
        if (typeof (e as NodeJS.ErrnoException).code === 'string') throw e; // a full disk: the machine's
        a = { failed: `compile: ${(e as Error).message.split('\n')[0]}` };
      }
      compiled.set(key, a);
    }
    return a;
  };
  const announce = async (backend: string) => {
    if (announced.has(backend)) return;
    if (backend === 'webgpu') {
      const { getGpu } = await import('../webgpu/device.js');
      const gpu = await getGpu({ quiet: true }).catch((e: Error) => { throw new MachineFault(`webgpu backend: ${e.message.split('\n')[0]}`); });
      log(`adapter ${gpu.adapterDescription}${gpu.isCpuDriver ? ' (a CPU driver)' : ''}`);
    } else log(`backend cpu (lpc's CPU interpreter on ${os.cpus()[0]?.model ?? 'this CPU'})`);
    announced.add(backend);
  };

  const conn = connect(o.url, 'lpc worker');
  let worker!: Worker<RemoteCell, RemoteResult>;
  const process1 = async (job: Job<RemoteCell, RemoteResult>, token?: string): Promise<RemoteResult> => {
    const started_at = Date.now(), t0 = performance.now();
    let cell: RemoteCell, file: string;
    try {
      ({ cell, file } = validateCell(job.data, job.id, process.cwd()));
    } catch (e) {
      if (!(e instanceof InvalidJob)) throw e;
      log(`job ${String(job.id).slice(0, 80)} refused: ${e.message}`);
      throw new UnrecoverableError(`refused by ${me}: ${e.message}`);
    }
    log(`${cell.sweep} ${cell.id} (${cell.task} × ${cell.config}) started${job.attemptsStarted > 1 ? `, try ${job.attemptsStarted}` : ''}`);
    try {
      await announce(cell.backend);
      const a = artifact(cell, modelHere(cell, file));
      let result: CellResult, metrics: string | null = null;
      if ('failed' in a) {
        result = { id: cell.id, task: cell.task, config: cell.config, status: 'failed', error: null, test_loss: null, train_loss: null,
          steps: 0, memory_mb: null, seconds: 0, train_seconds: 0, reason: a.failed };
      } else {
        const metricsPath = path.join(tmp, `${cell.sweep}.${cell.id}.jsonl`);
        const [t, c] = cell.id.match(/\d+/g)!.map(Number);
        const child = free.pop() ?? new CellProcess(free);
        all.add(child);
        result = await child.run({ id: cell.id, taskIndex: t, configIndex: c, task: cell.task, config: cell.config, artifact: a.dir,
          memory_mb: a.memory_mb, seed: cell.seed, epochs: cell.epochs, ...(cell.max_steps !== null ? { maxSteps: cell.max_steps } : {}),
          backend: cell.backend, metricsPath });
        if (result.status === 'ok') metrics = fs.readFileSync(metricsPath, 'utf8');
        fs.rmSync(metricsPath, { force: true });
      }
      faults = 0;
      log(`${cell.sweep} ${cell.id} ${result.status === 'ok' ? `done, error ${result.error!.toFixed(4)}` : `FAILED: ${result.reason}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      return { result, metrics, worker: me, started_at, finished_at: Date.now() };
    } catch (e) {
      if (handingBack && token) {
        await job.moveToWait(token);
        log(`${cell.sweep} ${cell.id} handed back to the queue`);
        throw new WaitingError();
      }
      const message = redact((e as Error).message.split('\n')[0]);
      log(`${cell.sweep} ${cell.id}: machine fault: ${message}; the job goes back to the queue`);
      if (++faults >= 3) {
        log(`3 machine faults in a row: this worker stops`);
        process.exitCode = 1;
        void stop(false);
      } else if (!stopping) {
        // rest so that another worker takes the retry
        void worker.pause(true).then(() => setTimeout(() => { if (!stopping) worker.resume(); }, 3000 * faults));
      }
      throw new Error(`machine fault on ${os.hostname()} (pid ${process.pid}): ${message}`);
    }
  };

  worker = new Worker<RemoteCell, RemoteResult>(QUEUE_NAME, process1, {
    connection: conn, concurrency: o.concurrency, lockDuration: o.stallSeconds * 1000, stalledInterval: o.stallSeconds * 1000,
    maxStalledCount: MAX_STALLED, autorun: false,
  });
  let lastError = '';
  worker.on('error', (e) => {
    const m = e.message.split('\n')[0];
    if (m !== lastError && !/ECONNREFUSED|ECONNRESET|Connection is closed/.test(m)) log(`queue: ${m}`);
    lastError = m;
  });

  let stopResolve!: () => void;
  const finished = new Promise<void>((resolve) => { stopResolve = resolve; });
  /** Drains: no new jobs; the running ones finish (or, when `handBack`, go back to the queue at once). */
  const stop = async (handBack: boolean) => {
    if (handBack && !handingBack) {
      handingBack = true;
      log('handing the running cells back to the queue');
      for (const c of all) c.stop();
    }
    if (stopping) return;
    stopping = true;
    log('draining: finishing the running cells, taking no more (signal again to hand them back now)');
    await worker.close();
    for (const c of all) c.stop();
    stopResolve();
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void stop(stopping));

  log(`pid ${process.pid}, queue ${redactUrl(o.url)} (${QUEUE_NAME}), concurrency ${o.concurrency}; waiting for cells (SIGTERM drains)`);
  void worker.run().catch((e: Error) => { log(`queue: ${e.message}`); process.exitCode = 1; void stop(false); });
  await finished;
  conn.disconnect();
  log('stopped');
}
