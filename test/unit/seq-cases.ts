/**
 * The PyTorch references of the sequence ops (test/fixtures/seq/torch-grads.json, written by gen_torch_grads.py beside
 * it) as lpc graphs: each op case as the one-op training graph of test/unit/autodiff.test.ts (loss: cross-entropy of
 * the flattened output against class 0), and the one-block pre-LN decoder traced from the DSL. Shared by the CPU
 * (test/unit/seq-grads.test.ts) and WebGPU (test/webgpu/seq.test.ts) suites.
 */
import * as fs from 'node:fs';
import { Attrs, Builder, Graph, Module, emptyGraph } from '../../ir/graph.js';
import { numel } from '../../ir/types.js';
import { relErr } from './helpers.js';
import { autodiff } from '../../passes/autodiff.js';
import { runPasses } from '../../passes/pipeline.js';
import { initState } from '../../runtime/train/init.js';
import type { Backend } from '../../runtime/backend.js';
import { traceModel } from '../../dsl/frontend.js';
import { model, tokens, positions, embedding, add, layerNorm, selfAttention, linear, gelu, scope, lstm } from '../../dsl/index.js';

interface Arr { shape: number[]; data: number[] }
export interface OpCase {
  name: string; attrs: Attrs; params: Record<string, Arr>; ids?: Arr;
  out_shape: number[]; out: number[]; loss: number; grads: Record<string, number[]>;
}
export interface BlockCase {
  dims: { B: number; T: number; V: number; D: number; H: number };
  x: number[]; y: number[]; params: Record<string, Arr>; loss: number; grads: Record<string, number[]>;
}
export interface AdamRun { lr: number; x: number[][]; y: number[][]; losses: number[]; final: Record<string, number[]> }
export const TORCH: { torch: string; ops: OpCase[]; block: BlockCase; lstm: BlockCase; adam: AdamRun; tied: BlockCase } =
  JSON.parse(fs.readFileSync('test/fixtures/seq/torch-grads.json', 'utf8'));

const OP_OF: Record<string, string> = { softmax_causal: 'softmax' };
const opName = (c: OpCase) => OP_OF[c.name] ?? c.name.replace(/_ta\d_tb\d$/, '');

/** The case's training graph (autodiffed), its feeds by input name and its state. */
export function opCaseGraph(c: OpCase): { g: Graph; feeds: Record<string, Int32Array>; state: Map<string, Float64Array>; out: number } {
  const g = emptyGraph('train');
  const b = new Builder(g);
  const ins: number[] = [];
  const feeds: Record<string, Int32Array> = { y: new Int32Array([0]) };
  if (c.ids) {
    ins.push(b.add('input', [], { name: 'ids', kind: 'label', shape: c.ids.shape, dtype: 'i32' }));
    feeds.ids = Int32Array.from(c.ids.data);
  }
  const state = new Map<string, Float64Array>();
  for (const [name, p] of Object.entries(c.params)) {
    ins.push(b.add('state', [], { name, kind: 'param', shape: p.shape, init: 'zeros' }));
    state.set(name, Float64Array.from(p.data));
  }
  const out = b.add(opName(c), ins, c.attrs);
  const flat = b.add('reshape', [out], { shape: [1, numel(b.type(out).shape)] });
  const lab = b.add('input', [], { name: 'y', kind: 'label', shape: [1], dtype: 'i32' });
  g.outputs.push({ name: 'loss', node: b.add('softmax_xent', [flat, lab]) }, { name: 'out', node: out });
  const m: Module = { version: 1, name: c.name, graphs: [g] };
  return { g: autodiff(m).graphs[0], feeds, state, out };
}

/** One pre-LN decoder block (models/transformer-lm.ts's layout with one layer), named as the fixture's parameters;
 *  `tied`: the head's weight is the token embedding's (models/blocks/lm.ts's tied option). */
