/**
 * The sweep directory and its cell queue.
 *
 * DIR/sweep.json            what the sweep is (model text hash, configurations, tasks, epochs, steps, seed, batch,
 *                           optimizer, backend); a sweep resumes only with exactly these
 * DIR/artifacts/<key>.lpc   one compiled artifact per distinct (configuration, input shape, classes), + <key>.json
 *                           (compile seconds, planned memory)
 * DIR/cells/<id>.json       one result per finished cell (ok or failed), written atomically: the source of truth
 * DIR/cells/<id>.jsonl      the cell's per-epoch training metrics
 * DIR/errors.csv, DIR/memory.csv, DIR/metrics.jsonl   regenerated from the cell results after every result
 *
 * Workers take cells from a CellSource: claim one, run it, report its result. `DirQueue` is the local one (the
 * sweep process, or its forked workers through IPC); a remote queue (Redis, …) implements the same two calls.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { writeAtomic } from '../files.js';
import { CellJob, CellResult } from './cell.js';
import { formatMatrixCsv } from '../peppp/matrix-csv.js';
import { lockDirectory } from '../lock.js';
import type { SweepConfig } from './configs.js';

/** Where workers get cells and put results. */
export interface CellSource {
  /** The next cell to run, taken from the queue (no other worker gets it), or undefined when none is left. */
  claim(): Promise<CellJob | undefined>;
  /** Records a claimed cell's result; the cell is finished once this resolves. */
  report(result: CellResult): Promise<void>;
}

/** What defines a sweep: a directory is resumed only by a sweep with the same identity. */
export interface SweepIdentity {
  model_sha256: string;
  configs: SweepConfig[];
  tasks: string[];
  epochs: number;
  max_steps: number | null;
  seed: number;
  batch: number;
  optimizer: string;
  backend: string;
}

export interface SweepFile extends SweepIdentity { format: 'lpc-sweep'; version: 1; model: string }

export const SWEEP_FILE = 'sweep.json';

export const cellId = (t: number, c: number) => `t${String(t).padStart(3, '0')}-c${String(c).padStart(3, '0')}`;

/** A task's input shape and class count (what its artifact is compiled for). */
export interface TaskInfo { shape: number[]; classes: number }

/** The compiled artifact of one (configuration, shape, classes): made on first use, then reused. */
export interface ArtifactEntry { dir: string; memory_mb: number; compile_seconds: number; fresh: boolean }

/** Compiles one artifact; returns the seconds it took and the configuration's memory in MB (PEPPP's accounting). */
export type Compiler = (precision: string, info: TaskInfo, out: string) => { seconds: number; memory_mb: number };

/** The name of the artifact of (configuration precision, task shape and classes) in a sweep: a hash of what it is compiled from. */
export const artifactKey = (id: Pick<SweepIdentity, 'model_sha256' | 'batch' | 'optimizer'>, precision: string, info: TaskInfo): string =>
  createHash('sha256').update(JSON.stringify({
    model: id.model_sha256, precision, shape: info.shape, classes: info.classes, batch: id.batch, optimizer: id.optimizer,
  })).digest('hex').slice(0, 16);

/** One sweep per directory at a time (runtime/lock.ts). */
export const lockSweepDir = (dir: string): void => lockDirectory(dir, 'lpc sweep');

export class DirQueue implements CellSource {
  private readonly pending: { t: number; c: number }[] = [];
  private readonly results = new Map<string, CellResult>();
  private readonly compiled = new Map<string, ArtifactEntry | { failed: string }>();
  /** Called after each stored result (progress). */
  onResult?: (r: CellResult) => void;

