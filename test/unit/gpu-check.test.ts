/**
 * scripts/gpu-check.sh (run on an NVIDIA machine): its syntax, shellcheck where installed, and the path this machine
 * can take — without an NVIDIA GPU it stops at once with one line and exit status 2, writing nothing. The carried
 * libvulkan1 .deb is the one its README names (SHA-256).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = 'scripts/gpu-check.sh';
const nvidia = fs.existsSync('/dev/nvidiactl') || fs.existsSync('/proc/driver/nvidia/gpus');

test('bash -n, and shellcheck when it is installed', () => {
  expect(spawnSync('bash', ['-n', SCRIPT]).status).toBe(0);
  const sc = spawnSync('shellcheck', [SCRIPT], { encoding: 'utf8' });
  if (sc.error) console.warn('shellcheck is not installed: skipped');
  else expect(sc.stdout + sc.stderr).toBe('');
});

(nvidia ? test.skip : test)('without an NVIDIA GPU: one line, exit 2, nothing written', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-gpucheck-'));
  try {
    const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8', env: { ...process.env, OUT: out, PATH: `/nonexistent:${process.env.PATH}` }, timeout: 30000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^gpu-check: no NVIDIA GPU here .*\n$/);
    expect(fs.readdirSync(out)).toEqual([]);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('the carried libvulkan1 .deb matches its README', () => {
  const dir = 'scripts/gpu-debs';
  const debs = fs.readdirSync(dir).filter((f) => f.endsWith('.deb'));
  expect(debs).toEqual(['libvulkan1_1.3.239.0-1_amd64.deb']);
  const readme = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
  const sha = createHash('sha256').update(fs.readFileSync(path.join(dir, debs[0]))).digest('hex');
  expect(readme).toContain(`${sha}  ${debs[0]}`);
  expect(fs.statSync(path.join(dir, debs[0])).size).toBeLessThan(1 << 20);
});
