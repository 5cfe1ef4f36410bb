/** Batch normalization: statistics, apply, the backward sums and input gradients, the running update. */
import { def } from './epilogue.js';
import { chanDims, f32, need, str } from './helpers.js';
import type { AttrsOf } from '../op-registry.js';

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const BN_APPLY = { eps: 'float', training: 'bool' } as const;
const BN_BWD_SUMS = { eps: 'float' } as const;
const BN_BWD_X = { eps: 'float' } as const;
const BN_BWD_X_EVAL = { eps: 'float' } as const;
const BN_RUNNING_UPDATE = { momentum: 'float', count: 'int' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    bn_apply: AttrsOf<typeof BN_APPLY>;
    bn_bwd_sums: AttrsOf<typeof BN_BWD_SUMS>;
    bn_bwd_x: AttrsOf<typeof BN_BWD_X>;
    bn_bwd_x_eval: AttrsOf<typeof BN_BWD_X_EVAL>;
    bn_running_update: AttrsOf<typeof BN_RUNNING_UPDATE>;
  }
}

// ---------- batch norm ----------
/** Per-channel batch mean and biased variance: [2, C] (row 0 mean, row 1 var). Not differentiated: bn_apply's
 *  x-gradient already includes the path through the statistics. */
def({
  name: 'bn_stats', arity: 1, attrs: {},
  infer: (t) => {
    need(t[0].shape.length === 4 || t[0].shape.length === 2, `batchNorm expects [N, C, H, W] or [N, C], got ${str(t[0].shape)}`);
    return f32([2, t[0].shape[1]]);
  },
  cpu: (ins, out, c) => {
    const { n, c: C, hw } = chanDims(c.inTypes[0].shape);
    const x = ins[0], cnt = n * hw;
    for (let ch = 0; ch < C; ch++) {
      let s = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) s += x[(i * C + ch) * hw + p];
      const mean = s / cnt;
      let v = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) { const d = x[(i * C + ch) * hw + p] - mean; v += d * d; }
      out[ch] = mean;
      out[C + ch] = v / cnt;
    }
  },
});
/** y = (x − mean)·rsqrt(var + eps)·γ + β, with stats [2,C] from bn_stats (training) or the running state (eval). */
def({
  name: 'bn_apply', arity: 4, attrs: BN_APPLY,
  infer: (t) => {
    const C = t[0].shape[1];
    need(t[1].shape[1] === C && t[2].shape[0] === C && t[3].shape[0] === C, `batchNorm: parameters do not match ${C} channels`);
    return f32(t[0].shape);
  },
  cpu: (ins, out, c) => {
    const [x, st, ga, be] = ins;
    const { n, c: C, hw } = chanDims(c.inTypes[0].shape), eps = c.attrs.eps;
    for (let ch = 0; ch < C; ch++) {
      const inv = 1 / Math.sqrt(st[C + ch] + eps), m = st[ch];
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) {
        const k = (i * C + ch) * hw + p;
        out[k] = (x[k] - m) * inv * ga[ch] + be[ch];
      }
    }
  },
  // One per-channel reduction of dy serves all three gradients: dβ = Σdy and dγ = Σdy·x̂ are its rows, and the
  // training-mode dx reads both.
  grad: (g) => {
    const sums = g.add('bn_bwd_sums', [g.dy, g.x[0], g.x[1]], { eps: g.attrs.eps });
    return [
      g.attrs.training
        ? g.add('bn_bwd_x', [g.dy, g.x[0], g.x[1], g.x[2], sums], { eps: g.attrs.eps })
        : g.add('bn_bwd_x_eval', [g.dy, g.x[1], g.x[2]], { eps: g.attrs.eps }),
      null,
      g.add('row', [sums], { index: 1 }),
      g.add('row', [sums], { index: 0 }),
    ];
  },
});
/** BN backward's per-channel sums, [2, C]: row 0 Σdy (= dβ), row 1 Σdy·x̂ with x̂ = (x − mean)·inv (= dγ). */
def({
  name: 'bn_bwd_sums', arity: 3, attrs: BN_BWD_SUMS,
  infer: (t) => f32([2, t[1].shape[1]]),
  cpu: (ins, out, c) => {
    const [dy, x, st] = ins;
    const { n, c: C, hw } = chanDims(c.inTypes[1].shape), eps = c.attrs.eps;
    for (let ch = 0; ch < C; ch++) {
      const inv = 1 / Math.sqrt(st[C + ch] + eps), m = st[ch];
      let sd = 0, sdx = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) {
        const k = (i * C + ch) * hw + p;
        sd += dy[k];
        sdx += dy[k] * (x[k] - m) * inv;
      }
      out[ch] = sd;
      out[C + ch] = sdx;
    }
  },
});
/** Training-mode input gradient from bn_bwd_sums' S: dx = γ·inv/M · (M·dy − S₀ − x̂·S₁). */
def({
  name: 'bn_bwd_x', arity: 5, attrs: BN_BWD_X,
  infer: (t) => {
    need(t[4].shape.length === 2 && t[4].shape[0] === 2 && t[4].shape[1] === t[1].shape[1], `bn_bwd_x: sums ${str(t[4].shape)} are not [2, ${t[1].shape[1]}]`);
    return f32(t[1].shape);
  },
  cpu: (ins, out, c) => {
    const [dy, x, st, ga, S] = ins;
    const { n, c: C, hw } = chanDims(c.inTypes[1].shape), eps = c.attrs.eps, M = n * hw;
    for (let ch = 0; ch < C; ch++) {
      const inv = 1 / Math.sqrt(st[C + ch] + eps), m = st[ch];
      for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) {
        const k = (i * C + ch) * hw + p;
        out[k] = (ga[ch] * inv / M) * (M * dy[k] - S[ch] - (x[k] - m) * inv * S[C + ch]);
      }
    }
  },
});
/** Eval-mode input gradient (statistics are constants): dx = dy·γ·inv. */
def({
  name: 'bn_bwd_x_eval', arity: 3, attrs: BN_BWD_X_EVAL,
  infer: (t) => f32(t[0].shape),
  cpu: (ins, out, c) => {
    const [dy, st, ga] = ins;
    const { n, c: C, hw } = chanDims(c.inTypes[0].shape), eps = c.attrs.eps;
    for (let i = 0; i < n; i++) for (let ch = 0; ch < C; ch++) for (let p = 0; p < hw; p++) {
      const k = (i * C + ch) * hw + p;
      out[k] = dy[k] * ga[ch] / Math.sqrt(st[C + ch] + eps);
    }
  },
});
/** PyTorch's running-statistics update: r ← (1−m)·r + m·batch, with the unbiased variance (count/(count−1)). */
def({
  name: 'bn_running_update', arity: 2, attrs: BN_RUNNING_UPDATE,
  infer: (t) => f32(t[0].shape),
  cpu: (ins, out, c) => {
    const [r, st] = ins, m = c.attrs.momentum, cnt = c.attrs.count, C = c.type.shape[1];
    for (let ch = 0; ch < C; ch++) {
      out[ch] = (1 - m) * r[ch] + m * st[ch];
      out[C + ch] = (1 - m) * r[C + ch] + m * st[C + ch] * (cnt / Math.max(cnt - 1, 1));
    }
  },
});
