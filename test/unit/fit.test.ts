/**
 * Sizes are refused before any work, in the user's terms: the step's figure, the largest buffer and its model line,
 * the limit, and the flag to change — from compile, `lpc mem` and `lpc run` (a lowered limit through LPC_LIMITS), and
 * never as a raw internal message (u32 parameters, 65535² workgroups). Expected figures are computed from the
 * model's shapes by hand (LeNet-5's first convolution: N × 6 × 28 × 28 floats).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { Capacity, SizeError, checkFits, lpcCapacity } from '../../runtime/fit.js';
import { defaultTile, gemmDims, tileFits } from '../../codegen/kernels/tiles.js';

const SGD = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const lenet = (batch: number) => runPasses(frontEnd('models/lenet5.ts', batch), { batch, optimizer: SGD });
const cap = (o: Partial<Capacity>): Capacity => ({ who: 'a test device', bufferBytes: 2 ** 32, bufferLimit: 'maxStorageBufferBindingSize', workgroupsPerDimension: 65535, allocates: 'plan', ...o });
const refusal = (f: () => unknown): string => {
  try { f(); } catch (e) { expect(e).toBeInstanceOf(SizeError); return (e as Error).message; }
  throw new Error('not refused');
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-fit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
function lpc(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('a buffer over the limit: the figure, the layer and its line, the limit and the flag', () => {
  const m = lenet(16);
  // conv0's output: 16 × 6 × 28 × 28 × 4 bytes = 301,056 = 294.0 KiB, the largest value at batch 16
  const msg = refusal(() => checkFits(m, cap({ bufferBytes: 250000 }), 'cpu-driver', 'lower --batch (now 16)'));
  expect(msg).toMatch(/^the training step needs [\d.]+ MiB \(largest buffer 294\.0 KiB: conv0 conv2d output at models\/lenet5\.ts:7:24\) but a test device allows 244\.1 KiB per buffer \(maxStorageBufferBindingSize\); lower --batch \(now 16\)$/);
  expect(checkFits(m, cap({ bufferBytes: 301056 }), 'cpu-driver', 'x').get('train')!.length).toBe(m.graphs[0].nodes.length);
  // a parameter over the limit (linear0.weight: 120 × 400 × 4 = 187.5 KiB at any batch): the batch would not help
  expect(refusal(() => checkFits(lenet(2), cap({ bufferBytes: 150000 }), 'cpu-driver', 'lower --batch')))
    .toMatch(/largest buffer 187\.5 KiB: linear0\.weight at models\/lenet5\.ts:9:12\) but .*; that parameter does not depend on the batch: make the layer smaller$/);
});

test('memory: the whole plan against the memory, and the interpreter counts every value', () => {
  const m = lenet(4);
  const msg = refusal(() => checkFits(m, cap({ memoryBytes: 100000, memoryWhat: 'the test memory' }), 'cpu-driver', 'lower --batch'));
  expect(msg).toMatch(/^the training step needs [\d.]+ MiB .* but the test memory is 97\.7 KiB; lower --batch$/);
  // the interpreter keeps every value of a step: more than the plan's shared slots
  const plan = Number(/needs ([\d.]+) MiB/.exec(msg)![1]);
  const perValue = Number(/needs ([\d.]+) MiB/.exec(refusal(() => checkFits(m, cap({ memoryBytes: 100000, allocates: 'per-value' }), 'cpu-driver', 'x')))![1]);
  expect(perValue).toBeGreaterThan(plan);
});

test('workgroups per dimension: the kernel, the limit and the flag', () => {
  const msg = refusal(() => checkFits(lenet(4), cap({ workgroupsPerDimension: 3 }), 'cpu-driver', 'lower --batch'));
  expect(msg).toMatch(/: kernel \w+ needs \d+ workgroups along one dimension but a test device allows 3 \(maxComputeWorkgroupsPerDimension\); lower --batch$/);
});

test('shared-memory tiles that would pass 65535 workgroups give way to register tiles, which spill', () => {
  const m = lenet(200000); // conv0: 200000 × 28 × 28 pixels = 2,450,000 blocks of 64
  const g = m.graphs[0], conv = g.nodes.find((n) => n.op === 'conv2d')!;
  expect(Math.ceil(gemmDims(g, conv).n / 64)).toBeGreaterThan(65535);
  expect(tileFits(g, conv, { kind: 'smem', b: 64 })).toBe(false);
  expect(defaultTile(g, conv, 'gpu').kind).toBe('reg');
  expect(defaultTile(lenet(4).graphs[0], lenet(4).graphs[0].nodes.find((n) => n.op === 'conv2d')!, 'gpu').kind).toBe('smem');
});

test('LPC_LIMITS lowers a limit, never raises one, and a bad value is one line', () => {
  const old = process.env.LPC_LIMITS;
  try {
    process.env.LPC_LIMITS = 'maxStorageBufferBindingSize=1MiB, memory=2GiB';
    expect(lpcCapacity()).toMatchObject({ bufferBytes: 2 ** 20, memoryBytes: 2 * 2 ** 30, bufferLimit: 'maxStorageBufferBindingSize (LPC_LIMITS)' });
    process.env.LPC_LIMITS = 'maxBufferSize=64GiB';
    expect(lpcCapacity().bufferBytes).toBe(4 * 2 ** 30 - 16);
    process.env.LPC_LIMITS = 'memroy=1G';
    expect(() => lpcCapacity()).toThrow(/^LPC_LIMITS: 'memroy=1G' is not NAME=VALUE/);
  } finally {
    if (old === undefined) delete process.env.LPC_LIMITS; else process.env.LPC_LIMITS = old;
  }
});

describe('the CLI refuses at once, one line, nothing written', () => {
  test.each([['1000000'], ['100000000'], ['9007199254740991']])('lpc compile --batch %s', (batch) => {
    const out = path.join(tmp, `b${batch}.lpc`);
    const r = lpc(['compile', 'models/lenet5.ts', '--batch', batch, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(new RegExp(`^lpc: the training step needs .* \\(largest buffer .*: conv0 conv2d output at models/lenet5\\.ts:7:24\\) but lpc allows 4\\.0 GiB per buffer \\(its kernels use 32-bit sizes\\); lower --batch \\(now ${batch}\\)\\n$`));
    expect(fs.existsSync(out)).toBe(false);
  });

  test('lpc mem --batch 100000000', () => {
    const r = lpc(['mem', 'models/lenet5.ts', '--batch', '100000000']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^lpc: the training step needs [\d.]+ GiB \(largest buffer 1752\.4 GiB: conv0 conv2d output at models\/lenet5\.ts:7:24\).*; lower --batch \(now 100000000\)\n$/);
  });

  test('lpc run --backend cpu against a lowered limit: refused before any step, naming the flag', () => {
    const art = path.join(tmp, 'l8.lpc');
    expect(lpc(['compile', 'models/lenet5.ts', '--batch', '8', '-o', art]).code).toBe(0);
    const ckpt = path.join(tmp, 'ck');
    const r = lpc(['run', art, '--data', 'synthetic', '--backend', 'cpu', '--epochs', '1', '--max-steps', '1', '--checkpoint', ckpt], { LPC_LIMITS: 'memory=200KiB' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^lpc: the training step needs [\d.]+ MiB \(largest buffer 187\.5 KiB: linear0.weight at models\/lenet5\.ts:9:12\) but the memory LPC_LIMITS allows is 200\.0 KiB; recompile with a lower --batch \(the artifact's is 8\)\n$/);
    expect(fs.existsSync(ckpt)).toBe(false);
  });

  test('a batch larger than the data set is refused before a backend starts', () => {
    const art = path.join(tmp, 'l2k.lpc');
    expect(lpc(['compile', 'models/lenet5.ts', '--batch', '2000', '-o', art]).code).toBe(0);
    const r = lpc(['run', art, '--data', 'synthetic', '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.err).toBe("lpc: the artifact's batch 2000 is larger than synthetic's 1024 training images; recompile with a lower --batch\n");
  });
});
