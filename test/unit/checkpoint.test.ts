/**
 * Checkpoints: the safetensors encoding read back by an independent parser of the format; resume after a real
 * SIGKILL continues bit-identically (final state files byte for byte equal to an uninterrupted run's, metrics equal);
 * corrupt or mismatched checkpoints are refused with one line naming the file. Runs the built bin/lpc.js.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeSafetensors, encodeSafetensors, tensorNames } from '../../runtime/checkpoint.js';
import { killAfterCheckpoint } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-ckpt-'));
const lpc = (args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const BFP8 = 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic';
const sidecar = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
const tensorFile = (dir: string) => fs.readFileSync(path.join(dir, sidecar(dir).tensors));
/** Metrics without the wall-clock fields. */
const metrics = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => {
  const o = JSON.parse(l);
  delete o.seconds; delete o.images_per_sec;
  return o;
});

describe('safetensors', () => {
  test('encoding matches the format (8-byte LE header length, JSON header, F32 LE data) and round-trips', () => {
    const a = Float32Array.of(1.5, -2, 3.25), b = Float32Array.of(0.1);
    const buf = encodeSafetensors([{ name: 'z.w', shape: [3], data: a }, { name: 'a.b', shape: [1, 1], data: b }], { format: 'pt' });
    const n = Number(buf.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const h = JSON.parse(buf.subarray(8, 8 + n).toString());
    expect(h.__metadata__).toEqual({ format: 'pt' });
    expect(h['a.b']).toEqual({ dtype: 'F32', shape: [1, 1], data_offsets: [0, 4] });
    expect(h['z.w']).toEqual({ dtype: 'F32', shape: [3], data_offsets: [4, 16] });
    expect(buf.readFloatLE(8 + n + 4 + 8)).toBe(3.25);
    const d = decodeSafetensors(buf, 'x');
    expect(Array.from(d.tensors.get('z.w')!.data)).toEqual([1.5, -2, 3.25]);
    expect(() => decodeSafetensors(buf.subarray(0, buf.length - 1), 'f.safetensors')).toThrow(/^checkpoint f.safetensors: not a valid safetensors file/);
  });

  test('state_dict names: BN running statistics split into running_mean / running_var', () => {
    const t = tensorNames([
      { name: 'bn0.running', kind: 'buffer', shape: [2, 3], init: 'bn_running' },
      { name: 'swa.bn0.running', kind: 'swa', shape: [2, 3], init: 'bn_running' },
      { name: 'conv0.weight.momentum', kind: 'optim', shape: [4, 1], init: 'zeros' },
    ]).map((x) => `${x.name}@${x.offset}+${x.count}`);
    expect(t).toEqual(['bn0.running_mean@0+3', 'bn0.running_var@3+3', 'swa.bn0.running_mean@0+3', 'swa.bn0.running_var@3+3', 'conv0.weight.momentum@0+4']);
  });
});

describe('lpc run --checkpoint / --resume', () => {
  const art = path.join(tmp, 'res.lpc');
  // tiny_res: BN buffers, momentum, SWA with BN re-estimation, stochastic rounding everywhere
  const run = ['--backend', 'cpu', '--data', 'synthetic', '--epochs', '3', '--max-steps', '6', '--seed', '3', '--swa', 'start=2,lr=0.02', '--metrics-steps', '1'];
  beforeAll(() => {
    const r = spawnSync(process.execPath, ['bin/lpc.js', 'compile', 'test/fixtures/helpers_loop.ts', '-o', art, '--batch', '8', '--precision', BFP8], { encoding: 'utf8' });
    expect(r.status).toBe(0);
  });

  test('a run killed with SIGKILL mid-epoch resumes bit-identically', async () => {
    const straight = path.join(tmp, 'straight'), killed = path.join(tmp, 'killed');
    const s = lpc(['run', art, ...run, '--checkpoint', straight, '--metrics', path.join(tmp, 'straight.jsonl')]);
    expect(s.code).toBe(0);
    expect(sidecar(straight).position).toMatchObject({ epoch: 3, epochDone: true, globalStep: 18, swaCount: 2 });

    // The same run checkpointing every 4 steps, killed right after its mid-epoch checkpoint at global step 8 (epoch 2, step 2).
    await killAfterCheckpoint(['run', art, ...run, '--checkpoint', killed, '--checkpoint-every', '4', '--metrics', path.join(tmp, 'killed.jsonl')], killed, 8);
    const at = sidecar(killed).position;
    expect(at.globalStep).toBe(8);
    expect(at.epochDone).toBe(false);

    const r = lpc(['run', art, '--backend', 'cpu', '--resume', killed, '--metrics', path.join(tmp, 'killed.jsonl'), '--metrics-steps', '1']);
    expect(r.err).toContain(`resuming at epoch ${at.epoch}, step ${at.stepsDone}`);
    expect(r.code).toBe(0);
    expect(sidecar(killed).position).toEqual(sidecar(straight).position);
    expect(tensorFile(killed).equals(tensorFile(straight))).toBe(true);
    expect(metrics(path.join(tmp, 'killed.jsonl'))).toEqual(metrics(path.join(tmp, 'straight.jsonl')));
  });

  test('refusals: a finished run, a conflicting flag, a corrupt tensor file, another artifact', () => {
    const dir = path.join(tmp, 'straight');
    const fin = lpc(['run', art, '--backend', 'cpu', '--resume', dir]);
    expect(fin.code).toBe(2);
    expect(fin.err.trim()).toBe(`lpc: checkpoint ${dir} is at the end of the run (epoch 3 of 3); nothing to resume`);

    const bad = path.join(tmp, 'bad');
    fs.cpSync(dir, bad, { recursive: true });
    const side = sidecar(bad);
    side.position.epochDone = false;
    fs.writeFileSync(path.join(bad, 'checkpoint.json'), JSON.stringify(side));
    const conflict = lpc(['run', art, '--backend', 'cpu', '--resume', bad, '--seed', '4']);
    expect(conflict.code).toBe(2);
    expect(conflict.err.trim()).toBe("lpc: --seed 4 differs from the checkpoint's (3); a resumed run keeps its configuration");

    const tfile = path.join(bad, side.tensors);
    const bytes = fs.readFileSync(tfile);
    bytes[bytes.length - 3] ^= 0x40;
    fs.writeFileSync(tfile, bytes);
    const corrupt = lpc(['run', art, '--backend', 'cpu', '--resume', bad]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.err.trim()).toBe(`lpc: checkpoint ${tfile}: SHA-256 does not match checkpoint.json (corrupt or replaced)`);
    expect(corrupt.err.trim().split('\n')).toHaveLength(1);

    fs.writeFileSync(path.join(bad, 'checkpoint.json'), '{"format": "lpc-checkp');
    const trunc = lpc(['run', art, '--backend', 'cpu', '--resume', bad]);
    expect(trunc.err.trim()).toBe(`lpc: checkpoint ${path.join(bad, 'checkpoint.json')}: is not valid JSON (corrupt?)`);

    const other = path.join(tmp, 'other.lpc');
    expect(lpc(['compile', 'test/fixtures/helpers_loop.ts', '-o', other, '--batch', '8']).code).toBe(0);
    const mism = lpc(['run', other, '--backend', 'cpu', '--resume', path.join(tmp, 'killed'), '--epochs', '3']);
    expect(mism.code).toBe(1);
    expect(mism.err.trim()).toMatch(new RegExp(`^lpc: checkpoint ${path.join(tmp, 'killed', 'checkpoint.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: was written for a different artifact`));
  });

  test('outputs never destroy what lpc did not write: the artifact, a checkpoint name, another metrics file, a second run, a failed run', () => {
    const ck = path.join(tmp, 'guard');
    const base = ['run', art, '--backend', 'cpu', '--data', 'synthetic', '--epochs', '1', '--max-steps', '2', '--seed', '3'];
    const one = (r: { code: number | null; err: string }) => [r.code, r.err.trim()];
    expect(one(lpc([...base, '--checkpoint', art]))).toEqual([2, `lpc: --checkpoint ${art}: is the artifact ${art}, inside it or around it; checkpoints go into a folder of their own`]);
    expect(one(lpc([...base, '--checkpoint', path.join(art, 'ck')]))[0]).toBe(2);
    expect(one(lpc([...base, '--checkpoint', ck, '--metrics', path.join(ck, 'checkpoint.json')]))).toEqual(
      [2, `lpc: --metrics ${path.join(ck, 'checkpoint.json')}: the checkpoint writes checkpoint.json in ${ck}; name the metrics file otherwise`]);
    // a checkpoint folder another live run holds (this jest process stands in for it)
    fs.mkdirSync(ck, { recursive: true });
    fs.writeFileSync(path.join(ck, '.lock'), `${process.pid}\n`);
    const held = lpc([...base, '--checkpoint', ck]);
    expect(held.code).toBe(1);
    expect(held.err.trim()).toMatch(new RegExp(`another lpc run \\(pid ${process.pid}\\) is running in this directory`));
    fs.rmSync(path.join(ck, '.lock'));
    // the run's own metrics file only: resuming with another existing file refuses and leaves it whole
    const mine = path.join(tmp, 'guard.jsonl'), other = path.join(tmp, 'other.jsonl');
    expect(lpc([...base.map((a) => (a === '1' ? '2' : a)), '--checkpoint', ck, '--checkpoint-every', '1', '--metrics', mine]).code).toBe(0);
    fs.writeFileSync(other, 'precious\n');
    const side = sidecar(ck);
    fs.writeFileSync(path.join(ck, 'checkpoint.json'), JSON.stringify({ ...side, position: { ...side.position, epoch: 1, epochDone: true } }));
    expect(one(lpc(['run', art, '--backend', 'cpu', '--resume', ck, '--metrics', other]))).toEqual(
      [2, `lpc: --metrics ${other}: not the metrics file of the run in ${ck} (${fs.realpathSync(mine)}); name that file, or a new one`]);
    expect(fs.readFileSync(other, 'utf8')).toBe('precious\n');
    // the tensor file a sidecar names must be a regular file of plausible size, never a link to a device
    const t = path.join(ck, sidecar(ck).tensors);
    fs.renameSync(t, `${t}.keep`);
    fs.symlinkSync('/dev/zero', t);
    expect(one(lpc(['run', art, '--backend', 'cpu', '--resume', ck]))).toEqual([1, `lpc: checkpoint ${t}: is a symbolic link, not a regular file`]);
    fs.rmSync(t);
    fs.renameSync(`${t}.keep`, t);
    // a run that fails before its first record leaves an existing metrics file as it was
    const diverge = path.join(tmp, 'diverge.lpc');
    expect(lpc(['compile', 'test/fixtures/helpers_loop.ts', '-o', diverge, '--batch', '8', '--optimizer', 'sgd(lr=1e30,momentum=0.9,wd=0)']).code).toBe(0);
    const failed = lpc(['run', diverge, '--backend', 'cpu', '--data', 'synthetic', '--epochs', '1', '--max-steps', '4', '--metrics', other]);
    expect(failed.code).toBe(1);
    expect(fs.readFileSync(other, 'utf8')).toBe('precious\n');
  });
});
