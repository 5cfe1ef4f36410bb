/** Loss and metrics: softmax cross-entropy, its gradient, the correct count. */
import { def } from './epilogue.js';
import { f32, need, str } from './helpers.js';
import { TensorType } from '../types.js';

// ---------- loss and metrics ----------
function xentInfer(t: TensorType[]): void {
  need(t[0].shape.length === 2, `crossEntropy expects logits [N, classes], got ${str(t[0].shape)}`);
  need(t[1].dtype === 'i32' && t[1].shape.length === 1 && t[1].shape[0] === t[0].shape[0],
    `crossEntropy expects i32 labels [${t[0].shape[0]}], got ${t[1].dtype} ${str(t[1].shape)}`);
}
/** Mean softmax cross-entropy over the samples whose label is ≥ 0 (label −1 pads a partial batch). */
def({
  name: 'softmax_xent', arity: 2, attrs: {},
  infer: (t) => { xentInfer(t); return f32([1]); },
  cpu: (ins, out, c) => {
    const [z, lab] = ins, [N, K] = c.inTypes[0].shape;
    let s = 0, cnt = 0;
    for (let n = 0; n < N; n++) {
      if (lab[n] < 0) continue;
      let m = -Infinity;
      for (let k = 0; k < K; k++) m = Math.max(m, z[n * K + k]);
      let e = 0;
      for (let k = 0; k < K; k++) e += Math.exp(z[n * K + k] - m);
      s += Math.log(e) + m - z[n * K + lab[n]];
      cnt++;
    }
    out[0] = cnt ? s / cnt : 0;
  },
  grad: (g) => [g.add('softmax_xent_bwd', [g.x[0], g.x[1], g.dy]), null],
});
def({
  name: 'softmax_xent_bwd', arity: 3, attrs: {},
  infer: (t) => f32(t[0].shape),
  cpu: (ins, out, c) => {
    const [z, lab, d] = ins, [N, K] = c.inTypes[0].shape;
    let cnt = 0;
    for (let n = 0; n < N; n++) if (lab[n] >= 0) cnt++;
    for (let n = 0; n < N; n++) {
      if (lab[n] < 0) { for (let k = 0; k < K; k++) out[n * K + k] = 0; continue; }
      let m = -Infinity;
      for (let k = 0; k < K; k++) m = Math.max(m, z[n * K + k]);
      let e = 0;
      for (let k = 0; k < K; k++) e += Math.exp(z[n * K + k] - m);
      for (let k = 0; k < K; k++) out[n * K + k] = (d[0] / cnt) * (Math.exp(z[n * K + k] - m) / e - (k === lab[n] ? 1 : 0));
    }
  },
});
/** Number of samples whose argmax (first max) equals the label. */
def({
  name: 'correct_count', arity: 2, attrs: {},
  infer: (t) => { xentInfer(t); return f32([1]); },
  cpu: (ins, out, c) => {
    const [z, lab] = ins, [N, K] = c.inTypes[0].shape;
    let cnt = 0;
    for (let n = 0; n < N; n++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (z[n * K + k] > z[n * K + best]) best = k;
      if (lab[n] >= 0 && best === lab[n]) cnt++;
    }
    out[0] = cnt;
  },
});