export function blockModel(d: BlockCase['dims'], tied = false) {
  return model(tied ? 'tied_block_lm' : 'block_lm', () => {
    const x = tokens(d.T);
    const tok = embedding(x, d.V, d.D, { name: 'tok' });
    let h = add(tok, embedding(positions(x), d.T, d.D, { name: 'pos' }));
    h = scope('h0', () => {
      const a = add(h, selfAttention(layerNorm(h), { heads: d.H }));
      return add(a, linear(gelu(linear(layerNorm(a), 4 * d.D)), d.D));
    });
    return linear(layerNorm(h, { name: 'ln_f' }), d.V, { name: 'head', ...(tied ? { tiedTo: tok } : {}) });
  });
}

/** The LSTM language model of the fixture: embedding `tok`, lstm `rnn`, linear `head`. */
export function lstmModel(d: BlockCase['dims']) {
  return model('lstm_lm', () => linear(lstm(embedding(tokens(d.T), d.V, d.D, { name: 'tok' }), d.H, { name: 'rnn' }), d.V, { name: 'head' }));
}

/** A model case's training graph (autodiffed), feeds and state from the fixture: the Transformer block (untied or
 *  tied) or the LSTM. */
export function modelGraph(which: 'block' | 'lstm' | 'tied'): { g: Graph; feeds: Record<string, Int32Array>; state: Map<string, Float64Array> } {
  const bc = TORCH[which];
  const def = which === 'lstm' ? lstmModel(bc.dims) : blockModel(bc.dims, which === 'tied');
  const m = autodiff(traceModel(def, bc.dims.B));
  const state = new Map(Object.entries(bc.params).map(([k, p]) => [k, Float64Array.from(p.data)]));
  return { g: m.graphs.find((x) => x.name === 'train')!, feeds: { x: Int32Array.from(bc.x), y: Int32Array.from(bc.y) }, state };
}
export const blockGraph = () => modelGraph('block');

/** The block LM compiled with torch.optim.Adam's semantics (lr of the fixture's run), every pass and fusion. */
export function adamModule(): Module {
  const d = TORCH.block.dims;
  return runPasses(traceModel(blockModel(d), d.B), { batch: d.B, optimizer: { kind: 'adam', lr: TORCH.adam.lr, betas: [0.9, 0.999], eps: 1e-8, wd: 0 }, log: () => {} });
}
/** The fixture's five Adam steps on backend `b` (built for adamModule's module m): the losses and the final state. */
export async function adamSteps(b: Backend, m: Module): Promise<{ losses: number[]; state: Map<string, Float32Array> }> {
  const st = initState(m, 0);
  for (const [k, p] of Object.entries(TORCH.block.params)) st.set(k, Float32Array.from(p.data));
  await b.setState(st);
  const losses: number[] = [];
  for (let s = 0; s < TORCH.adam.x.length; s++) {
    const o = await b.run('train', { x: Int32Array.from(TORCH.adam.x[s]), y: Int32Array.from(TORCH.adam.y[s]), lr: Float32Array.of(TORCH.adam.lr) }, { seed: 0, step: s }, ['loss']);
    losses.push(o.loss[0]);
  }
  return { losses, state: await b.getState() };
}

/** Five Adam steps against PyTorch's, from the same parameters and batches: each step's loss and every final
 *  parameter within 1e-4. Not the key bias: its gradient is rounding noise around 0 (see above), which Adam's
 *  normalisation g/√v turns into steps of ±lr in directions no two implementations share. */
export function expectAdamRun(losses: number[], state: Map<string, Float32Array>): void {
  losses.forEach((l, s) => expect([s, Math.abs(l - TORCH.adam.losses[s]) / TORCH.adam.losses[s] < 1e-4]).toEqual([s, true]));
  for (const [name, ref] of Object.entries(TORCH.adam.final)) {
    if (name === 'h0.attn0.k.bias') continue;
    expect([name, relErr(state.get(name)!, ref) < 1e-4]).toEqual([name, true]);
  }
}

