/**
 * Slicing and stacking along one axis, for recurrent models unrolled at compile time (the DSL's lstm): a time step
 * x[:, t] of a sequence, the four gates of an LSTM's pre-activation, and the stack of per-step outputs. A shape
 * splits around the axis into (outer, axis length, inner), all row-major.
 */
import { def } from './epilogue.js';
import { axisSplit, f32, need, str } from './helpers.js';
import { shapeEq } from '../types.js';


/** x[..., start : start + len, ...] along `axis` (torch.narrow). */
def({
  name: 'slice', arity: 1, attrs: { axis: 'int', start: 'int', len: 'int' },
  infer: (t, a) => {
    const s = t[0].shape, ax = a.axis as number, st = a.start as number, len = a.len as number;
    need(Number.isInteger(ax) && ax >= 0 && ax < s.length, `slice: axis ${ax} is outside the ${s.length} axes of ${str(s)}`);
    need(st >= 0 && len >= 1 && st + len <= s[ax], `slice: [${st}, ${st + len}) is outside axis ${ax} of ${str(s)}`);
    return f32(s.map((d, i) => (i === ax ? len : d)));
  },
  cpu: (ins, out, c) => {
    const ax = c.attrs.axis as number, st = c.attrs.start as number, len = c.attrs.len as number;
    const { outer, len: L, inner } = axisSplit(c.inTypes[0].shape, ax);
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < len; j++)
        for (let i = 0; i < inner; i++) out[(o * len + j) * inner + i] = ins[0][(o * L + st + j) * inner + i];
  },
  grad: (g) => [g.add('slice_bwd', [g.dy], { axis: g.attrs.axis, start: g.attrs.start, shape: g.inTypes[0].shape })],
});
/** The slice's gradient: dy placed at [start, start + len) of a zero tensor of the input's shape. */
def({
  name: 'slice_bwd', arity: 1, attrs: { axis: 'int', start: 'int', shape: 'ints' },
  infer: (t, a) => {
    const s = a.shape as number[], ax = a.axis as number, d = t[0].shape;
    need(d.length === s.length && d.every((v, i) => i === ax || v === s[i]) && (a.start as number) + d[ax] <= s[ax],
      `slice_bwd: ${str(d)} does not fit ${str(s)} at ${a.start} along axis ${ax}`);
    return f32(s);
  },
  cpu: (ins, out, c) => {
    const ax = c.attrs.axis as number, st = c.attrs.start as number, len = c.inTypes[0].shape[ax];
    const { outer, len: L, inner } = axisSplit(c.type.shape, ax);
    out.fill(0);
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < len; j++)
        for (let i = 0; i < inner; i++) out[(o * L + st + j) * inner + i] = ins[0][(o * len + j) * inner + i];
  },
  grad: (g) => [g.add('slice', [g.dy], { axis: g.attrs.axis, start: g.attrs.start, len: g.inTypes[0].shape[g.attrs.axis as number] })],
});
/** k tensors of one shape S stacked along a new axis: S with k inserted at `axis` (torch.stack). */
def({
  name: 'stack', arity: [1, 4096], attrs: { axis: 'int' },
  infer: (t, a) => {
    const s = t[0].shape, ax = a.axis as number;
    need(Number.isInteger(ax) && ax >= 0 && ax <= s.length, `stack: axis ${ax} is outside 0..${s.length}`);
    for (const x of t) need(shapeEq(x.shape, s), `stack: shapes differ: ${str(s)} vs ${str(x.shape)}`);
    return f32([...s.slice(0, ax), t.length, ...s.slice(ax)]);
  },
  cpu: (ins, out, c) => {
    const ax = c.attrs.axis as number, { outer, len: k, inner } = axisSplit(c.type.shape, ax);
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < k; j++)
        for (let i = 0; i < inner; i++) out[(o * k + j) * inner + i] = ins[j][o * inner + i];
  },
  grad: (g) => {
    const ax = g.attrs.axis as number, s = g.inTypes[0].shape;
    return g.x.map((_, j) => g.add('reshape', [g.add('slice', [g.dy], { axis: ax, start: j, len: 1 })], { shape: s }));
  },
});
