/** `lpc mem` and the memory plan in `lpc inspect`, through the built bin/lpc.js. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-mem-'));
function lpc(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// LeNet-5 as models/lenet5.ts writes it: conv(1→6,5×5), conv(6→16,5×5), linear 400→120→84→10, all with biases.
const LENET_PARAMS = (6 * 1 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10);
const KEYS = ['weights_bytes', 'gradients_bytes', 'optimizer_bytes', 'saved_activations_bytes', 'workspace_bytes', 'peak_bytes'];

describe('lpc mem', () => {
  test('--json: the keys, weights = 4 × the parameter count, momentum as large, eval has no gradients', () => {
    const r = lpc(['mem', 'models/lenet5.ts', '--batch', '8', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    for (const k of KEYS) expect(Number.isInteger(j[k])).toBe(true);
    expect(j.weights_bytes).toBe(4 * LENET_PARAMS);
    expect(j.optimizer_bytes).toBe(4 * LENET_PARAMS);
    expect(j.gradients_bytes).toBe(4 * LENET_PARAMS);
    expect(j.saved_activations_bytes).toBeGreaterThan(0);
    expect(j.peak_bytes).toBeGreaterThanOrEqual(j.live_peak_bytes);
    expect(j.unshared_bytes).toBeGreaterThan(j.allocated_bytes);
    const ev = j.graphs.find((g: { name: string }) => g.name === 'eval');
    expect([ev.gradients_bytes, ev.optimizer_bytes, ev.saved_activations_bytes]).toEqual([0, 0, 0]);
    // No momentum, no optimizer state; activations scale with the batch.
    const plain = JSON.parse(lpc(['mem', 'models/lenet5.ts', '--batch', '16', '--json', '--optimizer', 'sgd(momentum=0)']).out);
    expect(plain.optimizer_bytes).toBe(0);
    expect(plain.saved_activations_bytes).toBe(2 * j.saved_activations_bytes);
  });

  test('a table without --json, and --help', () => {
    const r = lpc(['mem', 'models/lenet5.ts', '--batch', '8']);
    expect(r.code).toBe(0);
    for (const s of ['weights', 'gradients', 'optimizer state', 'saved activations', 'workspace', 'peak (allocated)', 'train', 'eval'])
      expect(r.out).toContain(s);
    const h = lpc(['mem', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('--batch N');
    expect(h.out).toContain('--json');
    expect(lpc(['--help']).out).toContain('mem ');
  });

  test('bad input: one line, non-zero exit', () => {
    const cases: [string[], number, string][] = [
      [['mem'], 2, 'lpc: lpc mem needs exactly one model file'],
      [['mem', 'models/nope.ts'], 1, 'lpc: models/nope.ts: no such model file'],
      [['mem', 'models/lenet5.ts', '--batch', 'x'], 2, "lpc: --batch must be an integer ≥ 1, got 'x'"],
      [['mem', 'models/lenet5.ts', '--variant', 'tpu'], 2, "lpc: --variant must be cpu-driver or gpu, got 'tpu'"],
      [['mem', 'models/lenet5.ts', '--precision', 'W=bpf<8>'], 2, "lpc: --precision:1:3: unknown format 'bpf'; expected fixed, bfp, float, minmax, mx or an alias (bf16, fp16, e4m3, e5m2)"],
    ];
    for (const [args, code, err] of cases) {
      const r = lpc(args);
      expect([r.code, r.err.trim()]).toEqual([code, err]);
      expect(r.out).toBe('');
    }
    const shape = lpc(['mem', 'test/fixtures/shape_error.ts']);
    expect(shape.code).toBe(1);
    expect(shape.err).toMatch(/^lpc: test\/fixtures\/shape_error\.ts:\d+:\d+: conv2d expects 4-D input/);
  });
});

test('plan.json carries the memory plan; lpc inspect prints it with bytes moved per step', () => {
  const art = path.join(tmp, 'l.lpc');
  expect(lpc(['compile', 'models/lenet5.ts', '-o', art, '--batch', '8']).code).toBe(0);
  const plan = JSON.parse(fs.readFileSync(path.join(art, 'plan.json'), 'utf8'));
  const mem = JSON.parse(lpc(['mem', 'models/lenet5.ts', '--batch', '8', '--json']).out);
  expect(plan.memory.allocated_bytes).toBe(mem.allocated_bytes);
  expect(plan.memory.weights_bytes).toBe(4 * LENET_PARAMS);
  const train = plan.memory.graphs.find((g: { name: string }) => g.name === 'train');
  expect(train.peak_bytes).toBe(mem.peak_bytes);
  expect(train.buffers.length).toBeGreaterThan(0);
  expect(plan.graphs[0].dispatches.every((d: { read_bytes: number; write_bytes: number }) => d.read_bytes > 0 && d.write_bytes > 0)).toBe(true);
  const r = lpc(['inspect', art]);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/graph train: \d+ dispatches per step, \d+ distinct kernels, [\d.]+ GFLOP, [\d.]+ MiB read \+ [\d.]+ MiB written/);
  expect(r.out).toContain('saved activations');
  expect(r.out).toContain('peak (allocated)');
});
