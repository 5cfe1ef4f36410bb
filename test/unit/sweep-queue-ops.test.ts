/**
 * Distributed sweeps, operations and guards, against private redis-servers (one open, one with a password):
 * `lpc sweep status` counts and rates, `lpc sweep collect` rebuilding the producer's files, jobs refused by a worker
 * (a model path out of its directory, malformed data) failed with the reason and never run, the password kept out of
 * cell processes' argv/env and out of messages, and one-line errors for an unreachable Redis and a wrong password.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;
if (!haveRedis) console.warn('sweep-queue-ops: SKIPPED — redis-server is not installed (setup.sh installs it on Debian)');
const suite = haveRedis ? describe : describe.skip;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-sweepops-'));
const configs = path.join(tmp, 'configs.json');
fs.writeFileSync(configs, JSON.stringify([{ name: 'fp32', precision: '' }, { name: 'f43', precision: 'W=float<4,3>:stochastic A=float<4,3>:stochastic' }]));
const tasks = path.join(tmp, 'tasks.txt');
fs.writeFileSync(tasks, 'mnist:classes=0,1\nmnist:classes=7,2,4\n');
const args = (out: string, extra: string[] = []) => ['sweep', 'test/fixtures/sweep_tiny.ts', '--configs', configs, '--tasks', tasks, '--out', out,
  '--backend', 'cpu', '--epochs', '1', '--max-steps', '2', '--batch', '16', '--seed', '1', ...extra];
const read = (f: string) => fs.readFileSync(f, 'utf8');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 25_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(50); }
}
const PASSWORD = 'Pw-s3cret-9f2k';
const LPC = path.resolve('bin/lpc.js');

class Lpc {
  readonly proc: ChildProcess;
  err = ''; out = '';
  readonly exited: Promise<number | null>;
  constructor(argv: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.proc = spawn(process.execPath, [LPC, ...argv], { cwd: o.cwd ?? process.cwd(), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LPC_STDERR_FILTERED: '1', ...o.env } });
    this.proc.stderr!.setEncoding('utf8').on('data', (t: string) => { this.err += t; });
    this.proc.stdout!.setEncoding('utf8').on('data', (t: string) => { this.out += t; });
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }
}
/** Runs lpc to its end: exit code, stdout, stderr and the seconds it took. */
const lpc = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [LPC, ...argv], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, seconds: (Date.now() - t0) / 1000 };
};

