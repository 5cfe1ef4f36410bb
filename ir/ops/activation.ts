/**
 * Smooth activations of the sequence models: tanh and sigmoid (elementwise: the fusion pass may fold them as
 * post-ops) and GELU in PyTorch's exact form x·Φ(x) = ½·x·erfc(−x/√2). GELU is not elementwise in the op table's
 * sense: WGSL has no erf, so its kernel declares one (codegen/kernels/activation.ts) and a post-op spelling could not.
 * The CPU evaluates erfc to double precision here; the kernel's f32 erfc agrees to ~1e-7 relative.
 */
import { def } from './epilogue.js';
import { defEw } from './elementwise.js';
import { f32, need, str } from './helpers.js';
import { shapeEq } from '../types.js';

/** erfc(x) to ~1e-15 relative: the Maclaurin series of erf for |x| < 2.5, Lentz's continued fraction beyond. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const z = Math.abs(x);
  let r: number;
  if (z < 2.5) {
    // erf(z) = 2/√π Σ (−1)^n z^(2n+1) / (n!(2n+1)); terms fall below 1e-17 of the sum by n ≈ 60 at z = 2.5
    let term = z, sum = z;
    for (let n = 1; n < 100; n++) {
      term *= -z * z / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    r = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(z) = e^(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), modified Lentz
    const tiny = 1e-300;
    let f = z, c = z, d = 0;
    for (let n = 1; n < 200; n++) {
      const a = n / 2;
      d = z + a * d; d = Math.abs(d) < tiny ? tiny : d; d = 1 / d;
      c = z + a / c; c = Math.abs(c) < tiny ? tiny : c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  }
  return x >= 0 ? r : 2 - r;
}

const SQRT1_2 = Math.SQRT1_2, INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
/** GELU: x·Φ(x) with Φ(x) = ½·erfc(−x/√2) (torch.nn.functional.gelu, approximate='none'). */
export const gelu = (x: number) => 0.5 * x * erfc(-x * SQRT1_2);
/** GELU′(x) = Φ(x) + x·φ(x). */
export const geluGrad = (x: number) => 0.5 * erfc(-x * SQRT1_2) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);

def({
  name: 'gelu', arity: 1, attrs: {},
  infer: (t) => f32(t[0].shape),
  cpu: (ins, out) => { for (let i = 0; i < out.length; i++) out[i] = gelu(ins[0][i]); },
  grad: (g) => [g.add('gelu_bwd', [g.dy, g.x[0]])],
});
/** dx = dy·GELU′(x). */
def({
  name: 'gelu_bwd', arity: 2, attrs: {},
  infer: (t) => {
    need(shapeEq(t[0].shape, t[1].shape), `gelu_bwd: shape mismatch ${str(t[0].shape)} vs ${str(t[1].shape)}`);
    return f32(t[0].shape);
  },
  cpu: (ins, out) => { for (let i = 0; i < out.length; i++) out[i] = ins[0][i] * geluGrad(ins[1][i]); },
});

// tanh and sigmoid: elementwise; their gradients read the output y (as relu_bwd does), so the input may fold them
defEw('tanh', 1, { cpu: ([a]) => Math.tanh(a) }, (g) => [g.add('tanh_bwd', [g.dy, g.y])]);
defEw('tanh_bwd', 2, { cpu: ([d, y]) => d * (1 - y * y) });
defEw('sigmoid', 1, { cpu: ([a]) => 1 / (1 + Math.exp(-a)) }, (g) => [g.add('sigmoid_bwd', [g.dy, g.y])]);
defEw('sigmoid_bwd', 2, { cpu: ([d, y]) => d * y * (1 - y) });
