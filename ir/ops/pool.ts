/** Max and average pooling, adaptive average pooling, and their gradients. */
import type { Arr, AttrsOf, CpuCtx } from '../op-registry.js';
import { def } from './epilogue.js';
import { PoolAttrs, f32, need, poolInfer, poolPad, str } from './helpers.js';

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const MAXPOOL = { k: 'int', stride: 'int', pad: 'int' } as const;
const AVGPOOL = { k: 'int', stride: 'int' } as const;
const MAXPOOL_BWD = { k: 'int', stride: 'int', pad: 'int' } as const;
const AVGPOOL_BWD = { k: 'int', stride: 'int', in_hw: 'ints' } as const;
const ADAPTIVE_AVGPOOL = { out_hw: 'ints' } as const;
const ADAPTIVE_AVGPOOL_BWD = { in_hw: 'ints' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    maxpool: AttrsOf<typeof MAXPOOL, 'pad'>;
    avgpool: AttrsOf<typeof AVGPOOL>;
    maxpool_bwd: AttrsOf<typeof MAXPOOL_BWD, 'pad'>;
    avgpool_bwd: AttrsOf<typeof AVGPOOL_BWD>;
    adaptive_avgpool: AttrsOf<typeof ADAPTIVE_AVGPOOL>;
    adaptive_avgpool_bwd: AttrsOf<typeof ADAPTIVE_AVGPOOL_BWD>;
  }
}

/**
 * Max pooling; ties go to the first element in row-major window order (as PyTorch). `pad` (absent = 0) pads with
 * −∞ (torch.nn.MaxPool2d(padding=…)): padded positions never win, and every window holds an input element.
 */
def({
  name: 'maxpool', arity: 1, attrs: MAXPOOL, optional: ['pad'],
  infer: (t, a) => poolInfer(t, a, 'maxPool'),
  cpu: (ins, out, c) => {
    const x = ins[0];
    forWindows(c, c.inTypes[0].shape, c.type.shape, (nc, oy, ox, win) => {
      let m = -Infinity;
      win((idx) => { if (x[idx] > m) m = x[idx]; });
      out[(nc * c.type.shape[2] + oy) * c.type.shape[3] + ox] = m;
    });
  },
  grad: (g) => [g.add('maxpool_bwd', [g.dy, g.x[0]], { k: g.attrs.k, stride: g.attrs.stride, ...(poolPad(g.attrs) ? { pad: g.attrs.pad } : {}) })],
});
def({
  name: 'avgpool', arity: 1, attrs: AVGPOOL,
  infer: (t, a) => poolInfer(t, a, 'avgPool'),
  cpu: (ins, out, c) => poolCpu(ins[0], out, c, (x, base, W, k) => {
    let s = 0;
    for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) s += x[base + ky * W + kx];
    return s / (k * k);
  }),
  grad: (g) => [g.add('avgpool_bwd', [g.dy], { k: g.attrs.k, stride: g.attrs.stride, in_hw: g.inTypes[0].shape.slice(2) })],
});
function poolCpu(x: Arr, out: Arr, c: CpuCtx<PoolAttrs>, win: (x: Arr, base: number, W: number, k: number) => number): void {
  const [N, C, H, W] = c.inTypes[0].shape, [, , OH, OW] = c.type.shape;
  const k = c.attrs.k, s = c.attrs.stride;
  for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++)
    out[(nc * OH + oy) * OW + ox] = win(x, (nc * H + oy * s) * W + ox * s, W, k);
}
/** Every window of a (padded) pooling in (nc, oy, ox) order; `win(f)` visits its in-bounds input indices row-major. */
function forWindows(c: CpuCtx<PoolAttrs>, xs: readonly number[], ys: readonly number[],
  f: (nc: number, oy: number, ox: number, win: (visit: (idx: number) => void) => void) => void): void {
  const [N, C, H, W] = xs, [, , OH, OW] = ys;
  const { k, stride: s } = c.attrs, p = poolPad(c.attrs);
  for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    f(nc, oy, ox, (visit) => {
      for (let ky = 0; ky < k; ky++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < k; kx++) {
          const ix = ox * s - p + kx;
          if (ix >= 0 && ix < W) visit((nc * H + iy) * W + ix);
        }
      }
    });
  }
}
/** Routes each output gradient to the argmax of its window (first max in row-major order among in-bounds elements). */
def({
  name: 'maxpool_bwd', arity: 2, attrs: MAXPOOL_BWD, optional: ['pad'],
  infer: (t) => f32(t[1].shape),
  cpu: (ins, out, c) => {
    const [dy, x] = ins, [, , OH, OW] = c.inTypes[0].shape;
    out.fill(0);
    forWindows(c, c.inTypes[1].shape, c.inTypes[0].shape, (nc, oy, ox, win) => {
      let best = -1, m = -Infinity;
      win((idx) => { if (x[idx] > m || best < 0) { m = x[idx]; best = idx; } });
      out[best] += dy[(nc * OH + oy) * OW + ox];
    });
  },
});
def({
  name: 'avgpool_bwd', arity: 1, attrs: AVGPOOL_BWD,
  infer: (t, a) => f32([t[0].shape[0], t[0].shape[1], ...a.in_hw]),
  cpu: (ins, out, c) => {
    const [N, C, H, W] = c.type.shape, [, , OH, OW] = c.inTypes[0].shape;
    const k = c.attrs.k, s = c.attrs.stride;
    out.fill(0);
    for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const d = ins[0][(nc * OH + oy) * OW + ox] / (k * k);
      for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) out[(nc * H + oy * s + ky) * W + ox * s + kx] += d;
    }
  },
});