const freePort = () => new Promise<number>((res) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); }); });
const servers: ChildProcess[] = [];
async function startRedis(port: number, extra: string[] = []): Promise<void> {
  servers.push(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp, ...extra], { stdio: 'ignore' }));
  const c = new Redis({ port, lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  c.on('error', () => {});
  await until('redis-server', async () => /PONG|NOAUTH/.test(await c.ping().catch((e: Error) => e.message)), 10_000);
  c.disconnect();
}

suite('distributed sweeps: status, collect, refused jobs, secrets, bad Redis', () => {
  let port = 0, pwPort = 0;
  const url = (db: number) => `redis://127.0.0.1:${port}/${db}`;
  const pwUrl = (db: number, pw = PASSWORD) => `redis://:${pw}@127.0.0.1:${pwPort}/${db}`;
  const live: Lpc[] = [];
  const start = (argv: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) => { const p = new Lpc(argv, o); live.push(p); return p; };
  beforeAll(async () => {
    port = await freePort(); pwPort = await freePort();
    await Promise.all([startRedis(port), startRedis(pwPort, ['--requirepass', PASSWORD])]);
  }, 30_000);
  afterEach(async () => { await Promise.all(live.splice(0).map((p) => { p.proc.kill('SIGKILL'); return p.exited; })); });
  afterAll(() => { for (const s of servers) s.kill('SIGKILL'); });

  test('status counts a sweep before and after its worker; collect rebuilds the producer\'s files', async () => {
    const out = path.join(tmp, 'st');
    const p = start(args(out, ['--queue', url(1), '--name', 'st']));
    const q = new Queue('lpc-sweep', { connection: { host: '127.0.0.1', port, db: 1 } });
    await until('4 queued jobs', async () => (await q.getJobCounts('wait')).wait === 4);
    await q.close();
    const before = lpc(['sweep', 'status', '--queue', url(1), '--name', 'st']);
    expect([before.code, before.out]).toEqual([0, `sweep 'st' on ${url(1)}: 4 cells: waiting 4, active 0, done 0, failed 0; ETA unknown (no worker has finished a cell lately)\n`]);
    const w = start(['worker', '--queue', url(1)]);
    expect(await p.exited).toBe(0);
    expect(p.err).toMatch(/waiting \d+ {2}active \d+ {2}failed 0 {2}ETA/);
    const wpid = w.proc.pid!;
    const after = lpc(['sweep', 'status', '--queue', url(1), '--name', 'st']);
    expect(after.code).toBe(0);
    expect(after.out).toMatch(new RegExp(`^sweep 'st' on .*: 4 cells: waiting 0, active 0, done 4, failed 0; ETA 0s\\n  worker ${os.hostname()}:${wpid}: 4 cells, [\\d.]+ cells/min\\n$`));
    // collect, as if the producer's directory were lost
    const again = path.join(tmp, 'st-collected');
    const c = lpc(['sweep', 'collect', '--queue', url(1), '--name', 'st', '--out', again]);
    expect([c.code, c.err.trim()]).toEqual([0, `lpc: sweep collect 'st': 4 results written → ${again}/errors.csv, ${again}/memory.csv`]);
    for (const f of ['errors.csv', 'memory.csv', 'metrics.jsonl', 'sweep.json']) expect(read(path.join(again, f))).toBe(read(path.join(out, f)));
    for (const f of fs.readdirSync(path.join(out, 'cells'))) expect(read(path.join(again, 'cells', f))).toBe(read(path.join(out, 'cells', f)));
    expect(lpc(['sweep', 'collect', '--queue', url(1), '--name', 'st', '--out', again]).err).toContain('0 results written, 4 already there');
    const none = lpc(['sweep', 'status', '--queue', url(1), '--name', 'nosuch']);
    expect([none.code, none.err.trim()]).toEqual([1, `lpc: ${url(1)} holds no sweep named 'nosuch'`]);
    // the same name for other options: refused, naming the difference
    const other = args(path.join(tmp, 'st-other'), ['--queue', url(1), '--name', 'st']);
    other[other.indexOf('--seed') + 1] = '2';
    const o = lpc(other);
    expect([o.code, o.err.trim().split('\n').pop()]).toEqual([2, 'lpc: --name st: the queue already holds a sweep of that name made with other options: seed (1 there, 2 here) differ; choose another --name']);
  }, 60_000);

  test('jobs with a model path out of the worker\'s directory, or malformed, are failed with the reason and never run', async () => {
    const wdir = fs.mkdtempSync(path.join(tmp, 'wdir-'));
    fs.symlinkSync(path.resolve('test/fixtures/sweep_tiny.ts'), path.join(wdir, 'evil.ts'));
    const w = start(['worker', '--queue', url(2)], { cwd: wdir });
    await until('the worker', () => w.err.includes('waiting for cells'));
    const good = {
      sweep: 'bad', id: 't000-c000', task: 'mnist:classes=0,1', config: 'fp32', precision: '', model: 'evil.ts', model_sha256: 'a'.repeat(64),
      info: { shape: [1, 28, 28], classes: 2 }, batch: 16, optimizer: JSON.stringify({ kind: 'sgd', lr: 0.1, momentum: 0, wd: 0 }), seed: 1, epochs: 1,
      max_steps: 2, backend: 'cpu',
    };
    const jobs: [Record<string, unknown>, RegExp][] = [
      [{ model: 'evil.ts' }, /is a symlink out of the worker's directory/],
      [{ model: '../../x.ts' }, /leads out of the worker's directory/],
      [{ model: path.resolve('test/fixtures/sweep_tiny.ts') }, /is an absolute path/],
      [{ epochs: 'many' }, /epochs must be an integer/],
      [{ batch: 1e15 }, /batch must be an integer from 1 to 65536/],
      [{ shell: 'rm -rf /' }, /unknown field shell/],
      [{ precision: 'W=float<' }, /precision /],
    ];
    const q = new Queue('lpc-sweep', { connection: { host: '127.0.0.1', port, db: 2 } });
    await q.addBulk(jobs.map(([patch], i) => {
      const data = { ...good, id: `t000-c00${i}`, ...patch };
      return { name: 'cell', data, opts: { jobId: `bad.t000-c00${i}`, attempts: 5, removeOnFail: false } };
    }));
    await until('7 failed jobs', async () => (await q.getJobCounts('failed')).failed === jobs.length);
    for (let i = 0; i < jobs.length; i++) {
      const j = (await q.getJob(`bad.t000-c00${i}`))!;
      expect(j.failedReason).toMatch(new RegExp(`^refused by ${os.hostname()}:${w.proc.pid}: `));
      expect([i, j.failedReason]).toEqual([i, expect.stringMatching(jobs[i][1])]);
      expect(j.attemptsMade).toBe(1); // not retried
    }
    await q.close();
    expect(w.err).not.toMatch(/ started/);
    expect(w.err).toMatch(/job bad\.t000-c000 refused: model evil\.ts is a symlink out/);
  }, 60_000);

  test('the password stays out of cell processes\' argv/env and out of every message', async () => {
    const out = path.join(tmp, 'pw');
    const w = start(['worker', '--queue', 'env'], { env: { LPC_QUEUE: pwUrl(3) } });
    const p = start(args(out, ['--queue', 'env', '--name', 'pw']), { env: { LPC_QUEUE: pwUrl(3) } });
    expect(await p.exited).toBe(0);
    const kids = spawnSync('ps', ['-o', 'pid=', '--ppid', String(w.proc.pid)], { encoding: 'utf8' }).stdout.trim().split(/\s+/).filter(Boolean);
    expect(kids.length).toBeGreaterThan(0); // the cell process, waiting for its next cell
    for (const k of kids) {
      expect(fs.readFileSync(`/proc/${k}/cmdline`, 'utf8')).not.toContain(PASSWORD);
      expect(fs.readFileSync(`/proc/${k}/environ`, 'utf8')).not.toContain(PASSWORD);
    }
    expect(fs.readFileSync(`/proc/${w.proc.pid}/cmdline`, 'utf8')).not.toContain(PASSWORD);
    expect(w.err).toContain(`queue redis://:***@127.0.0.1:${pwPort}/3`);
    for (const text of [w.err, p.err, read(path.join(out, 'sweep.json')), read(path.join(out, 'metrics.jsonl'))]) expect(text).not.toContain(PASSWORD);
    // a URL on the command line is redacted in messages too
    const st = lpc(['sweep', 'status', '--queue', pwUrl(3), '--name', 'nosuch']);
    expect([st.code, st.err.trim()]).toEqual([1, `lpc: redis://:***@127.0.0.1:${pwPort}/3 holds no sweep named 'nosuch'`]);
  }, 60_000);

  test('an unreachable Redis and a wrong password: one line, exit 1, within seconds (sweep, worker, status)', async () => {
    const closed = `redis://:${PASSWORD}@127.0.0.1:${await freePort()}/0`;
    const runs = (u: string) => [
      lpc(args(path.join(tmp, 'never'), ['--queue', u])),
      lpc(['worker', '--queue', u]),
      lpc(['sweep', 'status', '--queue', u, '--name', 'x']),
      lpc(['worker', '--queue', 'env'], { LPC_QUEUE: u }),
    ];
    for (const r of runs(closed)) {
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^lpc: cannot reach redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 \(.*ECONNREFUSED.*\); is redis-server running and reachable there\?\n$/);
      expect(r.seconds).toBeLessThan(6);
    }
    for (const u of [pwUrl(0, 'wrong-pw'), `redis://127.0.0.1:${pwPort}/0`]) for (const r of runs(u)) {
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^lpc: redis redis:\/\/.*refused the credentials \((WRONGPASS|NOAUTH).*\); check the password in the URL\n$/);
      expect(r.err).not.toContain('wrong-pw');
      expect(r.seconds).toBeLessThan(6);
    }
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  }, 90_000);
});
