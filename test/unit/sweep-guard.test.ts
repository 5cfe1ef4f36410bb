/** The worker's guards, without Redis: redact(), job validation, models only from inside the worker's directory, naming what differs. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { redact, withoutQueue } from '../../runtime/sweep/redact.js';
import { validateCell, modelInside } from '../../runtime/sweep/validate.js';
import { identityDifference } from '../../runtime/sweep/redis.js';
import type { SweepIdentity } from '../../runtime/sweep/queue.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-guard-'));
const root = path.join(tmp, 'root');
fs.mkdirSync(path.join(root, 'models'), { recursive: true });
fs.writeFileSync(path.join(root, 'models', 'm.ts'), 'x');
fs.writeFileSync(path.join(tmp, 'outside.ts'), 'y');
fs.symlinkSync(path.join(tmp, 'outside.ts'), path.join(root, 'evil.ts'));
fs.symlinkSync(path.join(root, 'models', 'm.ts'), path.join(root, 'ok-link.ts'));

export const goodCell = () => ({
  sweep: 's1', id: 't000-c001', task: 'mnist:classes=0,1', config: 'f43', precision: 'W=float<4,3>:stochastic', model: 'models/m.ts',
  model_sha256: 'a'.repeat(64), info: { shape: [1, 28, 28], classes: 2 }, batch: 16,
  optimizer: JSON.stringify({ kind: 'sgd', lr: 0.1, momentum: 0.9, wd: 0 }), seed: 1, epochs: 2, max_steps: 3, backend: 'cpu',
});
const why = (data: unknown, id: string | undefined = 's1.t000-c001') => {
  try { validateCell(data, id, root); return 'ok'; } catch (e) { return (e as Error).message; }
};

test('redact() hides the password of every URL in a text, and nothing else', () => {
  expect(redact('redis://:hunter2@h:6379/0')).toBe('redis://:***@h:6379/0');
  expect(redact('redis://alice:hunter2@h:6379/0')).toBe('redis://alice:***@h:6379/0');
  expect(redact('rediss://u:p%40ss@h/1 and redis://:x@y:1')).toBe('rediss://u:***@h/1 and redis://:***@y:1');
  expect(redact('connect ECONNREFUSED 127.0.0.1:6379; redis://h:6379/0')).toBe('connect ECONNREFUSED 127.0.0.1:6379; redis://h:6379/0');
  expect(redact('redis://alice@h:6379')).toBe('redis://alice@h:6379');
  expect(redact('expected redis://[user:password@]host:port[/db]')).toBe('expected redis://[user:password@]host:port[/db]');
  expect(withoutQueue({ LPC_QUEUE: 'redis://:p@h', PATH: '/bin' })).toEqual({ PATH: '/bin' });
});

test('a well-formed job passes; its model resolves inside the root (a symlink inside it too)', () => {
  expect(why(goodCell())).toBe('ok');
  expect(validateCell(goodCell(), undefined, root).file).toBe(fs.realpathSync(path.join(root, 'models', 'm.ts')));
  expect(modelInside('ok-link.ts', root)).toBe(fs.realpathSync(path.join(root, 'models', 'm.ts')));
  expect(why({ ...goodCell(), max_steps: null })).toBe('ok');
});

test('model paths out of the worker\'s directory are refused: absolute, .., a symlink out', () => {
  expect(why({ ...goodCell(), model: path.join(tmp, 'outside.ts') })).toMatch(/is an absolute path; a worker loads models only from inside its directory/);
  expect(why({ ...goodCell(), model: '../outside.ts' })).toMatch(/leads out of the worker's directory .*\('\.\.'\)/);
  expect(why({ ...goodCell(), model: 'models/../../outside.ts' })).toMatch(/leads out/);
  expect(why({ ...goodCell(), model: 'evil.ts' })).toMatch(/is a symlink out of the worker's directory/);
});

test('malformed and hostile jobs are refused with a reason', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ epochs: '5' }, /^epochs must be an integer from 1 to 10000, got "5"/],
    [{ batch: 1e12 }, /^batch must be an integer from 1 to 65536/],
    [{ seed: -1 }, /^seed must be an integer/],
    [{ max_steps: 1.5 }, /^max_steps must be an integer/],
    [{ extra: 1 }, /^unknown field extra/],
    [{ precision: 'W=float<4,3' }, /^precision /],
    [{ precision: 42 }, /^precision must be a string/],
    [{ backend: 'shell' }, /^backend must be cpu or webgpu/],
    [{ sweep: 'a b' }, /^sweep 'a b' is not of the form/],
    [{ model_sha256: 'zz' }, /^model_sha256 'zz' is not of the form/],
    [{ info: { shape: [1, 1e9], classes: 2 } }, /^info\.shape\[1\] must be an integer/],
    [{ info: { shape: [1, 28, 28], classes: 2, x: 1 } }, /^info must be \{shape, classes\}/],
    [{ optimizer: '{"kind":"sgd","lr":1,"momentum":0,"wd":0,"evil":1}' }, /^optimizer: unknown field evil/],
    [{ optimizer: 'not json' }, /^optimizer is not JSON/],
    [{ task: 'x'.repeat(5000) }, /^task is longer than 4096/],
  ];
  for (const [patch, re] of cases) expect([patch, why({ ...goodCell(), ...patch })]).toEqual([patch, expect.stringMatching(re)]);
  const { epochs: _e, ...noEpochs } = goodCell();
  expect(why(noEpochs)).toBe('no epochs');
  expect(why(null)).toBe('the job data is not an object');
  expect(why([1])).toBe('the job data is not an object');
  expect(why(goodCell(), 'other.t000-c001')).toBe("the job's id other.t000-c001 is not s1.t000-c001");
});

test('a name taken by other options: the message names what differs', () => {
  const a: SweepIdentity = { model_sha256: 'a'.repeat(64), configs: [{ name: 'fp32', precision: '' }], tasks: ['mnist:classes=0,1'], epochs: 2,
    max_steps: 3, seed: 1, batch: 16, optimizer: '{}', backend: 'cpu' };
  expect(identityDifference(a, { ...a, seed: 2 })).toBe('seed (1 there, 2 here)');
  expect(identityDifference(a, { ...a, epochs: 5, model_sha256: 'b'.repeat(64) })).toBe('model (sha256 aaaaaaaaaaaa… there, bbbbbbbbbbbb… here), epochs (2 there, 5 here)');
  expect(identityDifference(a, { ...a, tasks: ['mnist:classes=0,1', 'mnist:classes=2,3'] })).toBe('tasks (1 there, 2 here; new here: "mnist:classes=2,3")');
});
