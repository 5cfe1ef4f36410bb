/** Max and average pooling and their gradients. */
import type { Arr, AttrsOf, CpuCtx } from '../op-registry.js';
import { def } from './epilogue.js';
import { PoolAttrs, f32, poolInfer } from './helpers.js';

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const MAXPOOL = { k: 'int', stride: 'int' } as const;
const AVGPOOL = { k: 'int', stride: 'int' } as const;
const MAXPOOL_BWD = { k: 'int', stride: 'int' } as const;
const AVGPOOL_BWD = { k: 'int', stride: 'int', in_hw: 'ints' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    maxpool: AttrsOf<typeof MAXPOOL>;
    avgpool: AttrsOf<typeof AVGPOOL>;
    maxpool_bwd: AttrsOf<typeof MAXPOOL_BWD>;
    avgpool_bwd: AttrsOf<typeof AVGPOOL_BWD>;
  }
}

/** Max pooling; ties go to the first element in row-major window order (as PyTorch). */
def({
  name: 'maxpool', arity: 1, attrs: MAXPOOL,
  infer: (t, a) => poolInfer(t, a, 'maxPool'),
  cpu: (ins, out, c) => poolCpu(ins[0], out, c, (x, base, W, k) => {
    let m = -Infinity;
    for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) { const v = x[base + ky * W + kx]; if (v > m) m = v; }
    return m;
  }),
  grad: (g) => [g.add('maxpool_bwd', [g.dy, g.x[0]], { k: g.attrs.k, stride: g.attrs.stride })],
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
/** Routes each output gradient to the argmax of its window (first max in row-major order). */
def({
  name: 'maxpool_bwd', arity: 2, attrs: MAXPOOL_BWD,
  infer: (t) => f32(t[1].shape),
  cpu: (ins, out, c) => {
    const [dy, x] = ins;
    const [N, C, H, W] = c.inTypes[1].shape, [, , OH, OW] = c.inTypes[0].shape;
    const k = c.attrs.k, s = c.attrs.stride;
    out.fill(0);
    for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      let best = -1, m = -Infinity;
      for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
        const idx = (nc * H + oy * s + ky) * W + ox * s + kx;
        if (x[idx] > m || best < 0) { m = x[idx]; best = idx; }
      }
      out[best] += dy[(nc * OH + oy) * OW + ox];
    }
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
