/**
 * Distributed sweeps (`lpc sweep --queue`, `lpc worker`) against a private redis-server: the same results as a local
 * sweep, idempotent enqueuing, a SIGKILLed worker's cell handed on and recorded once, a restarted producer
 * re-attaching, Redis restarted mid-sweep, a failing cell recorded once and not retried. Runs the built bin/lpc.js.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { F43, cellMetrics, cells, read, tinySweep } from './sweep-fixture.js';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;
if (!haveRedis) console.warn('sweep-queue: SKIPPED — redis-server is not installed (setup.sh installs it on Debian: apt-get install redis-server)');
const suite = haveRedis ? describe : describe.skip;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-sweepq-'));
const { configs, tasks, args } = tinySweep(tmp);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 45_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(50); }
}

/** A process of bin/lpc.js (run in this child itself, so its pid is the command's), its stderr collected. */
class Lpc {
  readonly proc: ChildProcess;
  err = '';
  readonly exited: Promise<number | null>;
  constructor(argv: string[], cwd = process.cwd()) {
    this.proc = spawn(process.execPath, [path.resolve('bin/lpc.js'), ...argv], { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LPC_STDERR_FILTERED: '1' } });
    this.proc.stderr!.setEncoding('utf8').on('data', (t: string) => { this.err += t; });
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }
  count(re: RegExp): number { return (this.err.match(re) ?? []).length; }
  async stop(): Promise<number | null> { this.proc.kill('SIGTERM'); return this.exited; }
}

