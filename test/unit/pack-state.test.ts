/**
 * Packed MX state (passes/pack-state.ts, runtime/packed-state.ts): W with ACC, M and V are held as MX words, decoded
 * before each reader and encoded as the update. Checked against the same build holding f32 buffers (packState: false),
 * on the CPU interpreter: the same losses and the same state bits step by step (SGD and Adam, nearest and stochastic,
 * FP and integer elements), the same checkpoint file, a resumed run continuing identically; the memory plan's
 * weight and optimizer bytes derived here from the parameter shapes alone; SWA averaging the decoded weights.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Module } from '../../ir/graph.js';
import { MX_ELEMS } from '../../ir/format.js';
import { numel } from '../../ir/types.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { quantize } from '../../ir/quant/quantize.js';
import { frontEnd } from '../../dsl/frontend.js';
import { CompileOptions, runPasses } from '../../passes/pipeline.js';
import { withSwa } from '../../passes/swa.js';
import { planModuleMemory } from '../../passes/memory.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState, stateDecls } from '../../runtime/train/init.js';
import { loadCheckpoint, saveCheckpoint } from '../../runtime/checkpoint.js';
import { quantStats } from '../../runtime/train/quant-stats.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { firstNonFinite } from '../../runtime/train/numerics.js';
import { rand } from './helpers.js';

const MXFP8 = 'W=mx<e4m3> A=mx<e4m3> E=mx<e5m2> G=mx<e5m2> M=mx<e5m2> ACC=f32';

const compile = (spec: string, o: Partial<CompileOptions> = {}, file = 'models/lenet5.ts', batch = 2): Module =>
  runPasses(frontEnd(file, batch), { batch, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: parsePolicy(spec), log: () => {}, verifyEach: true, ...o });
const train = (m: Module) => m.graphs.find((g) => g.name === 'train')!;
const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

/** The initial state with every W-quantized weight put on its grid (a packed weight can hold nothing else). */
function onGrid(m: Module, spec: string): Map<string, Float32Array> {
  const s = initState(m, 5), w = parsePolicy(spec).roles.W!;
  for (const d of stateDecls(m)) if (d.kind === 'param') s.set(d.name, quantize(s.get(d.name)!, d.shape, w.fmt, 'nearest'));
  return s;
}

function feeds(batch: number, seed: number) {
  const r = rand(seed);
  return {
    x: Float32Array.from({ length: batch * 28 * 28 }, () => r()),
    y: Int32Array.from({ length: batch }, () => Math.floor(r() * 10)),
    lr: new Float32Array([0.05]),
  };
}

/** Steps on CpuBackends of the packed and the f32-holding build from one state: losses and state bit for bit. */
async function sameTraining(spec: string, steps: number, o: Partial<CompileOptions> = {}): Promise<[CpuBackend, CpuBackend, Module]> {
  const mp = compile(spec, o), mf = compile(spec, { ...o, packState: false });
  const packedNames = train(mp).nodes.filter((n) => n.op === 'state' && n.attrs.packed).map((n) => String(n.attrs.name));
  expect(packedNames.length).toBeGreaterThan(0);
  expect(train(mf).nodes.some((n) => n.op === 'state' && n.attrs.packed)).toBe(false);
  const init = onGrid(mp, spec), p = new CpuBackend(mp), f = new CpuBackend(mf);
  await p.setState(init);
  await f.setState(init);
  for (let step = 0; step < steps; step++) {
    const fd = feeds(2, 10 + step);
    const a = await p.run('train', fd, { seed: 3, step }, ['loss']), b = await f.run('train', fd, { seed: 3, step }, ['loss']);
    expect([spec, step, a.loss[0]]).toEqual([spec, step, b.loss[0]]);
  }
  const [sp, sf] = [await p.getState(), await f.getState()];
  expect([...sp.keys()].sort()).toEqual([...sf.keys()].sort());
  for (const [k, v] of sf) expect([spec, k, bits(sp.get(k)!)]).toEqual([spec, k, bits(v)]);
  return [p, f, mp];
}

