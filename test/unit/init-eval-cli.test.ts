/**
 * `lpc run --init-from` and `lpc eval` end to end (the built bin/lpc.js, CPU backend, fixed seeds, tiny sizes): a
 * hand-assembled safetensors state_dict gives the same first loss and evaluation as the same weights set directly on
 * the CPU backend; strict and non-strict matching and bad files are one line each; `lpc eval` of a checkpoint
 * reproduces the run's last epoch record (SGD and SWA model), and fine-tuning an fp32 checkpoint into a bfp<8> run works.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readArtifact } from '../../runtime/artifact.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { epochBatches, loadDataset } from '../../runtime/data/index.js';
import { initState, stateDecls } from '../../runtime/train/init.js';
import { evaluate } from '../../runtime/train/train.js';
import { tensorNames } from '../../runtime/checkpoint.js';
import { modelDecls } from '../../runtime/weights.js';
import { handSafetensors } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-initeval-'));
const lpc = (args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const records = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const lastEpoch = (f: string) => records(f).filter((r) => r.test_loss !== undefined).at(-1);
const f64 = (v: Float32Array) => { const b = Buffer.alloc(8 * v.length); v.forEach((x, i) => b.writeDoubleLE(x, 8 * i)); return b; };
const f32 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const BFP8 = 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic';

describe('lpc run --init-from', () => {
  const art = path.join(tmp, 'res.lpc');
  const run = ['--backend', 'cpu', '--data', 'synthetic', '--epochs', '1', '--max-steps', '1', '--seed', '0', '--metrics-steps', '1'];
  let weights: Map<string, Float32Array>;
  let sd: [string, string, number[], Buffer][];
  let nModel = 0; // model tensors (the file also holds momentum buffers, lpc run state that --init-from passes over)
  beforeAll(() => {
    expect(lpc(['compile', 'test/fixtures/helpers_loop.ts', '-o', art, '--batch', '8']).code).toBe(0);
    // weights of another seed, BN statistics that are not the defaults: a PyTorch-style state_dict, weights in F64
    const m = readArtifact(art).module;
    weights = initState(m, 7);
    for (const [k, v] of weights) if (k.endsWith('.running')) v.forEach((_, i) => { v[i] = i < v.length / 2 ? 0.1 * i : 1 + 0.5 * i; });
    sd = [];
    nModel = tensorNames(modelDecls(stateDecls(m))).length;
    for (const t of tensorNames(stateDecls(m))) {
      const v = weights.get(t.state)!.subarray(t.offset, t.offset + t.count);
      sd.push([t.name, t.name.includes('running') ? 'F32' : 'F64', t.shape, t.name.includes('running') ? f32(v) : f64(v)]);
      if (t.name.endsWith('.running_var')) sd.push([t.name.replace('running_var', 'num_batches_tracked'), 'I64', [], Buffer.alloc(8)]);
    }
    fs.writeFileSync(path.join(tmp, 'sd.safetensors'), handSafetensors(sd, { __metadata__: { format: 'pt' } }));
  });

  test('a hand-written state_dict gives the first loss and the evaluation of the same weights set directly', async () => {
    const m = path.join(tmp, 'init.jsonl');
    const r = lpc(['run', art, ...run, '--metrics', m, '--init-from', path.join(tmp, 'sd.safetensors')]);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`--init-from ${path.join(tmp, 'sd.safetensors')}: loaded ${nModel} of ${nModel} model tensors\n`);
    const [step, epoch] = records(m);

    const a = readArtifact(art);
    const b = new CpuBackend(a.module);
    await b.setState(weights);
    const data = loadDataset('synthetic', { sampleShape: [1, 8, 8], seed: 0, classes: 3 });
    const { x, y } = epochBatches(data.train, 8, 0, 1).get(0);
    const out = await b.run('train', { x, y, lr: Float32Array.of(a.manifest.options.optimizer.lr) }, { seed: 0, step: 0 }, ['loss']);
    expect(step.loss).toBe(out.loss[0]);
    const ev = await evaluate(b, data.test, 8);
    expect(epoch.test_loss).toBe(ev.loss); // the BN running statistics came from running_mean / running_var
    expect(epoch.test_accuracy).toBe(ev.accuracy);
    // and the run from the seed's own weights starts elsewhere
    expect(lpc(['run', art, ...run, '--metrics', path.join(tmp, 'plain.jsonl')]).code).toBe(0);
    expect(records(path.join(tmp, 'plain.jsonl'))[0].loss).not.toBe(step.loss);
  });

  test('strict: missing, extra and mis-shaped keys in one line; non-strict skips and reports; exclusive with --resume', () => {
    const bad = sd.filter((t) => t[0] !== 'linear0.bias').map((t) => (t[0] === 'conv0.weight' ? [t[0], t[1], [t[2][0], 9], t[3].subarray(0, t[2][0] * 9 * 8)] : t)) as typeof sd;
    bad.push(['fc.weight', 'F32', [1], Buffer.alloc(4)]);
    const f = path.join(tmp, 'bad.safetensors');
    fs.writeFileSync(f, handSafetensors(bad));
    const r = lpc(['run', art, ...run, '--init-from', f]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toEqual([
      `lpc: --init-from ${f}: does not match model 'tiny_res' (strict, as load_state_dict): missing linear0.bias; unexpected fc.weight; ` +
      'wrong shape conv0.weight [4, 9] in the file, [4, 1, 3, 3] in the model; --init-from-non-strict loads what matches']);
    const ns = lpc(['run', art, ...run, '--init-from', f, '--init-from-non-strict']);
    expect(ns.code).toBe(0);
    expect(ns.err).toContain(`lpc: --init-from ${f}: loaded ${nModel - 2} of ${nModel} model tensors; skipped: missing linear0.bias; unexpected fc.weight; wrong shape conv0.weight [4, 9] in the file, [4, 1, 3, 3] in the model\n`);
    const both = lpc(['run', art, ...run, '--init-from', f, '--resume', tmp]);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/^lpc: --init-from and --resume exclude each other/);
    expect(lpc(['run', art, ...run, '--init-from-non-strict']).code).toBe(2);
  });

  test('bad files: one line each', () => {
    const text = path.join(tmp, 'notes.txt');
    fs.writeFileSync(text, 'not a safetensors file at all\n');
    const trunc = path.join(tmp, 'trunc.safetensors');
    fs.writeFileSync(trunc, handSafetensors(sd).subarray(0, 200));
    const ints = path.join(tmp, 'ints.safetensors');
    fs.writeFileSync(ints, handSafetensors(sd.map((t) => (t[0] === 'conv0.weight' ? [t[0], 'I64', t[2], t[3]] : t)) as typeof sd));
    for (const [f, re] of [[text, /not a valid safetensors file \(header length \d+ is over the 100000000-byte limit\)/], [trunc, /header length \d+ exceeds the file \(truncated\?\)/],
      [ints, /tensor 'conv0.weight' has dtype I64, which lpc cannot read/], [path.join(tmp, 'none.safetensors'), /: not found$/]] as const) {
      const r = lpc(['run', art, ...run, '--init-from', f]);
      expect(r.code).toBe(1);
      const lines = r.err.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0].startsWith(`lpc: --init-from ${f}: `)).toBe(true);
      expect(lines[0]).toMatch(re);
    }
  });
});

describe('lpc eval', () => {
  const fp = path.join(tmp, 'lenet-fp32.lpc'), q = path.join(tmp, 'lenet-bfp8.lpc');
  const data = ['--data', 'mnist:classes=0,1,2'];
  beforeAll(() => {
    expect(lpc(['compile', 'models/lenet5.ts', '-o', fp, '--batch', '16', '--classes', '3']).code).toBe(0);
    expect(lpc(['compile', 'models/lenet5.ts', '-o', q, '--batch', '16', '--classes', '3', '--precision', BFP8]).code).toBe(0);
  });
  const evalJson = (args: string[]) => {
    const out = path.join(tmp, `e${Math.random().toString(36).slice(2)}.json`);
    const r = lpc(['eval', ...args, '--backend', 'cpu', '--json', out]);
    expect(r.err).not.toMatch(/^lpc: (?!evaluating)/m);
    expect(r.code).toBe(0);
    return { ...JSON.parse(fs.readFileSync(out, 'utf8')), stdout: r.out };
  };

  test("a trained LeNet-5's checkpoint evaluates to the run's last epoch record; fine-tuned into bfp<8>, SGD and SWA models too", () => {
    const ckA = path.join(tmp, 'ckA'), mA = path.join(tmp, 'mA.jsonl');
    expect(lpc(['run', fp, '--backend', 'cpu', ...data, '--epochs', '1', '--max-steps', '6', '--checkpoint', ckA, '--metrics', mA]).code).toBe(0);
    const e = evalJson([fp, '--weights', ckA]); // data spec from the checkpoint
    const rec = lastEpoch(mA);
    expect([e.test_loss, e.test_accuracy]).toEqual([rec.test_loss, rec.test_accuracy]);
    expect(e.data).toBe('mnist:classes=0,1,2');
    expect(e.per_class.map((c: any) => c.samples).reduce((a: number, b: number) => a + b, 0)).toBe(e.samples);
    expect(e.confusion.reduce((t: number, row: number[], i: number) => t + row[i], 0)).toBe(Math.round(e.test_accuracy * e.samples));
    expect(e.stdout).toMatch(/^test loss \d\.\d{4} {2}test accuracy \d+\.\d\d% \(\d+ images\)\n\ntrue\\pred +0 +1 +2 +accuracy\n0 /);
    // an fp32 artifact: --fp32 changes nothing; a bare safetensors file works as well as the folder
    const bare = evalJson([fp, '--weights', path.join(ckA, fs.readdirSync(ckA).find((f) => f.endsWith('.safetensors'))!), ...data, '--fp32']);
    expect(bare.test_loss).toBe(rec.test_loss);

    // fine-tuning: the fp32 checkpoint into a bfp<8> run with SWA
    const ckB = path.join(tmp, 'ckB'), mB = path.join(tmp, 'mB.jsonl');
    const r = lpc(['run', q, '--backend', 'cpu', ...data, '--epochs', '1', '--max-steps', '4', '--init-from', ckA, '--swa', 'start=1', '--checkpoint', ckB, '--metrics', mB]);
    expect(r.code).toBe(0);
    expect(r.err).toContain('loaded 10 of 10 model tensors\n');
    const recB = lastEpoch(mB);
    const qe = evalJson([q, '--weights', ckB]);
    expect([qe.test_loss, qe.test_accuracy, qe.precision]).toEqual([recB.test_loss, recB.test_accuracy, BFP8.replace(/bfp<8>/g, 'bfp<8,tensor>')]);
    const swa = evalJson([q, '--weights', ckB, '--swa']);
    expect([swa.test_loss, swa.test_accuracy, swa.precision]).toEqual([recB.swa_test_loss, recB.swa_test_accuracy, 'f32']);
    const full = evalJson([q, '--weights', ckB, '--fp32']);
    expect(full.precision).toBe('f32');
    expect(Number.isFinite(full.test_loss)).toBe(true);

    // --swa of a run without SWA, or of a bare file: one line
    const noSwa = lpc(['eval', fp, '--weights', ckA, '--swa', '--backend', 'cpu']);
    expect(noSwa.code).toBe(1);
    expect(noSwa.err.trim()).toMatch(/^lpc: --weights \S+ckA\/state-\S+\.safetensors: holds no SWA model \(swa\.\* tensors\); was its run started with --swa\?$/);
    expect(lpc(['eval', fp, '--weights', path.join(tmp, 'sd.safetensors'), '--swa']).code).toBe(2);
    // weights of another model: one strict line
    const other = lpc(['eval', fp, '--weights', path.join(tmp, 'sd.safetensors'), '--backend', 'cpu']);
    expect(other.code).toBe(1);
    expect(other.err.trim().split('\n')).toHaveLength(1);
    expect(other.err).toMatch(/does not match model 'lenet5' \(strict, as load_state_dict\): missing conv1.bias, .*; unexpected bn0.weight, .*, … \(18 more\); wrong shape conv0.weight \[4, 1, 3, 3\] in the file, \[6, 1, 5, 5\] in the model, /);
  });

  test('--help and the command table', () => {
    const h = lpc(['eval', '--help']);
    expect(h.code).toBe(0);
    for (const f of ['--weights FILE|DIR', '--fp32', '--swa', '--json FILE', '--data SET']) expect(h.out).toContain(f);
    expect(lpc(['--help']).out).toMatch(/\n {2}eval +Evaluate weights/);
    expect(lpc(['eval', fp]).code).toBe(2);
  });
});
