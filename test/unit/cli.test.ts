/** The CLI's error paths: one clear message, a non-zero exit, nothing half-written. Runs the built bin/lpc.js. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-cli-'));
function lpc(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('lpc CLI', () => {
  const art = path.join(tmp, 'lenet5.lpc');
  beforeAll(() => {
    const r = lpc(['compile', 'models/lenet5.ts', '-o', art, '--batch', '8']);
    expect(r.err).toContain('compiled models/lenet5.ts');
    expect(r.code).toBe(0);
  });

  test('the artifact holds manifest, IR, kernels and plan', () => {
    for (const f of ['manifest.json', 'graph.lpir', 'plan.json']) expect(fs.existsSync(path.join(art, f))).toBe(true);
    expect(fs.readdirSync(path.join(art, 'kernels')).some((f) => f.endsWith('.wgsl'))).toBe(true);
    expect(fs.readFileSync(path.join(art, 'graph.lpir'), 'utf8').startsWith('lpc.ir 1\n')).toBe(true);
  });

  test('--help tells the truth about every command', () => {
    const top = lpc(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['compile', 'run', 'inspect', 'quant']) expect(top.out).toContain(c);
    expect(lpc(['run', '--help']).out).toContain('--backend B');
  });

  test('an unknown flag', () => {
    const r = lpc(['run', art, '--epoch', '3']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe("lpc: unknown option '--epoch' for 'lpc run'; see 'lpc run --help'");
  });

  test('--precision: placed roles are in the IR, the manifest keeps the canonical spec, errors name line:col', () => {
    const out = path.join(tmp, 'q.lpc');
    const ok = lpc(['compile', 'models/lenet5.ts', '-o', out, '--batch', '4', '--precision', 'A=e5m2  G=bfp<8>:stochastic']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).options.precision).toBe('A=float<5,2> G=bfp<8,tensor>:stochastic');
    expect(fs.readFileSync(path.join(out, 'graph.lpir'), 'utf8')).toMatch(/float<5,2>/);
    const bad = path.join(tmp, 'badq.lpc');
    const r = lpc(['compile', 'models/lenet5.ts', '-o', bad, '--precision', 'W=bpf<8>']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe("lpc: --precision:1:3: unknown format 'bpf'; expected fixed, bfp, float, minmax or an alias (bf16, fp16, e4m3, e5m2)");
    expect(fs.existsSync(bad)).toBe(false);
    const file = path.join(tmp, 'spec.txt');
    fs.writeFileSync(file, '# SWALP-ish\nW=bfp<8,axis=0>\nA=float<9,2>\n');
    const f = lpc(['compile', 'models/lenet5.ts', '-o', bad, '--precision-file', file]);
    expect(f.code).toBe(2);
    expect(f.err.trim()).toBe(`lpc: ${file}:3:9: float: exp must satisfy 1 <= exp <= 8 (got 9)`);
  });

  test('a type error stops compilation and leaves no artifact', () => {
    const out = path.join(tmp, 'bad.lpc');
    const r = lpc(['compile', 'test/fixtures/type_error.ts', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('test/fixtures/type_error.ts:5:25: error TS2322');
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('a shape error names the line', () => {
    const r = lpc(['compile', 'test/fixtures/shape_error.ts', '-o', path.join(tmp, 'bad2.lpc')]);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe('lpc: test/fixtures/shape_error.ts:6:10: conv2d expects 4-D input [N, C, H, W], got [64, 3456]');
  });

  test('a missing artifact', () => {
    const r = lpc(['run', path.join(tmp, 'nope.lpc')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('nope.lpc: no such artifact');
  });

  test('an edited or truncated artifact is refused', () => {
    const copy = path.join(tmp, 'edited.lpc');
    fs.cpSync(art, copy, { recursive: true });
    const g = path.join(copy, 'graph.lpir');
    fs.writeFileSync(g, fs.readFileSync(g, 'utf8').slice(0, 500));
    const r = lpc(['run', copy, '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`lpc: ${copy}: graph.lpir was modified or truncated (content hash mismatch); recompile the model`);
    fs.writeFileSync(path.join(copy, 'manifest.json'), '{"format": "lpc-art');
    expect(lpc(['run', copy]).err).toContain('manifest.json is corrupt');
  });

  test('an unknown dataset', () => {
    const r = lpc(['run', art, '--data', 'imagenet', '--backend', 'cpu']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/imagenet/);
    expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
  });

  test('lpc quant (cpu) on a few values, numbers and hex', () => {
    const r = lpc(['quant', '--format', 'fixed<4,2>'], '[0.3, 0.375, -5, 1.1]');
    expect(r.code).toBe(0);
    // step 0.25, range [−2, 1.75]; 0.375 is a tie → even (0.5)
    expect(JSON.parse(r.out)).toEqual([0.25, 0.5, -2, 1]);
    const h = lpc(['quant', '--format', 'e5m2', '--hex'], '["3f800001"]');
    expect(JSON.parse(h.out)).toEqual(['3f800000']);
    const bad = lpc(['quant', '--format', 'bpf<8>'], '[1]');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown format');
  });

  test('inspect summarises dispatches', () => {
    const r = lpc(['inspect', art]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/graph train: \d+ dispatches per step/);
  });
});
