/**
 * The sequence models end to end: the zoo's Transformer and LSTM LMs compile through every pass (verifier after each) with
 * GPT-2's parameter arithmetic; a tiny one (test/fixtures/tiny_lm.ts) trains on real text (sotu:chars) with its loss
 * falling, on the CPU interpreter and WebGPU along the same loss curve, in f32 and with bfp<8> A/W/E (and a tiny
 * LSTM LM); the quantizers
 * sit on the inputs of every linear and matmul; bad input is one line.
 */
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { quantizePass } from '../../passes/quantize.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Module } from '../../ir/graph.js';
import { loadDataset } from '../../runtime/data/index.js';
import { initState } from '../../runtime/train/init.js';
import { TrainOptions, train } from '../../runtime/train/train.js';
import { scheduleFor } from '../../bench/recipes.js';
import { Progress } from '../../runtime/train/progress.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { getGpu, shutdownGpu } from '../../runtime/webgpu/device.js';
import { Backend } from '../../runtime/backend.js';
import { traceModel } from '../../dsl/frontend.js';
import * as dsl from '../../dsl/index.js';

const quiet = new Progress({ write: () => true, isTTY: false } as unknown as NodeJS.WriteStream, false);
const adam = { kind: 'adam' as const, lr: 3e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, wd: 0 };
afterAll(async () => { await shutdownGpu(); });

function compile(file: string, batch: number, precision?: string, options = {}): Module {
  return runPasses(frontEnd(file, batch, options), { batch, optimizer: adam, precision: precision ? parsePolicy(precision) : undefined, verifyEach: true, log: () => {} });
}
const params = (m: Module) => m.graphs.find((g) => g.name === 'train')!.nodes.filter((n) => n.op === 'state' && n.attrs.kind === 'param');
const count = (m: Module) => params(m).reduce((s, n) => s + (n.attrs.shape as number[]).reduce((a, b) => a * b, 1), 0);

test('models/transformer-lm.ts: GPT-2 parameter arithmetic (separate q/k/v, untied head), --input T and --classes V reach it', () => {
  const gpt = (L: number, D: number, V: number, T: number) =>
    V * D + T * D + L * (2 * 2 * D + 4 * (D * D + D) + (4 * D * D + 4 * D) + (4 * D * D + D)) + 2 * D + V * D + V;
  expect(count(compile('models/transformer-lm.ts', 2))).toBe(gpt(4, 256, 97, 128));
  expect(count(compile('models/transformer-lm.ts', 1, undefined, { input: [32], classes: 2000 }))).toBe(gpt(4, 256, 2000, 32));
});

test('models/lstm-lm.ts: torch.nn.LSTM parameter arithmetic, two layers', () => {
  const lstm = (i: number, h: number) => 4 * h * i + 4 * h * h + 2 * 4 * h;
  expect(count(compile('models/lstm-lm.ts', 1, undefined, { input: [8] }))).toBe(97 * 128 + lstm(128, 256) + lstm(256, 256) + 256 * 97 + 97);
  // tied (embedding 256 = hidden): the head has only its bias of its own
  const tied = compile('models/lstm-lm-tied.ts', 1, undefined, { input: [8] });
  expect(count(tied)).toBe(97 * 256 + lstm(256, 256) + lstm(256, 256) + 97);
  // its dropout 0.5 on the embedding output and after each LSTM layer: in training only
  const drops = (name: string) => frontEnd('models/lstm-lm-tied.ts', 1, { input: [8] }).graphs.find((g) => g.name === name)!.nodes.filter((n) => n.op === 'dropout');
  expect(drops('train').map((n) => n.attrs.p)).toEqual([0.5, 0.5, 0.5]);
  expect(drops('eval')).toEqual([]);
});

test('tied heads: one parameter tok.weight read by the embedding and the head; the small Transformer\'s arithmetic', () => {
  const gpt = (L: number, D: number, V: number, T: number) =>
    V * D + T * D + L * (2 * 2 * D + 4 * (D * D + D) + (4 * D * D + 4 * D) + (4 * D * D + D)) + 2 * D + V * D + V;
  const m = compile('models/transformer-lm-tied.ts', 1, undefined, { input: [16] });
  expect(count(m)).toBe(gpt(4, 256, 97, 16) - 97 * 256);
  const g = m.graphs.find((x) => x.name === 'train')!;
  const tok = g.nodes.find((n) => n.op === 'state' && n.attrs.name === 'tok.weight')!;
  expect(params(m).map((n) => n.attrs.name)).not.toContain('head.weight');
  expect(params(m).map((n) => n.attrs.name)).toContain('head.bias');
  // the same state node feeds the embedding lookup and the head (a GEMM), and the optimizer updates it once
  const readers = g.nodes.filter((n) => n.inputs.includes(tok.id)).map((n) => n.op);
  expect(readers).toContain('embedding');
  expect(g.updates.filter((u) => u.name === 'tok.weight').length).toBe(1);
  expect(count(compile('models/transformer-lm-small.ts', 1, undefined, { input: [16] }))).toBe(gpt(2, 64, 97, 16));
});

