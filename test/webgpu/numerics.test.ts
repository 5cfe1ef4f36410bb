/**
 * Numerics diagnostics on WebGPU: --check-numerics reruns the diverged step on the CPU interpreter from the state
 * the GPU held (same inputs and random key), so its report equals the CPU backend's; --quant-stats of the first step
 * (the same initial state on both backends) equal the CPU backend's, stochastic rounding included.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-numerics-gpu-'));
function lpc(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8', env: { ...process.env, LPC_TUNE: 'off' } });
  return { code: r.status, err: r.stderr };
}
const RUN = ['--data', 'synthetic', '--epochs', '1', '--seed', '2'];
const last = (s: string) => s.trim().split('\n').pop()!;

test('--check-numerics on webgpu reports what the cpu backend reports (stochastic activations)', () => {
  const art = path.join(tmp, 'overflow.lpc');
  expect(lpc(['compile', 'test/models/overflow.ts', '-o', art, '--batch', '8', '--precision', 'A=bf16:stochastic']).code).toBe(0);
  const gpu = lpc(['run', art, ...RUN, '--max-steps', '2', '--backend', 'webgpu', '--check-numerics']);
  const cpu = lpc(['run', art, ...RUN, '--max-steps', '2', '--backend', 'cpu', '--check-numerics']);
  expect(gpu.code).toBe(1);
  expect(last(gpu.err)).toMatch(/first non-finite value: .* = linear .*overflow\.ts:8:10$/);
  expect(last(gpu.err)).toBe(last(cpu.err));
});

test('--quant-stats of the first step are the same on webgpu and cpu', () => {
  const art = path.join(tmp, 'q.lpc');
  expect(lpc(['compile', 'test/fixtures/sweep_tiny.ts', '-o', art, '--batch', '4', '--precision', 'W=fixed<8,6> A=e4m3:stochastic E=bfp<8>:stochastic G=fixed<6,5>']).code).toBe(0);
  const sites = (backend: string) => {
    const m = path.join(tmp, `${backend}.jsonl`);
    expect(lpc(['run', art, ...RUN, '--max-steps', '2', '--backend', backend, '--quant-stats', '2', '--metrics', m]).code).toBe(0);
    return fs.readFileSync(m, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.quant_step === 1)[0].sites;
  };
  expect(sites('webgpu')).toEqual(sites('cpu'));
});
