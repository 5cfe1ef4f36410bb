// VGG16 for CIFAR-10/100, as SWALP's models/vgg_low.py builds `VGG16LP` (research/seeds.md §3; after the SWA
// repository's CIFAR VGG): 13 3×3 convs with bias and padding 1, each followed by ReLU, in five groups
// [64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512], each group ending in a 2×2 max-pool; no
// BN; then a classifier Dropout(0.5), Linear 512 → 512, ReLU, Dropout(0.5), Linear 512 → 512, ReLU, Linear 512 → classes.
//
// Differences from the reference — read these before comparing results:
// - No quantizers here: SWALP's BlockQuantizer modules (after every conv + ReLU and after the two hidden
//   linear + ReLU) come from `lpc compile --precision 'A=… E=…'`; note lpc places A after every layer (also
//   between conv and ReLU), which is QPyTorch's example placement rather than the SWALP repository's.
// - Parameters are initialised with lpc's defaults (PyTorch's: uniform ±1/√fan_in for weights and biases), not the
//   reference's N(0, √(2/(k²·out))) conv weights with zero conv biases; the DSL has no per-layer init.
// - Inputs: the five max-pools must leave a 1×1 map for the 512-wide classifier, as in the reference, so height
//   and width must be 32…63; 28×28 inputs are refused with an error naming this.
// Parameter names follow the reference's state_dict (features.0, features.3, …, classifier.1, .5, .8).
import { model, input, conv2d, relu, maxPool, flatten, linear, dropout } from 'lpc/dsl';

const cfg: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

export default model('vgg16', (o) => {
  const shape = o.input ?? [3, 32, 32];
  if (shape.length !== 3 || shape[1] < 32 || shape[1] > 63 || shape[2] < 32 || shape[2] > 63)
    throw new Error(`vgg16 needs inputs [C, H, W] with H and W in 32…63 (five 2×2 max-pools must leave a 1×1 map for the 512-wide classifier), got [${shape.join(', ')}]`);
  let h = input(shape);
  let index = 0; // the reference's nn.Sequential index: a conv entry is conv, ReLU, quantizer; 'M' is one max-pool
  for (const v of cfg) {
    if (v === 'M') { h = maxPool(h, 2); index += 1; continue; }
    h = relu(conv2d(h, { out: v, kernel: 3, pad: 1, name: `features.${index}` }));
    index += 3;
  }
  h = relu(linear(dropout(flatten(h), 0.5), 512, { name: 'classifier.1' }));
  h = relu(linear(dropout(h, 0.5), 512, { name: 'classifier.5' }));
  return linear(h, o.classes ?? 10, { name: 'classifier.8' });
});