  constructor(readonly dir: string, readonly id: SweepIdentity, private readonly tasks: TaskInfo[],
    private readonly compile: Compiler, private readonly backend: string) {
    fs.mkdirSync(path.join(dir, 'cells'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
    // temporaries of a killed run (results and metrics are renamed into place only when whole)
    for (const sub of ['cells', 'artifacts'])
      for (const f of fs.readdirSync(path.join(dir, sub)))
        if (/\.tmp-\d+(\.old)?$/.test(f)) fs.rmSync(path.join(dir, sub, f), { recursive: true, force: true });
    for (let t = 0; t < id.tasks.length; t++)
      for (let c = 0; c < id.configs.length; c++) {
        const r = this.readResult(cellId(t, c));
        if (r) this.results.set(r.id, r); else this.pending.push({ t, c });
      }
  }

  get total(): number { return this.id.tasks.length * this.id.configs.length; }
  get finished(): CellResult[] { return [...this.results.values()]; }
  get remaining(): number { return this.pending.length; }
  /** The cells without a result, in order. */
  get unfinished(): { t: number; c: number }[] { return this.pending.filter(({ t, c }) => !this.results.has(cellId(t, c))); }
  /** Artifacts compiled or reused so far. */
  get artifacts(): ArtifactEntry[] { return [...this.compiled.values()].filter((a): a is ArtifactEntry => 'dir' in a); }

  private readResult(id: string): CellResult | undefined {
    try {
      const r = JSON.parse(fs.readFileSync(path.join(this.dir, 'cells', `${id}.json`), 'utf8')) as CellResult;
      return r.id === id && (r.status === 'ok' || r.status === 'failed') ? r : undefined;
    } catch { return undefined; }
  }

  /** The artifact of (configuration c, task t's shape and classes), compiled now if the sweep has none yet. */
  private artifact(t: number, c: number): ArtifactEntry | { failed: string } {
    const info = this.tasks[t], precision = this.id.configs[c].precision;
    const key = artifactKey(this.id, precision, info);
    const known = this.compiled.get(key);
    if (known) return known;
    const dir = path.join(this.dir, 'artifacts', `${key}.lpc`), side = path.join(this.dir, 'artifacts', `${key}.json`);
    let entry: ArtifactEntry | { failed: string };
    try {
      if (fs.existsSync(side) && fs.existsSync(dir)) {
        const s = JSON.parse(fs.readFileSync(side, 'utf8'));
        entry = { dir, memory_mb: s.memory_mb, compile_seconds: s.compile_seconds, fresh: false };
      } else {
        const { seconds, memory_mb } = this.compile(precision, info, dir);
        writeAtomic(side, JSON.stringify({ precision, ...info, compile_seconds: seconds, memory_mb }) + '\n');
        entry = { dir, memory_mb, compile_seconds: seconds, fresh: true };
      }
    } catch (e) {
      entry = { failed: `compile: ${(e as Error).message.split('\n')[0]}` };
    }
    this.compiled.set(key, entry);
    return entry;
  }

  async claim(): Promise<CellJob | undefined> {
    for (;;) {
      const next = this.pending.shift();
      if (!next) return undefined;
      const { t, c } = next, id = cellId(t, c);
      const a = this.artifact(t, c);
      const task = this.id.tasks[t], config = this.id.configs[c].name;
      if ('failed' in a) {
        await this.report({
          id, task, config, status: 'failed', error: null, test_loss: null, train_loss: null, steps: 0, memory_mb: null,
          seconds: 0, train_seconds: 0, reason: a.failed,
        });
        continue;
      }
      return {
        id, taskIndex: t, configIndex: c, task, config, artifact: a.dir, memory_mb: a.memory_mb, seed: this.id.seed,
        epochs: this.id.epochs, ...(this.id.max_steps !== null ? { maxSteps: this.id.max_steps } : {}), backend: this.backend,
        metricsPath: path.join(this.dir, 'cells', `${id}.jsonl`),
      };
    }
  }

  async report(r: CellResult): Promise<void> {
    writeAtomic(path.join(this.dir, 'cells', `${r.id}.json`), JSON.stringify(r, null, 1) + '\n');
    this.results.set(r.id, r);
    this.writeTables();
    this.onResult?.(r);
  }

  /** errors.csv, memory.csv (PEPPP's layout: `dataset,<configs>`, one row per task, empty = failed or unfinished) and metrics.jsonl. */
  writeTables(): void {
    const names = this.id.configs.map((c) => c.name);
    const table = (value: (r: CellResult) => number | null) => formatMatrixCsv({
      rows: this.id.tasks, cols: names,
      data: this.id.tasks.map((_, t) => Float64Array.from(names, (_n, c) => {
        const r = this.results.get(cellId(t, c));
        return (r ? value(r) : null) ?? NaN; // NaN: an empty field
      })),
    });
    writeAtomic(path.join(this.dir, 'errors.csv'), table((r) => (r.status === 'ok' ? r.error : null)));
    writeAtomic(path.join(this.dir, 'memory.csv'), table((r) => r.memory_mb));
    const lines: string[] = [];
    for (let t = 0; t < this.id.tasks.length; t++)
      for (let c = 0; c < this.id.configs.length; c++) {
        const r = this.results.get(cellId(t, c));
        if (r) lines.push(JSON.stringify(r));
      }
    writeAtomic(path.join(this.dir, 'metrics.jsonl'), lines.map((l) => `${l}\n`).join(''));
  }
}
