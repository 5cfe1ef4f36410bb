/** Sources (inputs, state, constants) and views. */
import { def } from './epilogue.js';
import { f32, need, str } from './helpers.js';
import { numel, tensorType } from '../types.js';

// ---------- sources ----------
def({
  // kind 'bias_correction' / 'bias_correction_sqrt' with `beta`: computed by the runtime from the step (ir/step-inputs.ts)
  name: 'input', arity: 0, attrs: { name: 'string', kind: 'string', shape: 'ints', dtype: 'string', beta: 'float' }, optional: ['beta'],
  infer: (_t, a) => tensorType(a.shape as number[], a.dtype as 'f32' | 'i32'),
  cpu: () => { throw new Error('input is fed by the runtime'); },
});
/** Persistent state: parameters, buffers (BN running stats), optimizer state. Initialised by the runtime from `init`. */
def({
  name: 'state', arity: 0, attrs: { name: 'string', kind: 'string', shape: 'ints', init: 'string', bound: 'float', std: 'float' },
  optional: ['bound', 'std'],
  infer: (_t, a) => f32(a.shape as number[]),
  cpu: () => { throw new Error('state is held by the runtime'); },
});
def({
  name: 'fill', arity: 0, attrs: { shape: 'ints', value: 'float' },
  infer: (_t, a) => f32(a.shape as number[]),
  cpu: (_i, out, c) => out.fill(c.attrs.value as number),
});

// ---------- reshape ----------
def({
  name: 'reshape', arity: 1, attrs: { shape: 'ints' },
  infer: (t, a) => {
    const s = a.shape as number[];
    need(numel(s) === numel(t[0].shape), `cannot reshape ${str(t[0].shape)} to ${str(s)}`);
    return tensorType(s, t[0].dtype, t[0].fmt);
  },
  cpu: (ins, out) => out.set(ins[0]),
  grad: (g) => [g.add('reshape', [g.dy], { shape: g.inTypes[0].shape })],
});
