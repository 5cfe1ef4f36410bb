/**
 * WebGPU: a run killed with SIGKILL after a mid-epoch checkpoint resumes bit-identically (final safetensors bytes
 * equal to an uninterrupted run's), with SWA averaging and BN re-estimation on the device. Runs the built bin/lpc.js.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-wgpu-ckpt-'));
const BFP8 = 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic';
const sidecar = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
const tensorFile = (dir: string) => fs.readFileSync(path.join(dir, sidecar(dir).tensors));

test('webgpu: SIGKILL mid-epoch, --resume, final state byte-identical to the straight run', async () => {
  const art = path.join(tmp, 'res.lpc');
  expect(spawnSync(process.execPath, ['bin/lpc.js', 'compile', 'test/fixtures/helpers_loop.ts', '-o', art, '--batch', '8', '--precision', BFP8]).status).toBe(0);
  const run = ['run', art, '--backend', 'webgpu', '--data', 'synthetic', '--epochs', '3', '--max-steps', '6', '--seed', '3', '--swa', 'start=2,lr=0.02'];
  const straight = path.join(tmp, 'straight'), killed = path.join(tmp, 'killed');
  expect(spawnSync(process.execPath, ['bin/lpc.js', ...run, '--checkpoint', straight]).status).toBe(0);

  const child = spawn(process.execPath, ['bin/lpc.js', ...run, '--checkpoint', killed, '--checkpoint-every', '4'], { stdio: 'ignore' });
  let exited = false;
  child.on('exit', () => { exited = true; });
  // Stop the child at a mid-epoch checkpoint (SIGSTOP, then look again: on a loaded machine it may have run on to
  // an epoch-end checkpoint between our read and the signal; then let it go on to the next mid-epoch one).
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    let pos;
    try { pos = sidecar(killed).position; } catch { continue; }
    if (exited) throw new Error('the child finished before it could be killed');
    if (pos.globalStep < 8 || pos.epochDone) continue;
    child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 50));
    try { pos = sidecar(killed).position; } catch { pos = { epochDone: true }; }
    if (!pos.epochDone) break;
    child.kill('SIGCONT');
  }
  child.kill('SIGKILL');
  await new Promise((r) => (exited ? r(null) : child.on('exit', r)));
  expect(sidecar(killed).position.epochDone).toBe(false);
  expect(sidecar(killed).position.globalStep).toBeLessThan(18);

  const r = spawnSync(process.execPath, ['bin/lpc.js', 'run', art, '--backend', 'webgpu', '--resume', killed], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(sidecar(killed).position).toEqual(sidecar(straight).position);
  expect(tensorFile(killed).equals(tensorFile(straight))).toBe(true);
});
