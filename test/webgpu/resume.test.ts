/**
 * WebGPU: a run killed with SIGKILL after a mid-epoch checkpoint resumes bit-identically (final safetensors bytes
 * equal to an uninterrupted run's), with SWA averaging and BN re-estimation on the device. Runs the built bin/lpc.js.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killAfterCheckpoint } from '../unit/helpers.js';

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

  // killed right after its mid-epoch checkpoint at global step 8 (epoch 2, step 2)
  await killAfterCheckpoint([...run, '--checkpoint', killed, '--checkpoint-every', '4'], killed, 8);
  expect(sidecar(killed).position.epochDone).toBe(false);
  expect(sidecar(killed).position.globalStep).toBe(8);

  const r = spawnSync(process.execPath, ['bin/lpc.js', 'run', art, '--backend', 'webgpu', '--resume', killed], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(sidecar(killed).position).toEqual(sidecar(straight).position);
  expect(tensorFile(killed).equals(tensorFile(straight))).toBe(true);
});