test('placement: W (with ACC), M and V stored packed, each reader decoding its own copy; W without ACC stays f32', () => {
  const g = train(compile(MXFP8));
  const packed = g.nodes.filter((n) => n.op === 'state' && n.attrs.packed);
  const names = packed.map((n) => String(n.attrs.name));
  // the weights (GEMM operands) and their momenta; biases are vectors and stay f32
  expect(names.filter((s) => !s.endsWith('.momentum')).sort()).toEqual(['conv0.weight', 'conv1.weight', 'linear0.weight', 'linear1.weight', 'linear2.weight']);
  expect(names.filter((s) => s.endsWith('.momentum')).sort()).toEqual(names.filter((s) => !s.endsWith('.momentum')).sort().map((s) => `${s}.momentum`));
  expect(names.some((s) => s.endsWith('.acc'))).toBe(false); // the accumulator is the f32 master copy
  for (const s of packed) {
    const readers = g.nodes.filter((n) => n.inputs.includes(s.id));
    expect(readers.every((n) => n.op === 'format_decompress')).toBe(true);
    // one decode per reader: no plain decoded copy is read by two nodes (so no decoded weight lives across the step;
    // a decode that computes the momentum step in its epilogue feeds the update and the weight step)
    for (const d of readers) if (!d.epi) expect(g.nodes.filter((n) => n.inputs.includes(d.id)).length).toBe(1);
    expect(numel(s.type.shape)).toBeLessThan(numel(s.attrs.shape as number[])); // words
  }
  // the artifact's text form keeps the packing (print ∘ parse is the identity)
  const text = printModule(compile(MXFP8));
  expect(text).toContain('packed=mx<e4m3>');
  expect(printModule(parseModule(text, 'test.lpir'))).toBe(text);
  const ev = compile(MXFP8).graphs.find((x) => x.name === 'eval')!;
  expect(ev.nodes.filter((n) => n.op === 'state' && n.attrs.packed).length).toBe(5);
  // without ACC, W is the master copy the update rewrites: f32 (M is still packed)
  const noAcc = train(compile('W=mx<e4m3> M=mx<e4m3>')).nodes.filter((n) => n.op === 'state' && n.attrs.packed).map((n) => String(n.attrs.name));
  expect(noAcc.length).toBe(5);
  expect(noAcc.every((s) => s.endsWith('.momentum'))).toBe(true);
  expect(train(compile('W=bfp<8> ACC=f32 M=bfp<8>')).nodes.some((n) => n.op === 'state' && n.attrs.packed)).toBe(false);
});

// Nearest rounding only: a stochastic quantizer's random bits are keyed by its node id, which the
// decodes shift, so a packed build with stochastic rounding anywhere draws another (equally valid) stream than the f32 one
// (test/webgpu/pack-state.test.ts runs stochastic packed builds against the CPU interpreter instead).
test('a packed build trains bit for bit like the f32-holding one (SGD: MXFP8; MXFP4 W, MXINT8 M)', async () => {
  await sameTraining(MXFP8, 3);
  await sameTraining('W=mx<e2m1> A=mx<e2m1> E=mx<e3m2> M=mx<int8> ACC=f32', 3);
}, 120000);

test('Adam: exp_avg (M) and exp_avg_sq (V) packed, bit for bit; unfused too', async () => {
  const adam = { optimizer: { kind: 'adam' as const, lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, wd: 0 } };
  await sameTraining('W=mx<e3m2> M=mx<e2m3> V=mx<e4m3> ACC=f32', 3, adam);
  await sameTraining('W=mx<int4,block=16> M=mx<e5m2,axis=0> ACC=f32', 2, { ...adam, fuse: false });
}, 120000);

