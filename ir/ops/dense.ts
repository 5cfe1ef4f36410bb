/** Dense ops: linear, matmul, and the reductions of their gradients. */
import { def } from './epilogue.js';
import { chanDims, f32, need, str } from './helpers.js';
import type { AttrsOf } from '../op-registry.js';

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const MATMUL = { ta: 'bool', tb: 'bool' } as const;
const ROW = { index: 'int' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    matmul: AttrsOf<typeof MATMUL>;
    row: AttrsOf<typeof ROW>;
  }
}

// ---------- dense ----------
/** y = x·Wᵀ + b, x [N,K], W [O,K], b [O]. */
def({
  name: 'linear', arity: [2, 3], attrs: {},
  infer: (t) => {
    need(t[0].shape.length === 2, `linear expects 2-D input [N, K], got ${str(t[0].shape)}`);
    need(t[1].shape[1] === t[0].shape[1], `linear: input has ${t[0].shape[1]} features but the weight expects ${t[1].shape[1]}`);
    if (t[2]) need(t[2].shape[0] === t[1].shape[0], `linear: bias ${str(t[2].shape)} does not match ${t[1].shape[0]} outputs`);
    return f32([t[0].shape[0], t[1].shape[0]]);
  },
  cpu: (ins, out, c) => {
    const [x, w, b] = ins;
    const [N, K] = c.inTypes[0].shape, O = c.inTypes[1].shape[0];
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        let s = b ? b[o] : 0;
        for (let k = 0; k < K; k++) s += x[n * K + k] * w[o * K + k];
        out[n * O + o] = s;
      }
  },
  grad: (g) => [
    g.add('matmul', [g.dy, g.x[1]], { ta: false, tb: false }),
    g.add('matmul', [g.dy, g.x[0]], { ta: true, tb: false }),
    ...(g.x[2] !== undefined ? [g.add('sum_channel', [g.dy])] : []),
  ],
});
/** C = op(A)·op(B), op = transpose when ta/tb. */
def({
  name: 'matmul', arity: 2, attrs: MATMUL,
  infer: (t, a) => {
    const [m, k1] = a.ta ? [t[0].shape[1], t[0].shape[0]] : t[0].shape;
    const [k2, n] = a.tb ? [t[1].shape[1], t[1].shape[0]] : t[1].shape;
    need(k1 === k2, `matmul inner dimensions differ: ${k1} vs ${k2}`);
    return f32([m, n]);
  },
  cpu: (ins, out, c) => {
    const [A, B] = ins, ta = !!c.attrs.ta, tb = !!c.attrs.tb;
    const [M, N] = c.type.shape, K = ta ? c.inTypes[0].shape[0] : c.inTypes[0].shape[1];
    const lda = c.inTypes[0].shape[1], ldb = c.inTypes[1].shape[1];
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
        out[i * N + j] = s;
      }
  },
});
/** Sum over every axis but 1 (bias gradients of linear [N,O] and conv [N,C,H,W]). */
def({
  name: 'sum_channel', arity: 1, attrs: {},
  infer: (t) => f32([t[0].shape[1]]),
  cpu: (ins, out, c) => {
    const { n, c: C, hw } = chanDims(c.inTypes[0].shape);
    for (let ch = 0; ch < C; ch++) {
      let s = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) s += ins[0][(i * C + ch) * hw + p];
      out[ch] = s;
    }
  },
});

/** Row `index` of a [R, C] value (the rows of bn_bwd_sums are BN's parameter gradients). */
def({
  name: 'row', arity: 1, attrs: ROW,
  infer: (t, a) => {
    const i = a.index;
    need(t[0].shape.length === 2 && i >= 0 && i < t[0].shape[0], `row ${i} of ${str(t[0].shape)}: expected a 2-D value with more than ${i} rows`);
    return f32([t[0].shape[1]]);
  },
  cpu: (ins, out, c) => {
    const C = c.type.shape[0], i = c.attrs.index;
    for (let k = 0; k < C; k++) out[k] = ins[0][i * C + k];
  },
});
