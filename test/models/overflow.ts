import { model, input, avgPool, flatten, linear, relu, uniform } from 'lpc/dsl';

// A tiny classifier that overflows float32 in its first forward pass (test/unit/numerics.test.ts): the hidden layer's
// weights are ±1e20, so |h| reaches ~1e21, and the logits (16 products of ~1e21 × 1e20) are Inf at the last line.
export default model('overflow', (o) => {
  const x = input(o.input ?? [1, 28, 28]);
  const h = relu(linear(flatten(avgPool(x, 4)), 16, { init: uniform(1e20) }));
  return linear(h, o.classes ?? 10, { init: uniform(1e20) });
});
