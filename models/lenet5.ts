// LeNet-5 for 28×28 digits (the classic layout with ReLU and max-pooling), as in the PyTorch reference recipe.
// `lpc compile --input 3x32x32 --classes 100` gives the same layers for other inputs and class counts.
import { model, input, conv2d, relu, maxPool, flatten, linear } from 'lpc/dsl';

export default model('lenet5', (o) => {
  const x = input(o.input ?? [1, 28, 28]);
  let h = maxPool(relu(conv2d(x, { out: 6, kernel: 5, pad: 2 })), 2);
  h = maxPool(relu(conv2d(h, { out: 16, kernel: 5 })), 2);
  h = relu(linear(flatten(h), 120));
  h = relu(linear(h, 84));
  return linear(h, o.classes ?? 10);
});
