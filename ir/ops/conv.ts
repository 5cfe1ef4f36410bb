/**
 * 2-D convolution and its two gradients. Layouts are PyTorch's: activations NCHW, weights [O,C/groups,KH,KW].
 * `groups` (absent = 1, so dense graphs keep their text) splits input and output channels into that many groups,
 * output channel o reading only the input channels of its group g = o / (O/groups), as torch.nn.Conv2d(groups=…);
 * groups = C is the depthwise convolution.
 */
import type { Attrs } from '../graph.js';
import { def } from './epilogue.js';
import { convOutSize, f32, need, str } from './helpers.js';
import type { AttrsOf } from '../op-registry.js';

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const CONV2D = { stride: 'int', pad: 'int', groups: 'int' } as const;
const CONV2D_BWD_DATA = { stride: 'int', pad: 'int', in_hw: 'ints', groups: 'int' } as const;
const CONV2D_BWD_WEIGHT = { stride: 'int', pad: 'int', k_hw: 'ints', groups: 'int' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    conv2d: AttrsOf<typeof CONV2D, 'groups'>;
    conv2d_bwd_data: AttrsOf<typeof CONV2D_BWD_DATA, 'groups'>;
    conv2d_bwd_weight: AttrsOf<typeof CONV2D_BWD_WEIGHT, 'groups'>;
  }
}

/** A convolution's groups (1 when the attribute is absent). */
export const convGroups = (a: { groups?: number } | Attrs) => (a.groups as number | undefined) ?? 1;
/** The gradient ops carry `groups` only when it is not 1. */
const groupsAttr = (a: { groups?: number } | Attrs): Attrs => (convGroups(a) === 1 ? {} : { groups: convGroups(a) });

// ---------- convolution ----------
def({
  name: 'conv2d', arity: [2, 3], attrs: CONV2D, optional: ['groups'],
  infer: (t, a) => {
    const [x, w, b] = t, G = convGroups(a);
    need(x.shape.length === 4, `conv2d expects 4-D input [N, C, H, W], got ${str(x.shape)}`);
    need(Number.isInteger(G) && G >= 1 && x.shape[1] % G === 0 && w.shape[0] % G === 0,
      `conv2d: groups ${G} must divide the ${x.shape[1]} input and ${w.shape[0]} output channels`);
    need(w.shape[1] * G === x.shape[1], `conv2d: input has ${x.shape[1]} channels but the weight expects ${w.shape[1] * G}${G > 1 ? ` (${w.shape[1]} per group × ${G} groups)` : ''}`);
    if (b) need(b.shape[0] === w.shape[0], `conv2d: bias ${str(b.shape)} does not match ${w.shape[0]} output channels`);
    const oh = convOutSize(x.shape[2], w.shape[2], a.stride, a.pad);
    const ow = convOutSize(x.shape[3], w.shape[3], a.stride, a.pad);
    need(oh > 0 && ow > 0, `conv2d: kernel ${w.shape[2]}×${w.shape[3]} is larger than the padded input ${x.shape[2]}×${x.shape[3]}`);
    return f32([x.shape[0], w.shape[0], oh, ow]);
  },
  cpu: (ins, out, c) => {
    const [x, w, b] = ins;
    const [N, C, H, W] = c.inTypes[0].shape, [O, Cg, KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.type.shape;
    const s = c.attrs.stride, p = c.attrs.pad, Og = O / convGroups(c.attrs);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      let acc = b ? b[o] : 0;
      const c0 = Math.floor(o / Og) * Cg;
      for (let cl = 0; cl < Cg; cl++) for (let ky = 0; ky < KH; ky++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < KW; kx++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          acc += x[((n * C + c0 + cl) * H + iy) * W + ix] * w[((o * Cg + cl) * KH + ky) * KW + kx];
        }
      }
      out[((n * O + o) * OH + oy) * OW + ox] = acc;
    }
  },
  grad: (g) => [
    g.add('conv2d_bwd_data', [g.dy, g.x[1]], { stride: g.attrs.stride, pad: g.attrs.pad, in_hw: g.inTypes[0].shape.slice(2), ...groupsAttr(g.attrs) }),
    g.add('conv2d_bwd_weight', [g.dy, g.x[0]], { stride: g.attrs.stride, pad: g.attrs.pad, k_hw: g.inTypes[1].shape.slice(2), ...groupsAttr(g.attrs) }),
    ...(g.x[2] !== undefined ? [g.add('sum_channel', [g.dy])] : []),
  ],
});
/** dx[n,c,iy,ix] = Σ_{o in c's group,ky,kx} dy[n,o,oy,ox]·w[o,c mod Cg,ky,kx] where iy = oy·s − p + ky. */
def({
  name: 'conv2d_bwd_data', arity: 2, attrs: CONV2D_BWD_DATA, optional: ['groups'],
  infer: (t, a) => f32([t[0].shape[0], t[1].shape[1] * convGroups(a), ...a.in_hw]),
  cpu: (ins, out, c) => {
    const [dy, w] = ins;
    const [N, C, H, W] = c.type.shape, [O, Cg, KH, KW] = c.inTypes[1].shape, [, , OH, OW] = c.inTypes[0].shape;
    const s = c.attrs.stride, p = c.attrs.pad, Og = O / convGroups(c.attrs);
    out.fill(0);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const d = dy[((n * O + o) * OH + oy) * OW + ox];
      const c0 = Math.floor(o / Og) * Cg;
      for (let cl = 0; cl < Cg; cl++) for (let ky = 0; ky < KH; ky++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < KW; kx++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          out[((n * C + c0 + cl) * H + iy) * W + ix] += d * w[((o * Cg + cl) * KH + ky) * KW + kx];
        }
      }
    }
  },
});
/** dw[o,c,ky,kx] = Σ_{n,oy,ox} dy[n,o,oy,ox]·x[n,g·Cg+c,oy·s−p+ky,ox·s−p+kx] (g: o's group, Cg channels per group). */
def({
  name: 'conv2d_bwd_weight', arity: 2, attrs: CONV2D_BWD_WEIGHT, optional: ['groups'],
  infer: (t, a) => f32([t[0].shape[1], t[1].shape[1] / convGroups(a), ...a.k_hw]),
  cpu: (ins, out, c) => {
    const [dy, x] = ins;
    const [N, C, H, W] = c.inTypes[1].shape, [O, Cg, KH, KW] = c.type.shape, [, , OH, OW] = c.inTypes[0].shape;
    const s = c.attrs.stride, p = c.attrs.pad, Og = O / convGroups(c.attrs);
    for (let o = 0; o < O; o++) for (let cl = 0; cl < Cg; cl++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      let acc = 0;
      const ci = Math.floor(o / Og) * Cg + cl;
      for (let n = 0; n < N; n++) for (let oy = 0; oy < OH; oy++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let ox = 0; ox < OW; ox++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= W) continue;
          acc += dy[((n * O + o) * OH + oy) * OW + ox] * x[((n * C + ci) * H + iy) * W + ix];
        }
      }
      out[((o * Cg + cl) * KH + ky) * KW + kx] = acc;
    }
  },
});