test('checkpoints of a packed run equal the f32-holding run\'s, and resuming from one continues bit for bit', async () => {
  const [p, f, mp] = await sameTraining(MXFP8, 2);
  const decls = stateDecls(mp), dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-pack-'));
  const side = {
    artifact_sha256: 'x', model: 'lenet5', position: { epoch: 1, stepsDone: 2, epochDone: false, globalStep: 2, lossSum: 0, swaCount: 0 },
    seed: 0, lr: { schedule: 'const', next: 0.05 }, config: {}, metrics_bytes: null,
  };
  try {
    const files = [];
    for (const [b, name] of [[p, 'p'], [f, 'f']] as const) {
      const sc = JSON.parse(fs.readFileSync(saveCheckpoint(path.join(dir, name), { decls, state: await b.getState(), sidecar: side }), 'utf8'));
      files.push(fs.readFileSync(path.join(dir, name, sc.tensors)));
    }
    expect(files[0].equals(files[1])).toBe(true);
    // resume: a fresh packed backend from the checkpoint takes the same next step as the one that wrote it
    const { state } = loadCheckpoint(path.join(dir, 'p'), decls, 'x'), q = new CpuBackend(mp);
    await q.setState(state);
    const fd = feeds(2, 99);
    const a = await p.run('train', fd, { seed: 3, step: 2 }, ['loss']), b = await q.run('train', fd, { seed: 3, step: 2 }, ['loss']);
    expect(b.loss[0]).toBe(a.loss[0]);
    const [sa, sb] = [await p.getState(), await q.getState()];
    for (const [k, v] of sa) expect([k, bits(sb.get(k)!)]).toEqual([k, bits(v)]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120000);

test('SWA averages the decoded weights (swa.p ← p after one average from zero) and evaluates them', async () => {
  const m = withSwa(compile(MXFP8)), b = new CpuBackend(m), init = initState(m, 5);
  await b.setState(init);
  await b.run('train', feeds(2, 1), { seed: 3, step: 0 }, ['loss']);
  await b.run('swa_average', { swa_keep: new Float32Array([0]), swa_alpha: new Float32Array([1]) }, { seed: 3, step: 0 }, []);
  const s = await b.getState();
  for (const name of ['conv1.weight', 'linear2.bias']) expect(bits(s.get(`swa.${name}`)!)).toEqual(bits(s.get(name)!));
  const { x, y } = feeds(2, 2), out = await b.run('swa_eval', { x, y }, { seed: 0, step: 0 }, ['loss']);
  expect(Number.isFinite(out.loss[0])).toBe(true);
}, 120000);

test('--quant-stats and --check-numerics rerun a packed step from getState\'s f32 values: W and M still report', async () => {
  const m = compile(MXFP8), b = new CpuBackend(m);
  await b.setState(initState(m, 5));
  const state = await b.getState(), fd = feeds(2, 4), info = { seed: 3, step: 0 };
  const sites = quantStats(train(m), fd, state, info);
  for (const role of ['W', 'M']) {
    const s = sites.filter((x) => x.site === role);
    // the weights' (packed: rounded by the compression) and the biases' (f32 buffers: a fused quantizer)
    const packedSites = s.filter((x) => x.op === 'format_compress' && x.fmt === (role === 'W' ? 'mx<e4m3>' : 'mx<e5m2>'));
    expect([role, s.length, packedSites.length]).toEqual([role, 10, 5]);
  }
  expect(sites.find((x) => x.site === 'M' && x.n === 16 * 6 * 25)!.rel_error).toBeGreaterThan(0);
  expect(firstNonFinite(train(m), fd, state, info)).toBeUndefined();
}, 60000);

/** Bytes of an MX tensor stored packed, from its shape alone: ⌈n·bits/32⌉ words of codes, ⌈blocks/4⌉ of scale bytes. */
function mxBytes(shape: number[], elem: keyof typeof MX_ELEMS): number {
  const n = shape.reduce((a, b) => a * b, 1);
  const axis = shape.length === 4 ? 1 : shape.length - 1; // input channels of OIHW, a linear's inputs, a bias
  const blocks = (n / shape[axis]) * Math.ceil(shape[axis] / 32);
  return 4 * Math.ceil((n * MX_ELEMS[elem].bits) / 32) + 4 * Math.ceil(blocks / 4);
}
const LENET = [[6, 1, 5, 5], [6], [16, 6, 5, 5], [16], [120, 400], [120], [84, 120], [84], [10, 84], [10]];
/** Bytes of a parameter (or its momentum) in element format `elem`: packed if it has 2 or more axes, else f32. */
const stateBytes = (s: number[], elem: keyof typeof MX_ELEMS) => (s.length >= 2 ? mxBytes(s, elem) : 4 * numel(s));

test('the memory plan counts packed weights and momentum: bytes derived from LeNet-5\'s parameter shapes', () => {
  for (const [w, mom] of [['e4m3', 'e5m2'], ['e3m2', 'e3m2'], ['e2m1', 'e2m1']] as const) {
    const plan = planModuleMemory(compile(`W=mx<${w}> M=mx<${mom}> ACC=f32`));
    const sum = (cls: string) => plan.state.filter((s) => s.class === cls).reduce((t, s) => t + s.bytes, 0);
    expect([w, sum('weights')]).toEqual([w, LENET.reduce((t, s) => t + stateBytes(s, w), 0)]);
    const f32 = LENET.reduce((t, s) => t + 4 * numel(s), 0); // the accumulator
    expect([w, sum('optimizer')]).toEqual([w, f32 + LENET.reduce((t, s) => t + stateBytes(s, mom), 0)]);
  }
});

test('lpc mem --json reports the packed weights and optimizer state (--pack-state off: the f32 buffers)', () => {
  const mem = (...extra: string[]) => JSON.parse(execFileSync('node', ['bin/lpc.js', 'mem', 'models/lenet5.ts', '--batch', '8', '--json', '--precision', 'W=mx<e2m1> M=mx<e2m1> ACC=f32', ...extra], { encoding: 'utf8' }));
  const a = mem(), f = mem('--pack-state', 'off');
  expect(a.weights_bytes).toBe(LENET.reduce((t, s) => t + stateBytes(s, 'e2m1'), 0));
  expect(a.optimizer_bytes).toBe(LENET.reduce((t, s) => t + 4 * numel(s) + stateBytes(s, 'e2m1'), 0));
  expect([f.weights_bytes, f.optimizer_bytes]).toEqual([LENET.reduce((t, s) => t + 4 * numel(s), 0), LENET.reduce((t, s) => t + 8 * numel(s), 0)]);
  // the peak falls by at least the bytes the state saves less the largest decoded copy (linear0's weight) alive at once
  expect(f.peak_bytes - a.peak_bytes).toBeGreaterThan(f.weights_bytes + f.optimizer_bytes - a.weights_bytes - a.optimizer_bytes - 4 * 120 * 400);
}, 60000);
