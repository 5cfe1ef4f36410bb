/**
 * Ops of the sequence models (issue 29): token embedding, layer norm, softmax along the last axis (optionally with a
 * causal mask), axis permutation and batched matmul between activations. Layouts are PyTorch's: tokens [B, T] i32,
 * embedding weight [V, D], activations [..., D], attention scores [B, H, T, T].
 */
import { def } from './epilogue.js';
import { f32, need, str } from './helpers.js';
import { numel, shapeEq, tensorType } from '../types.js';

const last = (s: readonly number[]) => s[s.length - 1];

// ---------- embedding ----------
/** out[..., d] = W[ids[...], d]: ids i32 [...], W [V, D]. An id outside [0, V) is refused (runtime data is checked
 *  before it reaches a device; the kernel clamps it so it cannot read out of bounds). */
def({
  name: 'embedding', arity: 2, attrs: {},
  infer: (t) => {
    need(t[0].dtype === 'i32', `embedding expects i32 token ids, got ${t[0].dtype} ${str(t[0].shape)}`);
    need(t[1].shape.length === 2, `embedding expects a weight [vocab, dim], got ${str(t[1].shape)}`);
    return f32([...t[0].shape, t[1].shape[1]]);
  },
  cpu: (ins, out, c) => {
    const [ids, w] = ins, [V, D] = c.inTypes[1].shape;
    for (let n = 0; n < ids.length; n++) {
      const id = ids[n];
      if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`embedding: token id ${id} at position ${n} is outside the vocabulary 0..${V - 1}`);
      for (let d = 0; d < D; d++) out[n * D + d] = w[id * D + d];
    }
  },
  grad: (g) => [null, g.add('embedding_bwd', [g.dy, g.x[0]], { vocab: g.inTypes[1].shape[0] })],
});
/**
 * The embedding weight's gradient, a scatter-add made deterministic: dW[v, d] = Σ over tokens n in order with
 * ids[n] = v of dy[n, d], accumulated in the output's precision (f32 storage: each addition rounded to f32), so the
 * CPU and the kernel (one invocation per (v, d) looping over the tokens in order) give the same bits, every run.
 */
def({
  name: 'embedding_bwd', arity: 2, attrs: { vocab: 'int' },
  infer: (t, a) => {
    need(t[1].dtype === 'i32', `embedding_bwd expects i32 token ids, got ${t[1].dtype}`);
    need(shapeEq(t[0].shape.slice(0, -1), t[1].shape), `embedding_bwd: error ${str(t[0].shape)} does not match ids ${str(t[1].shape)}`);
    return f32([a.vocab as number, last(t[0].shape)]);
  },
  cpu: (ins, out, c) => {
    const [dy, ids] = ins, [V, D] = c.type.shape;
    const round = out instanceof Float32Array ? Math.fround : (v: number) => v;
    const acc = new Float64Array(V * D);
    for (let n = 0; n < ids.length; n++) {
      const id = ids[n];
      if (id < 0 || id >= V) continue;
      for (let d = 0; d < D; d++) acc[id * D + d] = round(acc[id * D + d] + dy[n * D + d]);
    }
    out.set(acc);
  },
});

/** Each token's position in its row, i32 [N, T] = t (the ids of learned position embeddings). */
def({
  name: 'positions', arity: 0, attrs: { shape: 'ints' },
  infer: (_t, a) => {
    const s = a.shape as number[];
    need(s.length === 2, `positions: shape ${str(s)} is not [N, T]`);
    return tensorType(s, 'i32');
  },
  cpu: (_i, out, c) => { const T = c.type.shape[1]; for (let i = 0; i < out.length; i++) out[i] = i % T; },
});

