/** 2-D convolution and its two gradients. Layouts are PyTorch's: activations NCHW, weights [O,C,KH,KW]. */
import { def } from './epilogue.js';
import { convOutSize, f32, need, str } from './helpers.js';
import type { AttrsOf } from '../op-registry.js';

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const CONV2D = { stride: 'int', pad: 'int' } as const;
const CONV2D_BWD_DATA = { stride: 'int', pad: 'int', in_hw: 'ints' } as const;
const CONV2D_BWD_WEIGHT = { stride: 'int', pad: 'int', k_hw: 'ints' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    conv2d: AttrsOf<typeof CONV2D>;
    conv2d_bwd_data: AttrsOf<typeof CONV2D_BWD_DATA>;
    conv2d_bwd_weight: AttrsOf<typeof CONV2D_BWD_WEIGHT>;
  }
}

// ---------- convolution ----------
def({
  name: 'conv2d', arity: [2, 3], attrs: CONV2D,
  infer: (t, a) => {
    const [x, w, b] = t;
    need(x.shape.length === 4, `conv2d expects 4-D input [N, C, H, W], got ${str(x.shape)}`);
    need(w.shape[1] === x.shape[1], `conv2d: input has ${x.shape[1]} channels but the weight expects ${w.shape[1]}`);
    if (b) need(b.shape[0] === w.shape[0], `conv2d: bias ${str(b.shape)} does not match ${w.shape[0]} output channels`);
    const oh = convOutSize(x.shape[2], w.shape[2], a.stride, a.pad);
    const ow = convOutSize(x.shape[3], w.shape[3], a.stride, a.pad);
    need(oh > 0 && ow > 0, `conv2d: kernel ${w.shape[2]}×${w.shape[3]} is larger than the padded input ${x.shape[2]}×${x.shape[3]}`);
    return f32([x.shape[0], w.shape[0], oh, ow]);
  },
  cpu: (ins, out, c) => {
    const [x, w, b] = ins;
    const [N, C, H, W] = c.inTypes[0].shape, [O, , KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.type.shape;
    const s = c.attrs.stride, p = c.attrs.pad;
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      let acc = b ? b[o] : 0;
      for (let ci = 0; ci < C; ci++) for (let ky = 0; ky < KH; ky++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < KW; kx++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          acc += x[((n * C + ci) * H + iy) * W + ix] * w[((o * C + ci) * KH + ky) * KW + kx];
        }
      }
      out[((n * O + o) * OH + oy) * OW + ox] = acc;
    }
  },
  grad: (g) => [
    g.add('conv2d_bwd_data', [g.dy, g.x[1]], { stride: g.attrs.stride, pad: g.attrs.pad, in_hw: g.inTypes[0].shape.slice(2) }),
    g.add('conv2d_bwd_weight', [g.dy, g.x[0]], { stride: g.attrs.stride, pad: g.attrs.pad, k_hw: g.inTypes[1].shape.slice(2) }),
    ...(g.x[2] !== undefined ? [g.add('sum_channel', [g.dy])] : []),
  ],
});
/** dx[n,c,iy,ix] = Σ_{o,ky,kx} dy[n,o,oy,ox]·w[o,c,ky,kx] where iy = oy·s − p + ky. */
def({
  name: 'conv2d_bwd_data', arity: 2, attrs: CONV2D_BWD_DATA,
  infer: (t, a) => f32([t[0].shape[0], t[1].shape[1], ...a.in_hw]),
  cpu: (ins, out, c) => {
    const [dy, w] = ins;
    const [N, C, H, W] = c.type.shape, [O, , KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.inTypes[0].shape;
    const s = c.attrs.stride, p = c.attrs.pad;
    out.fill(0);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const d = dy[((n * O + o) * OH + oy) * OW + ox];
      for (let ci = 0; ci < C; ci++) for (let ky = 0; ky < KH; ky++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < KW; kx++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          out[((n * C + ci) * H + iy) * W + ix] += d * w[((o * C + ci) * KH + ky) * KW + kx];
        }
      }
    }
  },
});
/** dw[o,c,ky,kx] = Σ_{n,oy,ox} dy[n,o,oy,ox]·x[n,c,oy·s−p+ky,ox·s−p+kx]. */
def({
  name: 'conv2d_bwd_weight', arity: 2, attrs: CONV2D_BWD_WEIGHT,
  infer: (t, a) => f32([t[0].shape[1], t[1].shape[1], ...a.k_hw]),
  cpu: (ins, out, c) => {
    const [dy, x] = ins;
    const [N, C, H, W] = c.inTypes[1].shape, [O, , KH, KW] = c.type.shape, [, , OH, OW] = c.inTypes[0].shape;
    const s = c.attrs.stride, p = c.attrs.pad;
    for (let o = 0; o < O; o++) for (let ci = 0; ci < C; ci++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      let acc = 0;
      for (let n = 0; n < N; n++) for (let oy = 0; oy < OH; oy++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let ox = 0; ox < OW; ox++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          acc += dy[((n * O + o) * OH + oy) * OW + ox] * x[((n * C + ci) * H + iy) * W + ix];
        }
      }
      out[((o * C + ci) * KH + ky) * KW + kx] = acc;
    }
  },
});