test('bad tying is one line: the embedding\'s shape, a tensor that is not an embedding\'s output, an LSTM too narrow', () => {
  const { model, tokens, embedding, linear, layerNorm, lstm } = dsl;
  const wrong = model('bad_tie', () => { const e = embedding(tokens(4), 10, 8); return linear(e, 12, { tiedTo: e }); });
  expect(() => traceModel(wrong, 2)).toThrow(/^linear tiedTo: the embedding's weight \[10, 8\] is not this layer's weight \[12, 8\]/);
  const notEmb = model('bad_tie2', () => { const e = layerNorm(embedding(tokens(4), 10, 8)); return linear(e, 10, { tiedTo: e }); });
  expect(() => traceModel(notEmb, 2)).toThrow(/^linear tiedTo expects the output of embedding\(\), got the output of layernorm$/);
  // an LSTM LM's head reads the hidden states: tying it to a narrower embedding is the same shape error
  const narrow = model('bad_tie3', () => { const e = embedding(tokens(4), 10, 8); return linear(lstm(e, 16), 10, { tiedTo: e }); });
  expect(() => traceModel(narrow, 2)).toThrow(/^linear tiedTo: the embedding's weight \[10, 8\] is not this layer's weight \[10, 16\]/);
});

async function losses(b: Backend, m: Module, steps: number, T = 16, lr = adam.lr, bits?: TrainOptions['bits']): Promise<number[]> {
  const data = loadDataset('sotu:chars', { sampleShape: [T] });
  const out: number[] = [];
  await b.setState(initState(m, 0));
  const [m0] = await train(b, data, { epochs: 1, batch: 4, seed: 0, maxSteps: steps, testLimit: 8, lr: () => lr, progress: quiet, onStep: (_s, l) => out.push(l), ...(bits ? { bits } : {}) });
  // the language-model figures of the epoch record: perplexity and bits per character from the test loss
  expect(m0.test_perplexity).toBeCloseTo(Math.exp(m0.test_loss), 10);
  expect(m0.test_bits_per_char).toBeCloseTo(m0.test_loss / Math.LN2, 10);
  expect(m0.test_accuracy).toBeLessThanOrEqual(1);
  return out;
}
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

describe.each([
  ['f32', undefined],
  ['bfp<8> activations, weights and errors', 'W=bfp<8,axis=0> A=bfp<8> E=bfp<8>'],
])('a tiny Transformer LM on sotu:chars (%s)', (_, precision) => {
  test('trains: the loss falls, and WebGPU follows the CPU interpreter\'s loss curve', async () => {
    const m = compile('test/fixtures/tiny_lm.ts', 4, precision);
    const cpu = await losses(new CpuBackend(m), m, 12);
    expect(mean(cpu.slice(-4))).toBeLessThan(mean(cpu.slice(0, 4)) - 0.3);
    const gpu = await losses(new WebGpuBackend(await getGpu({ quiet: true }), m), m, 12);
    for (let i = 0; i < cpu.length; i++) expect(Math.abs(gpu[i] - cpu[i]) / cpu[i]).toBeLessThan(1e-4);
  });
});

const CPT = 'W=minmax<8,channel> A=minmax<8,tensor> E=minmax<8,tensor>:stochastic ; schedule fwd=cyclic(3,8,periods=2) bwd=const(8)';

test('CPT on a Transformer LM trains (cyclic 3→8 bits forward, 8 backward): the loss falls on the CPU interpreter and on WebGPU', async () => {
  const m = compile('test/fixtures/tiny_lm.ts', 4, CPT);
  const bits = scheduleFor(CPT, 12);
  const cpu = await losses(new CpuBackend(m), m, 12, 16, adam.lr, bits);
  expect(mean(cpu.slice(-4))).toBeLessThan(mean(cpu.slice(0, 4)) - 0.3);
  const gpu = await losses(new WebGpuBackend(await getGpu({ quiet: true }), m), m, 12, 16, adam.lr, bits);
  expect(mean(gpu.slice(-4))).toBeLessThan(mean(gpu.slice(0, 4)) - 0.3);
  // Not 1e-4 as in f32 and bfp<8>: at 3 bits a one-ulp f32 difference (layer norm, a GEMM's sum order: the fp32
  // contract) in a tensor's min moves a value sitting on a rounding tie to the next of 7 levels, a jump the next
  // layers carry (seen at step 0 in the attention output). The quantizers themselves agree bit for bit given equal
  // inputs (test/webgpu/cpt.test.ts, quant-webgpu.test.ts).
  for (let i = 0; i < cpu.length; i++) expect(Math.abs(gpu[i] - cpu[i]) / cpu[i]).toBeLessThan(2e-2);
});

