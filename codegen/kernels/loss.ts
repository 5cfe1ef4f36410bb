/**
 * Softmax cross-entropy (mean over samples whose label is ≥ 0; label −1 pads a partial batch), its gradient, and
 * the correct-prediction count. Per-sample work runs one invocation per row; the batch-level sum or count is a
 * single invocation that adds the per-row values in order (batches are small, and a fixed order is deterministic).
 * Labels are i32; an index is clamped to K−1 so a bad label cannot read out of bounds.
 */
import { Kernel } from '../kernel.js';
import { NEG_INF, NEG_INF_PARAM, NodeCtx, epilogue, inBuf, makeKernel, outBuf, scratchRef } from './builder.js';

const rowsBuf = (n: number, access: 'read' | 'read_write') => ({ name: 'rowv', ref: scratchRef(0, n * 4), elem: 'f32' as const, access });

/** WGSL: row max `m` and Σexp(z − m) `e` of row t (base = t·K). */
const ROW_SOFTMAX = `
  let base = t * P.k;
  var m = ${NEG_INF};
  for (var j = 0u; j < P.k; j++) { m = max(m, Z[base + j]); }
  var e = 0.0;
  for (var j = 0u; j < P.k; j++) { e += exp(Z[base + j] - m); }`;

export function softmaxXentKernels(c: NodeCtx): Kernel[] {
  const [N, K] = c.inTypes[0].shape;
  const perRow = makeKernel({
    name: 'softmax_xent_rows',
    buffers: [inBuf(c, 0, 'Z'), inBuf(c, 1, 'L'), rowsBuf(N, 'read_write')],
    params: { k: K, ...NEG_INF_PARAM },
    invocations: N,
    body: `
  let lab = L[t];
  if (lab < 0) { rowv[t] = 0.0; return; }${ROW_SOFTMAX}
  rowv[t] = log(e) + m - Z[base + min(u32(lab), P.k - 1u)];`,
  });
  const ep = epilogue(c);
  const mean = makeKernel({
    name: 'softmax_xent_mean',
    buffers: [inBuf(c, 1, 'L'), rowsBuf(N, 'read'), outBuf(c)],
    params: { rows: N },
    invocations: 1,
    epilogue: ep,
    body: `
  var s = 0.0;
  var cnt = 0u;
  for (var i = 0u; i < P.rows; i++) {
    if (L[i] >= 0) { s += rowv[i]; cnt++; }
  }
  out[0] = ${ep.q('select(0.0, s / f32(cnt), cnt > 0u)', '0u')};`,
  });
  return [perRow, mean];
}

export function softmaxXentBwdKernels(c: NodeCtx): Kernel[] {
  const [N, K] = c.inTypes[0].shape;
  const count = makeKernel({
    name: 'label_count',
    buffers: [inBuf(c, 1, 'L'), rowsBuf(1, 'read_write')],
    params: { rows: N },
    invocations: 1,
    body: `
  var cnt = 0u;
  for (var i = 0u; i < P.rows; i++) { if (L[i] >= 0) { cnt++; } }
  rowv[0] = f32(cnt);`,
  });
  const ep = epilogue(c);
  const grad = makeKernel({
    name: 'softmax_xent_bwd',
    buffers: [inBuf(c, 0, 'Z'), inBuf(c, 1, 'L'), inBuf(c, 2, 'D'), rowsBuf(1, 'read'), outBuf(c)],
    params: { k: K, ...NEG_INF_PARAM },
    invocations: N,
    epilogue: ep,
    body: `
  let lab = L[t];
  if (lab < 0) {
    for (var j = 0u; j < P.k; j++) { out[t * P.k + j] = ${ep.q('0.0', 't * P.k + j')}; }
  } else {${ROW_SOFTMAX.replace(/\n/g, '\n  ')}
    let scale = D[0] / rowv[0];
    for (var j = 0u; j < P.k; j++) {
      out[base + j] = ${ep.q('scale * (exp(Z[base + j] - m) / e - select(0.0, 1.0, j == u32(lab)))', 'base + j')};
    }
  }`,
  });
  return [count, grad];
}

export function correctCountKernels(c: NodeCtx): Kernel[] {
  const [N, K] = c.inTypes[0].shape;
  const perRow = makeKernel({
    name: 'correct_rows',
    buffers: [inBuf(c, 0, 'Z'), inBuf(c, 1, 'L'), rowsBuf(N, 'read_write')],
    params: { k: K },
    invocations: N,
    body: `
  let base = t * P.k;
  var best = 0u;
  for (var j = 1u; j < P.k; j++) { if (Z[base + j] > Z[base + best]) { best = j; } }
  let lab = L[t];
  rowv[t] = select(0.0, 1.0, lab >= 0 && best == u32(lab));`,
  });
  const ep = epilogue(c);
  const total = makeKernel({
    name: 'correct_total',
    buffers: [rowsBuf(N, 'read'), outBuf(c)],
    params: { rows: N },
    invocations: 1,
    epilogue: ep,
    body: `
  var s = 0.0;
  for (var i = 0u; i < P.rows; i++) { s += rowv[i]; }
  out[0] = ${ep.q('s', '0u')};`,
  });
  return [perRow, total];
}
