/**
 * PEPPP's memory accounting vs the authors' released memory matrix (test/fixtures/peppp/memory_mb_matrix.csv, a copy
 * of the PEPPP reference pack's): models/peppp-resnet18.ts at batch 32 reproduces row 0 (CIFAR-10: 3×32×32, 10 classes) and
 * a 64×64 row (ImageNet 64×64 task 0: 5 classes) in all 99 configurations — to 0.01 MB as the issue asks, and in
 * fact bit for bit with the authors' float32 summation.
 */
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../../dsl/frontend.js';
import { pepppCounts, pepppMemoryMB, lowHigh } from '../../runtime/peppp/memory.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { formatBits } from '../../ir/format.js';

const configs: { name: string; precision: string }[] = JSON.parse(fs.readFileSync('test/fixtures/peppp/configs.json', 'utf8'));
const rows = fs.readFileSync('test/fixtures/peppp/memory_mb_matrix.csv', 'utf8').trim().split('\n').map((l) => l.split(','));
const row = (name: string) => rows.find((r) => r[0] === name)!.slice(1).map(Number);

describe("PEPPP's memory formula on models/peppp-resnet18.ts", () => {
  const def = loadModel('models/peppp-resnet18.ts');
  test.each([
    ['cifar10_K10', [3, 32, 32], 10, 114_410_112, 11_173_962],
    ['imagenet64_task00_K5', [3, 64, 64], 5, 457_589_056, 11_171_397],
  ] as const)('%s: counts as the README derives them, all 99 columns as released', (name, input, classes, A, P) => {
    const c = pepppCounts(def, 32, { input: [...input], classes });
    // A/B = 3491·H² + 512 + 2K (README §3.1), P = 11 168 832 + 513·K
    expect(c).toEqual({ batch: 32, params: P, activations: A, output: 32 * classes, input: 32 * 3 * input[1] * input[2] });
    expect(A).toBe(32 * (3491 * input[1] ** 2 + 512 + 2 * classes));
    const want = row(name);
    expect(rows[0].slice(1)).toEqual(configs.map((x) => x.name));
    configs.forEach((cfg, j) => {
      const { low, high } = lowHigh(parsePolicy(cfg.precision));
      const got = pepppMemoryMB(c, formatBits(low), formatBits(high));
      expect(Math.abs(got - want[j])).toBeLessThan(0.01);
      expect([cfg.name, got]).toEqual([cfg.name, want[j]]);
    });
  });
  test('worked value: CIFAR-10 column 0 in float64 is 180.50993466…, float32 summation gives the released 180.50993347167969', () => {
    const c = pepppCounts(def, 32, { input: [3, 32, 32], classes: 10 });
    expect((5 * (c.params + 2 * c.activations) + 14 * (c.input + 2 * c.output + 2 * c.params)) / (8 * 2 ** 20)).toBeCloseTo(180.50993466377, 9);
    expect(pepppMemoryMB(c, 5, 14)).toBe(180.50993347167969);
  });
});

describe('lpc peppp memory', () => {
  const lpc = (args: string[]) => spawnSync(process.execPath, ['bin/lpc.js', 'peppp', 'memory', ...args], { encoding: 'utf8' });
  test.each([
    ['cifar10_K10', []],
    ['imagenet64_task00_K5', ['--input', '3x64x64', '--classes', '5']],
  ])('models/peppp-resnet18.ts at batch 32 reproduces the released row %s (±0.01 MB, all 99 columns)', (name, extra) => {
    const r = lpc(['models/peppp-resnet18.ts', '--batch', '32', '--no-planned', '--json', ...extra]);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { configs: { column: number; name: string; low: string; high: string; memory_mb: number }[] };
    expect(out.configs.map((c) => c.column)).toEqual([...Array(99).keys()]);
    expect(out.configs[0]).toMatchObject({ column: 0, name: 'l_5_1_h_14_7', low: 'float<3,1>', high: 'float<6,7>' });
    const want = row(name);
    for (const c of out.configs) expect([c.name, Math.abs(c.memory_mb - want[c.column]) < 0.01]).toEqual([c.name, true]);
  }, 60000);
  test("lpc's own plan: packed below f32, growing with the widths; a configuration without low/high counts as 32 bits", () => {
    const r = lpc(['models/peppp-lenet5.ts', '--configs', 'grid:low=float<3|5,1>,high=float<6,7>', '--json']);
    expect(r.status).toBe(0);
    const [a, b] = (JSON.parse(r.stdout) as { configs: { planned_mb: number; planned_f32_mb: number }[] }).configs;
    expect(a.planned_mb).toBeLessThan(b.planned_mb);
    expect(b.planned_mb).toBeLessThan(b.planned_f32_mb);
    expect(a.planned_f32_mb).toBe(b.planned_f32_mb);
    const f = path.join(os.tmpdir(), `lpc-peppp-mem-configs-${process.pid}.json`);
    fs.writeFileSync(f, JSON.stringify([{ name: 'a', precision: 'A=fp16' }]));
    const fp = lpc(['models/peppp-lenet5.ts', '--configs', f, '--batch', '32', '--no-planned', '--json']);
    fs.rmSync(f);
    const c = pepppCounts(loadModel('models/peppp-lenet5.ts'), 32);
    expect(JSON.parse(fp.stdout).configs[0]).toMatchObject({ low: 'f32', high: 'f32', memory_mb: pepppMemoryMB(c, 32, 32) });
    expect(pepppMemoryMB(c, 32, 32)).toBeCloseTo((32 * (c.params + 2 * c.activations) + 32 * (c.input + 2 * c.output + 2 * c.params)) / (8 * 2 ** 20), 4);
  }, 60000);
});
