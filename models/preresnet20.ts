// PreResNet-20 for CIFAR-10/100, as SWALP's models/preresnet_low.py builds `PreResNet20LP` (depth 20 ⇒ n = 3
// BasicBlocks per stage; ported there from bearpaw/pytorch-classification; research/seeds.md §3): a 3×3 stem conv
// 16, three stages of 3 pre-activation BasicBlocks (16, 32, 64 channels; the first block of stages 2 and 3 has
// stride 2), then BN + ReLU, global average pooling (AvgPool2d(8) on 32×32 inputs) and a linear classifier
// 64 → classes. A pre-activation block is BN + ReLU + conv3×3 (stride), BN + ReLU + conv3×3, plus the shortcut, with
// no ReLU after the sum. The shortcut of a downsampling block is a 1×1 conv with stride 2 and no BN, applied to the
// block's input x (not to its pre-activated BN + ReLU output), else the identity. Convolutions have no bias.
//
// Differences from the reference, on purpose:
// - No quantizers here: SWALP's BlockQuantizer modules (after each BN + ReLU and after each conv, incl. the stem)
//   come from `lpc compile --precision 'A=… E=…'`, which places A/E after every layer (see the README).
// - Parameters are initialised with lpc's defaults (PyTorch's: uniform ±1/√fan_in), not the reference's
//   N(0, √(2/(k²·out))) for convs; the DSL has no per-layer init. BN γ=1, β=0 as the reference.
// - The global pool adapts to the input size, so 1×28×28 inputs (`--input 1x28x28`) work too.
// Parameter names follow the reference's state_dict (conv1, layer1.0.bn1, layer2.0.downsample.0, …, bn, fc).
import { model, input, conv2d, batchNorm, relu, add, globalAvgPool, flatten, linear, Tensor } from 'lpc/dsl';

function preActBlock(x: Tensor, planes: number, stride: number, name: string): Tensor {
  let h = conv2d(relu(batchNorm(x, { name: `${name}.bn1` })), { out: planes, kernel: 3, stride, pad: 1, bias: false, name: `${name}.conv1` });
  h = conv2d(relu(batchNorm(h, { name: `${name}.bn2` })), { out: planes, kernel: 3, pad: 1, bias: false, name: `${name}.conv2` });
  const shortcut = stride !== 1 || x.shape[1] !== planes
    ? conv2d(x, { out: planes, kernel: 1, stride, bias: false, name: `${name}.downsample.0` })
    : x;
  return add(h, shortcut);
}

export default model('preresnet20', (o) => {
  const x = input(o.input ?? [3, 32, 32]);
  let h = conv2d(x, { out: 16, kernel: 3, pad: 1, bias: false, name: 'conv1' });
  [16, 32, 64].forEach((planes, s) => {
    for (let i = 0; i < 3; i++) h = preActBlock(h, planes, s > 0 && i === 0 ? 2 : 1, `layer${s + 1}.${i}`);
  });
  h = relu(batchNorm(h, { name: 'bn' }));
  return linear(flatten(globalAvgPool(h)), o.classes ?? 10, { name: 'fc' });
});
