// LeNet-5 with PEPPP's quantizer placement (../shared/peppp/README.md §2.2), sized for precision sweeps on a CPU
// driver: the `high` precision class on the input and the logits, the `low` class after every layer (conv, ReLU,
// max-pool, linear), forward and backward. Convolutions are initialised as PEPPP's ResNet-18's, N(0, 2/(k·k·out));
// the linear layers keep PyTorch's default. Layers are models/lenet5.ts's (28×28 digits; `--input 3x32x32` and
// `--classes K` for other data).
//
// lpc's own PEPPP meta-training set (class-subset tasks of MNIST and Fashion-MNIST × the 99 configurations of
// `lpc sweep --configs peppp`) trains this model. Without named classes in the spec it is an fp32 LeNet-5.
import { model, input, conv2d, relu, maxPool, flatten, linear, quantize, kaimingNormal, Tensor } from 'lpc/dsl';

const lo = (t: Tensor) => quantize(t, 'low');
const he = kaimingNormal('fan_out');

export default model('peppp_lenet5', (o) => {
  const x = quantize(input(o.input ?? [1, 28, 28]), 'high');
  let h = lo(maxPool(lo(relu(lo(conv2d(x, { out: 6, kernel: 5, pad: 2, init: he })))), 2));
  h = lo(maxPool(lo(relu(lo(conv2d(h, { out: 16, kernel: 5, init: he })))), 2));
  h = lo(relu(lo(linear(flatten(h), 120))));
  h = lo(relu(lo(linear(h, 84))));
  return quantize(linear(h, o.classes ?? 10), 'high');
});
