/**
 * Adam through the CLI (the built bin/lpc.js): `lpc compile --optimizer adamw(…)` writes the options into the
 * manifest (hashed, read back, shown by inspect), checkpoints hold `<param>.exp_avg` / `.exp_avg_sq`, and a run killed
 * with SIGKILL after a mid-epoch checkpoint resumes bit-identically (the bias corrections follow the global step).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeSafetensors } from '../../runtime/checkpoint.js';
import { readArtifact } from '../../runtime/artifact.js';
import { killAfterCheckpoint } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-adam-'));
const lpc = (args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const sidecar = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
const tensorFile = (dir: string) => fs.readFileSync(path.join(dir, sidecar(dir).tensors));
const SPEC = 'G=bf16 M=bf16 V=float<8,10>:stochastic W=bf16:stochastic ACC=float<8,20>';

describe('lpc compile/run with adam', () => {
  const art = path.join(tmp, 'adam.lpc');
  beforeAll(() => {
    const r = lpc(['compile', 'test/fixtures/helpers_loop.ts', '-o', art, '--batch', '8', '--optimizer', 'adamw(lr=0.01,betas=(0.9,0.99),eps=1e-7,wd=0.01)', '--precision', SPEC]);
    expect(r.err).not.toContain('error');
    expect(r.code).toBe(0);
  });

  test('the manifest keeps the options (hashed); inspect shows them; bad specs are one line', () => {
    const a = readArtifact(art);
    expect(a.manifest.options.optimizer).toEqual({ kind: 'adamw', lr: 0.01, betas: [0.9, 0.99], eps: 1e-7, wd: 0.01 });
    expect(a.manifest.options.precision).toBe('W=float<8,7>:stochastic G=float<8,7> M=float<8,7> V=float<8,10>:stochastic ACC=float<8,20>');
    expect(lpc(['inspect', art]).out).toContain('optimizer adamw(lr=0.01,betas=(0.9,0.99),eps=1e-7,wd=0.01)');
    // an edited option is refused like an edited file
    const edited = path.join(tmp, 'edited.lpc');
    fs.cpSync(art, edited, { recursive: true });
    const mf = path.join(edited, 'manifest.json'), j = JSON.parse(fs.readFileSync(mf, 'utf8'));
    j.options.optimizer.betas = [0.9, 0.999];
    fs.writeFileSync(mf, JSON.stringify(j));
    expect(() => readArtifact(edited)).toThrow('the compile options were edited');
    for (const [spec, msg] of [['adam(eps=0)', 'adam: need eps > 0'], ['adamw(betas=(1,0.9))', 'adamw: need betas in [0, 1)'], ['adam(gamma=2)', "adam: bad argument 'gamma=2'"]]) {
      const r = lpc(['compile', 'test/fixtures/helpers_loop.ts', '-o', path.join(tmp, 'bad.lpc'), '--optimizer', spec]);
      expect(r.code).not.toBe(0);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toContain(msg);
    }
  });

  test('checkpoints hold the moments; SIGKILL mid-epoch, --resume: bit-identical to the straight run', async () => {
    const run = ['run', art, '--backend', 'cpu', '--data', 'synthetic', '--epochs', '2', '--max-steps', '6', '--seed', '3', '--lr-schedule', 'cosine(per=step)'];
    const straight = path.join(tmp, 'straight'), killed = path.join(tmp, 'killed');
    expect(lpc([...run, '--checkpoint', straight]).code).toBe(0);
    const names = [...decodeSafetensors(tensorFile(straight), 'x').tensors.keys()];
    expect(names).toEqual(expect.arrayContaining(['conv0.weight', 'conv0.weight.exp_avg', 'conv0.weight.exp_avg_sq', 'conv0.weight.acc']));
    await killAfterCheckpoint([...run, '--checkpoint', killed, '--checkpoint-every', '4'], killed, 4);
    expect(sidecar(killed).position).toMatchObject({ globalStep: 4, epochDone: false });
    const r = lpc(['run', art, '--backend', 'cpu', '--resume', killed]);
    expect(r.code).toBe(0);
    expect(sidecar(killed).position).toEqual(sidecar(straight).position);
    expect(tensorFile(killed).equals(tensorFile(straight))).toBe(true);
  });
});