// ---------- layer norm ----------
/** Per-row statistics of x [..., D] over the last axis: [rows, 2] = (mean, 1/√(var + eps)), biased variance. */
function rowStats(x: ArrayLike<number>, rows: number, D: number, eps: number, out: { mean: Float64Array; inv: Float64Array }): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += x[r * D + d];
    const m = s / D;
    let v = 0;
    for (let d = 0; d < D; d++) { const e = x[r * D + d] - m; v += e * e; }
    out.mean[r] = m;
    out.inv[r] = 1 / Math.sqrt(v / D + eps);
  }
}
function lnInfer(t: { shape: number[] }[], what: string): number {
  const D = last(t[0].shape);
  need(t[0].shape.length >= 2, `${what} expects [..., features], got ${str(t[0].shape)}`);
  return D;
}
/** y = (x − mean)·rsqrt(var + eps)·γ + β over the last axis (torch.nn.LayerNorm(D), eps 1e-5). */
def({
  name: 'layernorm', arity: 3, attrs: { eps: 'float' },
  infer: (t) => {
    const D = lnInfer(t, 'layerNorm');
    need(t[1].shape.length === 1 && t[1].shape[0] === D && t[2].shape.length === 1 && t[2].shape[0] === D,
      `layerNorm: parameters ${str(t[1].shape)}, ${str(t[2].shape)} do not match ${D} features`);
    return f32(t[0].shape);
  },
  cpu: (ins, out, c) => {
    const [x, ga, be] = ins, D = last(c.type.shape), rows = numel(c.type.shape) / D;
    const st = { mean: new Float64Array(rows), inv: new Float64Array(rows) };
    rowStats(x, rows, D, c.attrs.eps as number, st);
    for (let r = 0; r < rows; r++)
      for (let d = 0; d < D; d++) out[r * D + d] = (x[r * D + d] - st.mean[r]) * st.inv[r] * ga[d] + be[d];
  },
  // The backward ops share one statistics node (the forward's, recomputed once for backward).
  grad: (g) => {
    const stats = g.add('layernorm_stats', [g.x[0]], { eps: g.attrs.eps });
    const sums = g.add('layernorm_bwd_params', [g.dy, g.x[0], stats]);
    return [g.add('layernorm_bwd_x', [g.dy, g.x[0], stats, g.x[1]]), g.add('row', [sums], { index: 0 }), g.add('row', [sums], { index: 1 })];
  },
});
/** [rows, 2]: each row's mean and 1/√(var + eps). */
def({
  name: 'layernorm_stats', arity: 1, attrs: { eps: 'float' },
  infer: (t) => { const D = lnInfer(t, 'layernorm_stats'); return f32([numel(t[0].shape) / D, 2]); },
  cpu: (ins, out, c) => {
    const D = last(c.inTypes[0].shape), rows = c.type.shape[0];
    const st = { mean: new Float64Array(rows), inv: new Float64Array(rows) };
    rowStats(ins[0], rows, D, c.attrs.eps as number, st);
    for (let r = 0; r < rows; r++) { out[2 * r] = st.mean[r]; out[2 * r + 1] = st.inv[r]; }
  },
});
function statsShape(t: { shape: number[] }[], i: number): void {
  const D = last(t[1].shape), rows = numel(t[1].shape) / D;
  need(shapeEq(t[i].shape, [rows, 2]), `layer norm statistics ${str(t[i].shape)} are not [${rows}, 2]`);
}
/** dx = inv·(g − mean(g) − x̂·mean(g·x̂)) per row, g = dy·γ, x̂ = (x − mean)·inv. */
def({
  name: 'layernorm_bwd_x', arity: 4, attrs: {},
  infer: (t) => { statsShape(t, 2); return f32(t[1].shape); },
  cpu: (ins, out, c) => {
    const [dy, x, st, ga] = ins, D = last(c.type.shape), rows = numel(c.type.shape) / D;
    for (let r = 0; r < rows; r++) {
      const m = st[2 * r], inv = st[2 * r + 1];
      let sg = 0, sgx = 0;
      for (let d = 0; d < D; d++) { const gv = dy[r * D + d] * ga[d]; sg += gv; sgx += gv * (x[r * D + d] - m) * inv; }
      sg /= D; sgx /= D;
      for (let d = 0; d < D; d++) {
        const k = r * D + d;
        out[k] = inv * (dy[k] * ga[d] - sg - (x[k] - m) * inv * sgx);
      }
    }
  },
});
/** [2, D]: row 0 Σ_rows dy·x̂ (= dγ), row 1 Σ_rows dy (= dβ), summed over rows in order. */
def({
  name: 'layernorm_bwd_params', arity: 3, attrs: {},
  infer: (t) => { statsShape(t, 2); return f32([2, last(t[1].shape)]); },
  cpu: (ins, out, c) => {
    const [dy, x, st] = ins, D = c.type.shape[1], rows = numel(c.inTypes[1].shape) / D;
    for (let d = 0; d < D; d++) {
      let sx = 0, s = 0;
      for (let r = 0; r < rows; r++) { const k = r * D + d; sx += dy[k] * (x[k] - st[2 * r]) * st[2 * r + 1]; s += dy[k]; }
      out[d] = sx;
      out[D + d] = s;
    }
  },
});