test.each([['f32', undefined], ['bfp<8> A/W/E', 'W=bfp<8,axis=0> A=bfp<8> E=bfp<8>']])('a tiny LSTM LM trains on sotu:chars (%s), on WebGPU along the CPU interpreter\'s loss curve', async (_, precision) => {
  const m = compile('test/fixtures/tiny_lstm.ts', 4, precision);
  const cpu = await losses(new CpuBackend(m), m, 16, 8, 2e-2);
  expect(mean(cpu.slice(-4))).toBeLessThan(mean(cpu.slice(0, 4)) - 0.3);
  const gpu = await losses(new WebGpuBackend(await getGpu({ quiet: true }), m), m, 16, 8, 2e-2);
  for (let i = 0; i < cpu.length; i++) expect(Math.abs(gpu[i] - cpu[i]) / cpu[i]).toBeLessThan(1e-4);
});

test('quantizers: every linear and matmul reads its activations in A (layer norm, softmax and GELU compute in f32)', () => {
  const m = quantizePass(frontEnd('test/fixtures/tiny_lm.ts', 2), parsePolicy('A=bfp<8> E=bfp<8>'));
  const g = m.graphs.find((x) => x.name === 'eval')!;
  const src = (id: number): string => { let n = g.nodes[id]; while (n.op === 'reshape' || n.op === 'permute') n = g.nodes[n.inputs[0]]; return n.op; };
  const mm = g.nodes.filter((n) => n.op === 'linear' || n.op === 'batch_matmul');
  expect(mm.length).toBe(2 * (4 + 2 + 2) + 1); // per block: q, k, v, proj, the MLP's two, two matmuls; the head
  for (const n of mm) {
    expect([n.op, src(n.inputs[0])]).toEqual([n.op, 'quantize']);
    if (n.op === 'batch_matmul') expect([n.op, src(n.inputs[1])]).toEqual([n.op, 'quantize']);
  }
  // the logits are not quantized (the classifier's output, as for the CNNs)
  const head = g.nodes[g.outputs.length ? g.nodes.find((n) => n.op === 'softmax_xent')!.inputs[0] : 0];
  expect(src(head.id)).toBe('linear');
});

test('CPT placement in sequence models: every linear and batched matmul, operands A (own running ranges), linear weights W, errors E but the logits\'', () => {
  const m = quantizePass(frontEnd('test/fixtures/tiny_lm.ts', 2), parsePolicy(CPT));
  const [train, evalG] = ['train', 'eval'].map((name) => m.graphs.find((x) => x.name === name)!);
  const quant = (g: typeof train, id: number, role: string) => {
    const n = g.nodes[id];
    return (n.op === 'quantize' && n.attrs.role === role && (n.attrs.fmt as { kind: string }).kind === 'minmax') || (role === 'A' && n.op === 'minmax_quantize');
  };
  for (const g of [train, evalG]) {
    const mm = g.nodes.filter((n) => n.op === 'linear' || n.op === 'batch_matmul');
    expect(mm.length).toBe(2 * (4 + 2 + 2) + 1);
    for (const n of mm) {
      expect([n.op, quant(g, n.inputs[0], 'A')]).toEqual([n.op, true]);
      expect([n.op, quant(g, n.inputs[1], n.op === 'linear' ? 'W' : 'A')]).toEqual([n.op, true]);
    }
    // E on each output (identity forward) except the head's: the logits' error stays as the loss made it
    const errs = g.nodes.filter((n) => n.op === 'quantize' && n.attrs.role === 'E');
    expect(errs.length).toBe(mm.length - 1);
    const head = g.nodes.find((n) => n.op === 'linear' && g.nodes[g.nodes[n.inputs[1]].inputs[0]].attrs.name === 'head.weight')!;
    expect(errs.map((n) => n.inputs[0])).not.toContain(head.id);
  }
  // QuantMeasure's buffers: one per linear input, two per matmul; evaluation quantizes with them
  const buffers = train.nodes.filter((n) => n.op === 'state' && n.attrs.kind === 'buffer').map((n) => String(n.attrs.name));
  expect(buffers).toContain('h1.attn0.proj.act_range');
  expect(buffers).toContain('matmul3.b_range');
  expect(buffers.length).toBe(13 + 2 * 4);
  expect(evalG.nodes.filter((n) => n.op === 'minmax_quantize').length).toBe(buffers.length);
  // an LSTM reads its weights once per step: each use gets its own buffer
  const lstmBuffers = quantizePass(frontEnd('test/fixtures/tiny_lstm.ts', 2), parsePolicy(CPT)).graphs[0].nodes
    .filter((n) => n.op === 'state' && n.attrs.kind === 'buffer').map((n) => String(n.attrs.name));
  expect(lstmBuffers.filter((b) => b.startsWith('lstm0.weight_ih_l0.act_range'))).toEqual(['lstm0.weight_ih_l0.act_range', ...Array.from({ length: 7 }, (_, k) => `lstm0.weight_ih_l0.act_range${k + 1}`)]);
});
