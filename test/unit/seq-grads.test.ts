/**
 * The sequence ops (issue 29) on the CPU interpreter against PyTorch (test/fixtures/seq/gen_torch_grads.py): forward
 * values, losses and every parameter gradient within 1e-4 (max-norm relative), in float64 and in f32 storage; the
 * same for one pre-LN Transformer block and an LSTM LM; five Adam steps of the block LM through every pass against
 * torch.optim.Adam; GELU's erfc against known values; the embedding gradient's bits; bad input.
 */
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { traceModel } from '../../dsl/frontend.js';
import { model, tokens, embedding, selfAttention, linear } from '../../dsl/index.js';
import { erfc } from '../../ir/ops/activation.js';
import { relErr } from './helpers.js';
import { TORCH, adamModule, adamSteps, expectAdamRun, modelGraph, opCaseGraph } from './seq-cases.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';

const TOL = 1e-4;

describe(`sequence ops vs PyTorch ${TORCH.torch} (CPU interpreter)`, () => {
  for (const c of TORCH.ops) {
    for (const precision of ['f64', 'f32'] as const) {
      test(`${c.name} (${precision})`, () => {
        const { g, feeds, state, out } = opCaseGraph(c);
        const r = runGraph(g, feeds, state, { precision });
        expect(relErr(r.values[out], c.out)).toBeLessThan(precision === 'f64' ? 1e-12 : 1e-6);
        expect(Math.abs(r.outputs.loss[0] - c.loss) / Math.abs(c.loss)).toBeLessThan(precision === 'f64' ? 1e-12 : 1e-6);
        for (const [name, ref] of Object.entries(c.grads)) {
          const got = r.outputs[`grad:${name}`];
          expect(got).toBeDefined();
          expect(relErr(got, ref)).toBeLessThan(precision === 'f64' ? 1e-10 : TOL);
        }
      });
    }
  }

  for (const [what, which] of [['one pre-LN Transformer block', 'block'], ['an LSTM language model', 'lstm'],
    ['the block with its head tied to the token embedding', 'tied']] as const) for (const precision of ['f64', 'f32'] as const) {
    test(`${what}: loss and every parameter gradient (${precision})`, () => {
      const { g, feeds, state } = modelGraph(which);
      const r = runGraph(g, feeds, state, { precision });
      const bc = TORCH[which];
      expect(Math.abs(r.outputs.loss[0] - bc.loss) / bc.loss).toBeLessThan(precision === 'f64' ? 1e-12 : 1e-6);
      expect(Object.keys(bc.grads).sort()).toEqual(g.outputs.filter((o) => o.name.startsWith('grad:')).map((o) => o.name.slice(5)).sort());
      const scale = Math.max(...Object.values(bc.grads).flatMap((v) => v.map(Math.abs)));
      for (const [name, ref] of Object.entries(bc.grads)) {
        const got = r.outputs[`grad:${name}`];
        // the key bias's gradient is 0 in exact arithmetic (softmax ignores a shift common to a row's scores):
        // PyTorch's reference is rounding noise, so both are held to a small fraction of the largest gradient
        const zero = Math.max(...ref.map(Math.abs)) < 1e-9 * scale;
        const ok = zero ? Math.max(...Array.from(got, Math.abs)) < (precision === 'f64' ? 1e-12 : 1e-6) * scale : relErr(got, ref) < (precision === 'f64' ? 1e-10 : TOL);
        expect([name, ok]).toEqual([name, true]);
      }
    });
  }
});

test('five Adam steps of the Transformer block LM (every pass, fused) follow torch.optim.Adam (CPU interpreter)', async () => {
  const m = adamModule();
  const { losses, state } = await adamSteps(new CpuBackend(m), m);
  expectAdamRun(losses, state);
});

test('a tied weight\'s gradient is the sum of its two uses: the untied model\'s embedding and head gradients at equal values (f64)', () => {
  const tied = modelGraph('tied');
  const r = runGraph(tied.g, tied.feeds, tied.state, { precision: 'f64' });
  // the same numbers through the untied graph: head.weight a copy of tok.weight, the tied case's batch
  const untied = modelGraph('block');
  const state = new Map(tied.state);
  state.set('head.weight', Float64Array.from(tied.state.get('tok.weight')!));
  const u = runGraph(untied.g, tied.feeds, state, { precision: 'f64' });
  expect(r.outputs.loss[0]).toBe(u.outputs.loss[0]);
  const sum = u.outputs['grad:tok.weight'].map((v, i) => v + u.outputs['grad:head.weight'][i]);
  expect(relErr(r.outputs['grad:tok.weight'], Array.from(sum))).toBeLessThan(1e-14);
  // both parts matter: neither use alone is the tied gradient
  for (const part of ['grad:tok.weight', 'grad:head.weight']) expect(relErr(r.outputs['grad:tok.weight'], Array.from(u.outputs[part]))).toBeGreaterThan(1e-2);
  expect(r.outputs['grad:head.weight']).toBeUndefined();
});

test('erfc matches reference values to 1e-12 relative, for both signs and far into the tail', () => {
  // erfc(x) from glibc (Python's math.erfc), correct to an ulp or so
  const ref: [number, number][] = [[0, 1], [0.5, 0.4795001221869535], [1, 0.15729920705028513], [2.4, 0.0006885138966450789],
    [2.6, 0.00023603441652934908], [4, 1.541725790028002e-08], [10, 2.088487583762545e-45], [-1, 1.842700792949715], [-3, 1.9999779095030015]];
  for (const [x, v] of ref) expect(Math.abs(erfc(x) - v) / v).toBeLessThan(1e-12); // 1 − erf cancels up to ~1e-13 just below 2.5
});

test('the embedding gradient is the same bits on every run, summed over tokens in order', () => {
  const c = TORCH.ops.find((x) => x.name === 'embedding')!;
  const runs = [0, 1].map(() => {
    const { g, feeds, state } = opCaseGraph(c);
    return runGraph(g, feeds, state, { precision: 'f32' }).outputs['grad:p0'];
  });
  expect(Buffer.from(runs[0].buffer)).toEqual(Buffer.from(runs[1].buffer));
  // rows of tokens that never occur get exactly 0
  expect(Array.from(runs[0].slice(4 * 4, 5 * 4))).toEqual([0, 0, 0, 0]);
});

describe('bad input: one line naming the place', () => {
  test('heads that do not divide the width', () => {
    const m = model('bad_heads', () => selfAttention(embedding(tokens(4), 10, 6), { heads: 4 }));
    expect(() => traceModel(m, 2)).toThrow(/^selfAttention: 4 heads do not divide the width 6$/);
  });
  test('a token id outside the vocabulary', () => {
    const m = model('lm', () => linear(embedding(tokens(3), 5, 4), 5));
    const g = traceModel(m, 1).graphs.find((x) => x.name === 'eval')!;
    const state = new Map<string, Float32Array>([['embedding0.weight', new Float32Array(20)], ['linear0.weight', new Float32Array(20)], ['linear0.bias', new Float32Array(5)]]);
    expect(() => runGraph(g, { x: Int32Array.from([1, 5, 2]), y: Int32Array.from([0, 0, 0]) }, state))
      .toThrow(/^embedding: token id 5 at position 1 is outside the vocabulary 0\.\.4$/);
  });
});