// ---------- softmax ----------
/**
 * Softmax over the last axis, max-subtracted (numerically stable). `causal`: x is [..., T, T] and row i sees columns
 * j ≤ i only (the others are 0: a −∞ mask before the softmax), as a decoder's attention.
 */
def({
  name: 'softmax', arity: 1, attrs: { causal: 'bool' },
  infer: (t, a) => {
    const s = t[0].shape;
    need(s.length >= 1, 'softmax expects at least one axis');
    if (a.causal) need(s.length >= 2 && s[s.length - 2] === last(s), `a causal softmax expects scores [..., T, T], got ${str(s)}`);
    return f32(s);
  },
  cpu: (ins, out, c) => {
    const s = c.type.shape, K = last(s), rows = numel(s) / K, T = s.length >= 2 ? s[s.length - 2] : 1, causal = !!c.attrs.causal;
    const x = ins[0];
    for (let r = 0; r < rows; r++) {
      const n = causal ? (r % T) + 1 : K, b = r * K;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, x[b + j]);
      let e = 0;
      for (let j = 0; j < n; j++) e += Math.exp(x[b + j] - m);
      for (let j = 0; j < K; j++) out[b + j] = j < n ? Math.exp(x[b + j] - m) / e : 0;
    }
  },
  grad: (g) => [g.add('softmax_bwd', [g.dy, g.y])],
});
/** dx = y·(dy − Σ_j dy·y) per row (masked entries have y = 0, so their gradient is 0). */
def({
  name: 'softmax_bwd', arity: 2, attrs: {},
  infer: (t) => {
    need(shapeEq(t[0].shape, t[1].shape), `softmax_bwd: shape mismatch ${str(t[0].shape)} vs ${str(t[1].shape)}`);
    return f32(t[0].shape);
  },
  cpu: (ins, out, c) => {
    const [dy, y] = ins, K = last(c.type.shape), rows = numel(c.type.shape) / K;
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < K; j++) s += dy[r * K + j] * y[r * K + j];
      for (let j = 0; j < K; j++) out[r * K + j] = y[r * K + j] * (dy[r * K + j] - s);
    }
  },
});

