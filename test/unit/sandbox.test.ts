/**
 * A model file is a program: `lpc compile` and `lpc mem` run it in a child process under Node's permission model
 * (runtime/sandbox). Escape attempts fail with one line naming the model's line; endless loops, memory hogs and
 * process.exit end with one line and a non-zero exit; nothing is written.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd } from '../../dsl/frontend.js';
import { frontEndSandboxed, sandboxLimits, traceSandboxed } from '../../runtime/sandbox/trace.js';
import { printModule } from '../../ir/print.js';
import { pepppCounts } from '../../runtime/peppp/counts.js';
import { loadModel } from '../../dsl/frontend.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-sandbox-'));
const secret = path.join(tmp, 'secret.txt');
fs.writeFileSync(secret, 'do not read me');
const victim = path.join(tmp, 'victim.txt');

/** A tiny model whose build function runs `body` first (the hostile part), at line 4 of the file. */
function modelFile(name: string, body: string, top = ''): string {
  const file = path.join(tmp, `${name}.ts`);
  fs.writeFileSync(file, `import { model, input, flatten, linear } from 'lpc/dsl';\ndeclare const process: any, globalThis: any, require: any, fetch: any, console: any;\n${top}\nexport default model('${name}', () => {\n  ${body}\n  return linear(flatten(input([1, 4, 4])), 2);\n});\n`);
  return file;
}

function lpc(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The one line of a failed command, which must name the model file. */
function oneLine(r: { code: number | null; err: string }, file: string): string {
  expect(r.code).toBe(1);
  const lines = r.err.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(file);
  return lines[0];
}

describe('the sandbox contains model code', () => {
  const escapes: [string, string, RegExp][] = [
    ['binding', `globalThis.process.binding('fs');`, /process\.binding: denied by the sandbox/],
    ['dlopen', `process.dlopen({}, '/tmp/x.node');`, /may not call process\.dlopen/],
    ['exit', 'process.exit(0);', /may not end the process \(process\.exit\)/],
    ['kill', 'process.kill(process.ppid, "SIGKILL");', /may not send signals/],
    ['chdir', 'process.chdir("/");', /may not call process\.chdir/],
    ['fetch', 'fetch("http://127.0.0.1:1/");', /fetch is not defined/],
    ['require', 'require("fs");', /may import only 'lpc\/dsl'/],
  ];
  test.each(escapes)('%s fails at the model line, and nothing is written', (name, body, message) => {
    const file = modelFile(`esc_${name}`, body);
    const r = lpc(['compile', file, '-o', path.join(tmp, `${name}.lpc`)]);
    const line = oneLine(r, file);
    expect(line).toMatch(message);
    expect(fs.existsSync(path.join(tmp, `${name}.lpc`))).toBe(false);
  });

  test('asynchronous work the model starts never runs: the child exits when the trace is done', () => {
    const file = modelFile('dyn', `new Function('return import("node:fs")')().then((fs: any) => fs.writeFileSync(${JSON.stringify(victim)}, 'x'));\n  setTimeout(() => { throw new Error('late'); }, 0);`,
      'declare const setTimeout: any;');
    expect(traceSandboxed(file, 2, {}).module.name).toBe('dyn');
    expect(fs.existsSync(victim)).toBe(false);
  });

  test("the permission model is on in the model's process: reads of lpc only, no writes, processes or workers", () => {
    const root = fs.realpathSync(process.cwd());
    const asks = [['fs.read', path.join(root, 'dist', 'dsl', 'index.js'), true], ['fs.read', secret, false], ['fs.read', '/etc/passwd', false], ['fs.write', tmp, false],
      ['fs.write', root, false], ['child', undefined, false], ['worker', undefined, false]] as const;
    const checks = asks.map(([scope, ref, want]) =>
      `if (globalThis.process.permission.has(${JSON.stringify(scope)}${ref ? `, ${JSON.stringify(ref)}` : ''}) !== ${want}) throw new Error('${scope} ${ref ?? ''} is not ${want}');`).join('\n  ');
    expect(traceSandboxed(modelFile('perm', checks), 2, {}).module.name).toBe('perm');
  });

  test('an endless loop ends at the time limit with one line', () => {
    const file = modelFile('loop', 'while (true) {}');
    const t0 = Date.now();
    const r = lpc(['compile', file, '-o', path.join(tmp, 'loop.lpc')], { LPC_MODEL_TIMEOUT: '1.5' });
    expect(oneLine(r, file)).toMatch(/ran longer than 1\.5 s while tracing.*LPC_MODEL_TIMEOUT/);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const m = lpc(['mem', file], { LPC_MODEL_TIMEOUT: '1.5' });
    expect(oneLine(m, file)).toMatch(/ran longer than 1\.5 s/);
  });

  test('a memory hog ends at the memory limit with one line', () => {
    const file = modelFile('hog', 'const a: number[][] = []; for (;;) a.push(new Array(1e6).fill(1.5));');
    const r = lpc(['compile', file, '-o', path.join(tmp, 'hog.lpc')], { LPC_MODEL_MEMORY: '128' });
    expect(oneLine(r, file)).toMatch(/used more than 128 MiB while tracing.*LPC_MODEL_MEMORY/);
  });

  test('a throw of a non-Error value names the value and its line', () => {
    for (const [v, shown] of [['undefined', 'undefined'], ["'oops'", '"oops"'], ['{ code: 7 }', '{"code":7}'], ['42', '42']]) {
      const file = modelFile('thrownv', `throw ${v};`);
      const r = lpc(['compile', file, '-o', path.join(tmp, 'thrownv.lpc')]);
      expect(oneLine(r, file)).toBe(`lpc: ${file}:5:3: the model threw ${shown}, which is not an Error`);
    }
    // the same in-process (tests and the benchmarks trace without the sandbox)
    expect(() => loadModel(modelFile('thrownv2', 'x();', 'function x(): never { throw null; }')).build({})).toThrow(/thrownv2\.ts:3:23: the model threw null/);
  });

  test("a model's printing goes to stderr, not into a command's stdout", () => {
    const file = modelFile('chatty', 'console.log("hello from the model");');
    const r = lpc(['mem', file, '--json']);
    expect(r.code).toBe(0);
    expect(() => JSON.parse(r.out)).not.toThrow();
    expect(r.err).toContain('hello from the model');
  });

  test('the sandboxed trace is the in-process trace, and PEPPP counts agree', () => {
    for (const f of ['models/lenet5.ts', 'models/resnet20.ts', 'models/peppp-lenet5.ts'])
      expect(printModule(frontEndSandboxed(f, 3))).toBe(printModule(frontEnd(f, 3)));
    const { counts } = traceSandboxed('models/peppp-lenet5.ts', 8, { classes: 5 }, { counts: true });
    expect(counts).toEqual(pepppCounts(loadModel('models/peppp-lenet5.ts'), 8, { classes: 5 }));
  });

  test('the limits are read from the environment and checked', () => {
    expect(sandboxLimits({})).toEqual({ seconds: 60, memoryMiB: 2048 });
    expect(sandboxLimits({ LPC_MODEL_TIMEOUT: '5', LPC_MODEL_MEMORY: '512' })).toEqual({ seconds: 5, memoryMiB: 512 });
    expect(() => sandboxLimits({ LPC_MODEL_TIMEOUT: 'soon' })).toThrow("LPC_MODEL_TIMEOUT must be a number ≥ 0.1, got 'soon'");
  });
});
