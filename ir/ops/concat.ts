/**
 * Joining along one axis: concat (DenseNet's torch.cat(features, 1)); its gradient is a slice per input (the error
 * of each input is its part of the output's error; `slice` is in slicing.ts).
 */
import type { TensorType } from '../types.js';
import { MAX_CONCAT_INPUTS, axisSplit, f32, int, need, str } from './helpers.js';
import { def } from './epilogue.js';


export { MAX_CONCAT_INPUTS };

def({
  name: 'concat', arity: [1, MAX_CONCAT_INPUTS], attrs: { axis: 'int' },
  infer: (t: TensorType[], a) => {
    const axis = int(a, 'axis'), s0 = t[0].shape;
    need(Number.isInteger(axis) && axis >= 1 && axis < s0.length, `concat: axis ${axis} must be between 1 and ${s0.length - 1} for ${str(s0)} (axis 0 is the batch)`);
    t.forEach((x, i) => need(x.shape.length === s0.length && x.shape.every((d, j) => j === axis || d === s0[j]),
      `concat along axis ${axis}: input ${i} ${str(x.shape)} does not match input 0 ${str(s0)} outside that axis`));
    const shape = [...s0];
    shape[axis] = t.reduce((s, x) => s + x.shape[axis], 0);
    return f32(shape);
  },
  cpu: (ins, out, c) => {
    const axis = int(c.attrs, 'axis'), { outer, len: total, inner } = axisSplit(c.type.shape, axis);
    let off = 0;
    ins.forEach((x, i) => {
      const len = c.inTypes[i].shape[axis];
      for (let o = 0; o < outer; o++) for (let j = 0; j < len * inner; j++) out[(o * total + off) * inner + j] = x[o * len * inner + j];
      off += len;
    });
  },
  grad: (g) => {
    const axis = int(g.attrs, 'axis');
    let start = 0;
    return g.x.map((_, i) => {
      const len = g.inTypes[i].shape[axis];
      const id = g.add('slice', [g.dy], { axis, start, len });
      start += len;
      return id;
    });
  },
});