// ---------- permute ----------
/** Strides of a row-major shape. */
export function strides(s: readonly number[]): number[] {
  const r = new Array<number>(s.length);
  let k = 1;
  for (let i = s.length - 1; i >= 0; i--) { r[i] = k; k *= s[i]; }
  return r;
}
/** out axis k is input axis perm[k] (torch.permute); at most 6 axes. */
def({
  name: 'permute', arity: 1, attrs: { perm: 'ints' },
  infer: (t, a) => {
    const p = a.perm as number[], s = t[0].shape;
    need(p.length === s.length && [...p].sort((x, y) => x - y).every((v, i) => v === i),
      `permute: [${p.join(', ')}] is not a permutation of the ${s.length} axes of ${str(s)}`);
    need(s.length <= 6, `permute supports at most 6 axes, got ${s.length}`);
    return { ...t[0], shape: p.map((i) => s[i]) };
  },
  cpu: (ins, out, c) => {
    const p = c.attrs.perm as number[], os = c.type.shape, is = strides(c.inTypes[0].shape);
    const src = p.map((a) => is[a]), idx = new Array<number>(os.length).fill(0);
    for (let o = 0; o < out.length; o++) {
      let s = 0;
      for (let k = 0; k < os.length; k++) s += idx[k] * src[k];
      out[o] = ins[0][s];
      for (let k = os.length - 1; k >= 0; k--) { if (++idx[k] < os[k]) break; idx[k] = 0; }
    }
  },
  grad: (g) => {
    const p = g.attrs.perm as number[], inv = new Array<number>(p.length);
    p.forEach((a, k) => { inv[a] = k; });
    return [g.add('permute', [g.dy], { perm: inv })];
  },
});

// ---------- batched matmul ----------
/** The [M, N, K] of C = op(A)·op(B) over the last two axes; the leading (batch) axes of A and B must be equal. */
export function bmmDims(a: readonly number[], b: readonly number[], ta: boolean, tb: boolean): { batch: number[]; M: number; N: number; K: number } {
  need(a.length >= 2 && a.length === b.length, `matmul expects operands with the same number (≥ 2) of axes, got ${str([...a])} and ${str([...b])}`);
  need(shapeEq(a.slice(0, -2), b.slice(0, -2)), `matmul: batch axes differ: ${str([...a])} vs ${str([...b])}`);
  const [ar, ac] = a.slice(-2), [br, bc] = b.slice(-2);
  const [M, K1] = ta ? [ac, ar] : [ar, ac], [K2, N] = tb ? [bc, br] : [br, bc];
  need(K1 === K2, `matmul inner dimensions differ: ${str([...a])}${ta ? 'ᵀ' : ''} · ${str([...b])}${tb ? 'ᵀ' : ''} (${K1} vs ${K2})`);
  return { batch: a.slice(0, -2), M, N, K: K1 };
}
/** C[b] = op(A[b])·op(B[b]) for every batch index b (torch.matmul with equal batch axes; op = transpose of the last two). */
def({
  name: 'batch_matmul', arity: 2, attrs: { ta: 'bool', tb: 'bool' },
  infer: (t, a) => { const d = bmmDims(t[0].shape, t[1].shape, !!a.ta, !!a.tb); return f32([...d.batch, d.M, d.N]); },
  cpu: (ins, out, c) => {
    const ta = !!c.attrs.ta, tb = !!c.attrs.tb, { batch, M, N, K } = bmmDims(c.inTypes[0].shape, c.inTypes[1].shape, ta, tb);
    const [A, B] = ins, nb = numel(batch);
    for (let q = 0; q < nb; q++) {
      const a0 = q * M * K, b0 = q * K * N, c0 = q * M * N;
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += A[a0 + (ta ? k * M + i : i * K + k)] * B[b0 + (tb ? j * K + k : k * N + j)];
          out[c0 + i * N + j] = s;
        }
    }
  },
  // C = op_a(A)·op_b(B): dA = dC·op_b(B)ᵀ (transposed back when ta), dB = op_a(A)ᵀ·dC (likewise when tb)
  grad: (g) => {
    const ta = !!g.attrs.ta, tb = !!g.attrs.tb, [A, B] = g.x, dC = g.dy;
    const dA = ta ? g.add('batch_matmul', [B, dC], { ta: tb, tb: true }) : g.add('batch_matmul', [dC, B], { ta: false, tb: !tb });
    const dB = tb ? g.add('batch_matmul', [dC, A], { ta: true, tb: ta }) : g.add('batch_matmul', [A, dC], { ta: !ta, tb: false });
    return [dA, dB];
  },
});
