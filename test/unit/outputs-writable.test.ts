/**
 * Every output `lpc run` writes is checked to be writable before the first step: a read-only checkpoint folder, a
 * FIFO, a device or a file under /proc fails at once with one line naming the flag (never a hang, never after an
 * epoch), and nothing is created. Runs the built bin/lpc.js with a timeout, so a hang fails the test.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-outw-'));
afterAll(() => { try { fs.chmodSync(path.join(tmp, 'ro'), 0o755); } catch { /* not made */ } fs.rmSync(tmp, { recursive: true, force: true }); });
const art = path.join(tmp, 'l8.lpc');
const isRoot = process.getuid?.() === 0;

function run(...extra: string[]) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', 'run', art, '--data', 'synthetic', '--backend', 'cpu', '--epochs', '1', '--max-steps', '1', ...extra],
    { encoding: 'utf8', timeout: 30000 });
  return { code: r.status, err: r.stderr, signal: r.signal };
}
const oneLine = (r: { code: number | null; err: string; signal: NodeJS.Signals | null }, re: RegExp) => {
  expect(r.signal).toBeNull(); // not killed by the timeout: no hang
  expect(r.code).toBe(2);
  expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
  expect(r.err).toMatch(re);
  expect(r.err).not.toContain('training');
};

beforeAll(() => {
  const r = spawnSync(process.execPath, ['bin/lpc.js', 'compile', 'models/lenet5.ts', '--batch', '8', '-o', art], { encoding: 'utf8' });
  expect(r.status).toBe(0);
});

test('--metrics under /proc, a FIFO, a device: refused at once', () => {
  oneLine(run('--metrics', '/proc/self/status'), /^lpc: --metrics \/proc\/self\/status: is under \/proc, a kernel file system, not a place for lpc's outputs\n$/);
  const fifo = path.join(tmp, 'fifo');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  oneLine(run('--metrics', fifo), /^lpc: --metrics .*fifo: is a FIFO, not a regular file; name a file to write\n$/);
  oneLine(run('--metrics', '/dev/null'), /^lpc: --metrics \/dev\/null: is under \/dev, a kernel file system/);
});

test('--checkpoint under /proc or /sys, or under a file: refused at once, nothing created', () => {
  oneLine(run('--checkpoint', '/proc/x'), /^lpc: --checkpoint \/proc\/x: is under \/proc, a kernel file system/);
  oneLine(run('--checkpoint', '/sys/lpc-ckpt'), /^lpc: --checkpoint \/sys\/lpc-ckpt: is under \/sys/);
  const file = path.join(tmp, 'plain');
  fs.writeFileSync(file, 'x');
  oneLine(run('--checkpoint', path.join(file, 'ck')), /cannot create it \(.*plain is not a directory\)/);
  oneLine(run('--metrics', path.join(file, 'm.jsonl')), /plain is not a directory/);
  expect(fs.readFileSync(file, 'utf8')).toBe('x');
});

test('a read-only checkpoint folder or metrics file is found before the first step', () => {
  const ro = path.join(tmp, 'ro');
  fs.mkdirSync(ro);
  fs.writeFileSync(path.join(ro, 'm.jsonl'), 'old\n');
  fs.chmodSync(path.join(ro, 'm.jsonl'), 0o444);
  fs.chmodSync(ro, 0o555);
  if (isRoot) {
    // root writes through permissions: the refusal cannot happen here (a read-only mount would still fail: EROFS)
    console.warn('running as root: read-only permissions do not stop writes; skipping those runs');
  } else {
    oneLine(run('--checkpoint', ro), /^lpc: --checkpoint .*ro: cannot write in .*ro \(EACCES\)\n$/);
    oneLine(run('--checkpoint', path.join(ro, 'sub')), /^lpc: --checkpoint .*sub: cannot write in .*ro \(EACCES\)\n$/);
    oneLine(run('--metrics', path.join(ro, 'm.jsonl')), /^lpc: --metrics .*m\.jsonl: cannot be written \(EACCES\)\n$/);
  }
  fs.chmodSync(ro, 0o755);
  expect(fs.readdirSync(ro)).toEqual(['m.jsonl']); // no probe left behind, nothing made
  expect(fs.readFileSync(path.join(ro, 'm.jsonl'), 'utf8')).toBe('old\n');
});

test('a writable checkpoint folder and metrics file pass, and the probe leaves nothing', () => {
  const ck = path.join(tmp, 'ck'), m = path.join(tmp, 'm.jsonl');
  const r = run('--checkpoint', ck, '--metrics', m);
  expect(r.code).toBe(0);
  expect(fs.readdirSync(ck).filter((f) => f.startsWith('.lpc-write-test'))).toEqual([]);
  expect(fs.readdirSync(tmp).filter((f) => f.startsWith('.lpc-write-test'))).toEqual([]);
});