// ---------- adaptive average pooling ----------
/** torch.nn.AdaptiveAvgPool2d's window of output row i of `out` rows over `len` input rows: [start, end). */
export function adaptiveWindow(i: number, len: number, out: number): [number, number] {
  return [Math.floor((i * len) / out), Math.ceil(((i + 1) * len) / out)];
}
/** Average over adaptive windows to an out_hw = [OH, OW] map (any input size ≥ the output's), as AdaptiveAvgPool2d. */
def({
  name: 'adaptive_avgpool', arity: 1, attrs: ADAPTIVE_AVGPOOL,
  infer: (t, a) => {
    const x = t[0].shape, [oh, ow] = a.out_hw;
    need(x.length === 4, `adaptiveAvgPool expects 4-D input [N, C, H, W], got ${str(x)}`);
    need(oh >= 1 && ow >= 1 && oh <= x[2] && ow <= x[3], `adaptiveAvgPool: output ${oh}×${ow} is larger than the input ${x[2]}×${x[3]}`);
    return f32([x[0], x[1], oh, ow]);
  },
  cpu: (ins, out, c) => {
    const [N, C, H, W] = c.inTypes[0].shape, [, , OH, OW] = c.type.shape;
    for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const [y0, y1] = adaptiveWindow(oy, H, OH), [x0, x1] = adaptiveWindow(ox, W, OW);
      let s = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += ins[0][(nc * H + y) * W + x];
      out[(nc * OH + oy) * OW + ox] = s / ((y1 - y0) * (x1 - x0));
    }
  },
  grad: (g) => [g.add('adaptive_avgpool_bwd', [g.dy], { in_hw: g.inTypes[0].shape.slice(2) })],
});
/** Each input element gathers dy/|window| of the windows holding it, in (oy, ox) order. */
def({
  name: 'adaptive_avgpool_bwd', arity: 1, attrs: ADAPTIVE_AVGPOOL_BWD,
  infer: (t, a) => f32([t[0].shape[0], t[0].shape[1], ...a.in_hw]),
  cpu: (ins, out, c) => {
    const [N, C, H, W] = c.type.shape, [, , OH, OW] = c.inTypes[0].shape;
    out.fill(0);
    for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const [y0, y1] = adaptiveWindow(oy, H, OH), [x0, x1] = adaptiveWindow(ox, W, OW);
      const d = ins[0][(nc * OH + oy) * OW + ox] / ((y1 - y0) * (x1 - x0));
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out[(nc * H + y) * W + x] += d;
    }
  },
});
