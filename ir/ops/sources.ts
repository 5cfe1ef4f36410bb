/** Sources (inputs, state, constants) and views. */
import { def } from './epilogue.js';
import { f32, need, str } from './helpers.js';
import { DType, numel, tensorType } from '../types.js';
import type { AttrsOf } from '../op-registry.js';
import type { Format } from '../format.js';
import { mxPackWords } from '../quant/mx-pack.js';

/** u32 words of a packed state (only MX formats are stored packed). */
function stateWords(f: Format, shape: number[]): number {
  need(f.kind === 'mx', `state: only MX formats are stored packed, got ${f.kind}`);
  return mxPackWords(f as Extract<Format, { kind: 'mx' }>, shape).words;
}

// attribute schemas: def() types each op's rules with its schema, OpAttrs (ir/op-registry.ts) every reader's
const INPUT = { name: 'string', kind: 'string', shape: 'ints', dtype: 'string', beta: 'float' } as const;
const STATE = { name: 'string', kind: 'string', shape: 'ints', init: 'string', bound: 'float', std: 'float', packed: 'format' } as const;
const FILL = { shape: 'ints', value: 'float' } as const;
const RESHAPE = { shape: 'ints' } as const;
declare module '../op-registry.js' {
  interface OpAttrs {
    input: AttrsOf<typeof INPUT, 'beta'>; state: AttrsOf<typeof STATE, 'bound' | 'std' | 'packed'>; fill: AttrsOf<typeof FILL>;
    reshape: AttrsOf<typeof RESHAPE>;
  }
}

// ---------- sources ----------
def({
  // kind 'bias_correction' / 'bias_correction_sqrt' with `beta`: computed by the runtime from the step (ir/step-inputs.ts)
  name: 'input', arity: 0, attrs: INPUT, optional: ['beta'],
  infer: (_t, a) => tensorType(a.shape, a.dtype as DType),
  cpu: () => { throw new Error('input is fed by the runtime'); },
});
/**
 * Persistent state: parameters, buffers (BN running stats), optimizer state. Initialised by the runtime from `init`.
 * `packed` (an MX format; passes/pack-state.ts): the runtime holds the values of `shape` as packed MX words (the
 * value is those u32 words; format_decompress reads it), and converts at its boundary (runtime/packed-state.ts).
 */
def({
  name: 'state', arity: 0, attrs: STATE, optional: ['bound', 'std', 'packed'],
  infer: (_t, a) => (a.packed ? tensorType([stateWords(a.packed, a.shape)], 'u32') : f32(a.shape)),
  cpu: () => { throw new Error('state is held by the runtime'); },
});
def({
  name: 'fill', arity: 0, attrs: FILL,
  infer: (_t, a) => f32(a.shape),
  cpu: (_i, out, c) => out.fill(c.attrs.value),
});

// ---------- reshape ----------
def({
  name: 'reshape', arity: 1, attrs: RESHAPE,
  infer: (t, a) => {
    const s = a.shape;
    need(numel(s) === numel(t[0].shape), `cannot reshape ${str(t[0].shape)} to ${str(s)}`);
    return tensorType(s, t[0].dtype, t[0].fmt);
  },
  cpu: (ins, out) => out.set(ins[0]),
  grad: (g) => [g.add('reshape', [g.dy], { shape: g.inTypes[0].shape })],
});