let port = 0, redis: ChildProcess | undefined;
const startRedis = async () => {
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
  const c = new Redis({ port, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  await until('redis-server', async () => (await c.ping().catch(() => '')) === 'PONG', 10_000);
  c.disconnect();
};
const stopRedis = async () => { const r = redis!; r.kill('SIGKILL'); await new Promise((res) => (r.exitCode !== null || r.signalCode ? res(null) : r.on('exit', res))); };
/** Each test has its own Redis database. */
const url = (db: number) => `redis://127.0.0.1:${port}/${db}`;
const queueOf = (db: number) => new Queue('lpc-sweep', { connection: { host: '127.0.0.1', port, db } });
const worker = (db: number, extra: string[] = []) => new Lpc(['worker', '--queue', url(db), ...extra]);

suite('lpc sweep --queue and lpc worker (BullMQ on a private redis-server)', () => {
  const local = path.join(tmp, 'local');
  const live: Lpc[] = [];
  const spawnLpc = (argv: string[]) => { const p = new Lpc(argv); live.push(p); return p; };
  beforeAll(async () => {
    port = await new Promise<number>((res) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); }); });
    await startRedis();
    const r = spawnSync(process.execPath, ['bin/lpc.js', ...args(local)], { encoding: 'utf8' });
    expect(r.status).toBe(0);
  }, 60_000);
  afterEach(async () => { await Promise.all(live.splice(0).map((p) => { p.proc.kill('SIGKILL'); return p.exited; })); });
  afterAll(async () => { if (redis) await stopRedis(); });

  const sameAsLocal = (dir: string) => {
    expect(cells(dir)).toEqual(cells(local));
    expect(cellMetrics(dir)).toEqual(cellMetrics(local));
    for (const f of ['errors.csv', 'memory.csv']) expect(read(path.join(dir, f))).toBe(read(path.join(local, f)));
  };

  test('2 workers give the local sweep\'s results; enqueuing the same sweep twice adds nothing', async () => {
    const w = [spawnLpc(['worker', '--queue', url(1)]), spawnLpc(['worker', '--queue', url(1)])];
    const out = path.join(tmp, 'q2');
    const p = spawnLpc(args(out, ['--queue', url(1), '--name', 'two']));
    expect(await p.exited).toBe(0);
    expect(p.err).toContain("as 'two': 4 cells enqueued, 0 already in the queue");
    expect(p.err).toContain('sweep finished 4/4 cells (0 failed)');
    sameAsLocal(out);
    expect(w[0].err).toMatch(/backend cpu/);
    // the same sweep again, into another directory: its 4 jobs are there, finished; nothing is added or run again
    const again = path.join(tmp, 'q2-again');
    const p2 = spawnLpc(args(again, ['--queue', url(1), '--name', 'two']));
    expect(await p2.exited).toBe(0);
    expect(p2.err).toContain("as 'two': 0 cells enqueued, 4 already in the queue");
    sameAsLocal(again);
    const q = queueOf(1);
    expect(await q.getJobCounts('completed', 'wait', 'active', 'failed', 'delayed')).toEqual({ completed: 4, wait: 0, active: 0, failed: 0, delayed: 0 });
    for (const j of await q.getJobs(['completed'])) expect(j.attemptsMade).toBe(1);
    await q.close();
    expect(w[0].count(/ started/g) + w[1].count(/ started/g)).toBe(4);
    // the same name for other options is refused
    const otherArgs = args(path.join(tmp, 'q2-other'), ['--queue', url(1), '--name', 'two']);
    otherArgs[otherArgs.indexOf('--seed') + 1] = '2';
    const other = spawnLpc(otherArgs);
    expect(await other.exited).toBe(2);
    expect(other.err).toContain('--name two: the queue already holds a sweep of that name made with other options');
    // SIGTERM drains: the workers exit 0
    expect(await Promise.all(w.map((x) => x.stop()))).toEqual([0, 0]);
    expect(w[0].err).toContain('lpc worker: stopped');
  }, 60_000);

  test('a producer killed and restarted re-attaches: finished cells are collected, none is enqueued or run again', async () => {
    const out = path.join(tmp, 'reattach');
    const p = spawnLpc(args(out, ['--queue', url(2), '--name', 'reattach']));
    const q = queueOf(2);
    await until('4 queued jobs', async () => (await q.getJobCounts('wait')).wait === 4);
    const w = spawnLpc(['worker', '--queue', url(2)]);
    await until('2 recorded cells', () => fs.existsSync(path.join(out, 'cells')) && fs.readdirSync(path.join(out, 'cells')).filter((f) => f.endsWith('.json')).length >= 2);
    p.proc.kill('SIGKILL');
    await p.exited;
    await until('the worker to finish the other cells', async () => (await q.getJobCounts('completed')).completed === 4);
    const again = spawnLpc(args(out, ['--queue', url(2), '--name', 'reattach']));
    expect(await again.exited).toBe(0);
    expect(again.err).toMatch(/\((2|3) already done\)/);
    expect(again.err).toMatch(/0 cells enqueued, (1|2) already in the queue/);
    sameAsLocal(out);
    expect(w.count(/ started/g)).toBe(4);
    expect((await q.getJobCounts('completed')).completed).toBe(4);
    await q.close();
  }, 60_000);

  test('a worker SIGKILLed mid-cell: another takes the cell after stall detection; it is recorded exactly once', async () => {
    const out = path.join(tmp, 'killed');
    const a = spawnLpc(['worker', '--queue', url(3), '--stall-seconds', '4']);
    await until('worker a', () => a.err.includes('waiting for cells'));
    const p = spawnLpc(args(out, ['--queue', url(3), '--name', 'killed']));
    await until('worker a to start a cell', () => / started/.test(a.err));
    a.proc.kill('SIGKILL');
    await a.exited;
    const cell = a.err.match(/killed (t\d+-c\d+) \(/)![1];
    const b = spawnLpc(['worker', '--queue', url(3), '--stall-seconds', '4']);
    expect(await p.exited).toBe(0);
    expect(p.count(/^sweep cells /gm)).toBe(4); // one result line per cell
    sameAsLocal(out);
    expect(b.err).toMatch(new RegExp(`killed ${cell} \\(.*\\) started`));
    const q = queueOf(3);
    expect((await q.getJobCounts('completed')).completed).toBe(4);
    await q.close();
  }, 60_000);

  test('Redis restarted (its data lost) mid-sweep: the worker and the producer reconnect and the sweep completes', async () => {
    const out = path.join(tmp, 'restart');
    const w = spawnLpc(['worker', '--queue', url(4), '--stall-seconds', '4']);
    const p = spawnLpc(args(out, ['--queue', url(4), '--name', 'restart']));
    await until('a recorded cell', () => fs.existsSync(path.join(out, 'cells')) && fs.readdirSync(path.join(out, 'cells')).some((f) => f.endsWith('.json')));
    await stopRedis();
    await sleep(500);
    await startRedis();
    expect(await p.exited).toBe(0);
    expect(p.err).toMatch(/had no job in the queue \(was Redis restarted\?\); enqueued again/);
    sameAsLocal(out);
    expect(p.count(/^sweep cells /gm)).toBe(4);
    expect(w.err).toContain('reconnected');
  }, 60_000);

  test('a cell that fails (diverges) is recorded as failed once, not retried', async () => {
    const out = path.join(tmp, 'failing');
    spawnLpc(['worker', '--queue', url(5)]);
    const p = spawnLpc(args(out, ['--queue', url(5), '--name', 'failing', '--optimizer', 'sgd(lr=1e30,momentum=0.9,wd=0)']));
    expect(await p.exited).toBe(0);
    expect(p.err).toContain('sweep finished 4/4 cells (2 failed)');
    for (const i of [0, 2]) expect(cells(out)[i]).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^training diverged/) });
    const q = queueOf(5);
    for (const j of await q.getJobs(['completed'])) expect(j.attemptsMade).toBe(1);
    expect((await q.getJobCounts('completed')).completed).toBe(4);
    await q.close();
  }, 60_000);

  test('a machine fault (a worker without the model file) is retried on another worker', async () => {
    const out = path.join(tmp, 'fault');
    const elsewhere = fs.mkdtempSync(path.join(tmp, 'elsewhere-'));
    const bad = new Lpc(['worker', '--queue', url(6)], elsewhere);
    live.push(bad);
    await until('the model-less worker', () => bad.err.includes('waiting for cells'));
    const p = spawnLpc(args(out, ['--queue', url(6), '--name', 'fault']));
    await until('a machine fault', () => bad.err.includes('machine fault: no model file test/fixtures/sweep_tiny.ts'));
    spawnLpc(['worker', '--queue', url(6)]);
    expect(await p.exited).toBe(0);
    sameAsLocal(out);
  }, 60_000);

  test('bad --queue and --name are refused with one line', () => {
    const r = (extra: string[]) => spawnSync(process.execPath, ['bin/lpc.js', ...args(path.join(tmp, 'never'), extra)], { encoding: 'utf8' });
    expect(r(['--queue', 'http://x:1']).stderr.trim()).toBe("lpc: --queue 'http://x:1': expected redis://[user:password@]host:port[/db]");
    expect(r(['--queue', url(7), '--name', 'a:b']).stderr.trim()).toBe("lpc: --name must be 1 to 64 letters, digits, _ or -, got 'a:b'");
    expect(r(['--name', 'x']).stderr.trim()).toBe('lpc: --name goes with --queue');
    const w = spawnSync(process.execPath, ['bin/lpc.js', 'worker'], { encoding: 'utf8' });
    expect([w.status, w.stderr.trim()]).toEqual([2, 'lpc: lpc worker needs --queue redis://host:port']);
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  });
});
