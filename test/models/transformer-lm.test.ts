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
import { train } from '../../runtime/train/train.js';
import { Progress } from '../../runtime/train/progress.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { getGpu, shutdownGpu } from '../../runtime/webgpu/device.js';
import { Backend } from '../../runtime/backend.js';

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
});

async function losses(b: Backend, m: Module, steps: number, T = 16, lr = adam.lr): Promise<number[]> {
  const data = loadDataset('sotu:chars', { sampleShape: [T] });
  const out: number[] = [];
  await b.setState(initState(m, 0));
  const [m0] = await train(b, data, { epochs: 1, batch: 4, seed: 0, maxSteps: steps, testLimit: 8, lr: () => lr, progress: quiet, onStep: (_s, l) => out.push(l) });
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
