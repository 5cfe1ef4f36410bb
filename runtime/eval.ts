/**
 * Evaluation of given weights (`lpc eval`): the artifact's `eval` graph — in its precision (quantizers on, as
 * `lpc run` evaluates after every epoch) or in full precision (quantizers removed as in SWALP's SWA evaluation,
 * passes/swa.ts withoutQuantizers) — with the logits read back too, for per-class accuracy and the confusion matrix.
 * Loss and accuracy are summed exactly as the training loop's evaluation does (runtime/train/train.ts evaluate), so
 * the same weights give the same figures as a run's epoch record.
 */
import { Module, getGraph } from '../ir/graph.js';
import { withoutQuantizers } from '../passes/swa.js';
import type { Backend } from './backend.js';
import type { StepBits } from '../ir/quant/rng.js';
import { Dataset, evalBatches } from './data/index.js';

/** A module of one graph, `eval` (full precision with `fp32`), that also outputs `logits` (the loss's input). */
export function evalModule(m: Module, fp32: boolean): Module {
  const g0 = getGraph(m, 'eval');
  const g = fp32 ? withoutQuantizers(g0) : g0;
  const xent = g.nodes.find((n) => n.op === 'softmax_xent');
  if (!xent) throw new Error(`the artifact's eval graph has no softmax_xent (no loss to evaluate)`);
  return { ...m, graphs: [{ ...g, outputs: [...g.outputs.filter((o) => o.name !== 'logits'), { name: 'logits', node: xent.inputs[0] }] }] };
}

export interface EvalResult {
  test_loss: number;
  test_accuracy: number;
  samples: number;
  classes: number;
  /** Per true class: samples, correctly classified, accuracy (null when the class has no samples). */
  per_class: { class: number; samples: number; correct: number; accuracy: number | null }[];
  /** confusion[true][predicted] (prediction = the first largest logit, as the correct_count op; a column per output). */
  confusion: number[][];
}

/** `outputs`: the model's logits width (≥ the data's classes; a column of the confusion matrix each). */
export async function evaluateDetailed(b: Backend, data: Dataset, batch: number, outputs: number, bits?: StepBits): Promise<EvalResult> {
  let loss = 0, correct = 0, n = 0;
  const K = data.classes;
  const confusion = Array.from({ length: K }, () => new Array<number>(Math.max(K, outputs)).fill(0));
  for (const { x, y, valid } of evalBatches(data, batch)) {
    const o = await b.run('eval', { x, y }, { seed: 0, step: 0, ...(bits ? { bits } : {}) }, ['loss', 'correct', 'logits']);
    loss += o.loss[0] * valid;
    correct += o.correct[0];
    n += valid;
    // a sequence set: each sample is T rows of logits against its T targets
    const per = data.tokens ? data.shape[0] : 1, width = o.logits.length / (batch * per);
    for (let i = 0; i < valid * per; i++) {
      let best = 0;
      for (let k = 1; k < width; k++) if (o.logits[i * width + k] > o.logits[i * width + best]) best = k;
      confusion[y[i]][best]++;
    }
  }
  const per_class = confusion.map((row, c) => {
    const samples = row.reduce((a, v) => a + v, 0);
    return { class: c, samples, correct: row[c], accuracy: samples ? row[c] / samples : null };
  });
  return { test_loss: loss / n, test_accuracy: correct / (n * (data.tokens ? data.shape[0] : 1)), samples: n, classes: K, per_class, confusion };
}

/** The confusion matrix with per-class accuracy as a text table (rows: true class; columns: predicted). */
export function confusionText(r: EvalResult): string {
  const w = Math.max(4, ...r.confusion.flat().map((v) => String(v).length)) + 1;
  const cell = (s: string | number) => String(s).padStart(w);
  const lines = [`${'true\\pred'.padEnd(10)}${r.confusion[0].map((_, k) => cell(k)).join('')}  accuracy`];
  r.confusion.forEach((row, c) => {
    const a = r.per_class[c].accuracy;
    lines.push(`${String(c).padEnd(10)}${row.map(cell).join('')}  ${a === null ? '   —' : `${(100 * a).toFixed(2)}%`.padStart(7)}`);
  });
  return lines.join('\n');
}
