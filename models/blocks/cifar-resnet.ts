// The CIFAR ResNet of He et al. 2016 in CPT's layout (cpt_cifar/models.py; research/seeds.md §2.3), shared by
// resnet20.ts, resnet38.ts and resnet74.ts: a 3×3 stem conv 16 + BN + ReLU, three stages of n BasicBlocks (16, 32, 64
// channels; the first block of stages 2 and 3 has stride 2), global average pooling (AvgPool2d(8) on 32×32 inputs)
// and a linear classifier 64 → classes. A BasicBlock is conv3×3 + BN + ReLU, conv3×3 + BN, plus the shortcut, then
// ReLU. Convolutions have no bias. The shortcut of a downsampling block is a 1×1 conv with stride 2 + BN (CPT's
// `downsample` QConv2d followed by the block's bn3; option B), else the identity.
//
// Differences from the reference, on purpose:
// - Parameters are initialised with lpc's defaults (PyTorch's: uniform ±1/√fan_in), not the reference's
//   N(0, √(2/(k²·out))) for convs and N(0, √(2/(in·out))) for the classifier.
// - CPT constructs a bn3 in every block but uses it only on downsampling blocks; the unused ones are left out, so
//   PyTorch's sum(p.numel()) is larger by 2·channels per identity-shortcut block.
// - The global pool adapts to the input size, so 1×28×28 inputs (`--input 1x28x28`) work too (7×7 final map).
// Parameter names follow the reference's state_dict (conv1, bn1, group1_layer0.conv1, …, fc).
import { input, conv2d, batchNorm, relu, add, globalAvgPool, flatten, linear, Tensor, ModelOptions } from 'lpc/dsl';

export function basicBlock(x: Tensor, planes: number, stride: number, name: string): Tensor {
  let h = relu(batchNorm(conv2d(x, { out: planes, kernel: 3, stride, pad: 1, bias: false, name: `${name}.conv1` }), { name: `${name}.bn1` }));
  h = batchNorm(conv2d(h, { out: planes, kernel: 3, pad: 1, bias: false, name: `${name}.conv2` }), { name: `${name}.bn2` });
  const shortcut = stride !== 1 || x.shape[1] !== planes
    ? batchNorm(conv2d(x, { out: planes, kernel: 1, stride, bias: false, name: `${name}.downsample` }), { name: `${name}.bn3` })
    : x;
  return relu(add(h, shortcut));
}

/** The network with n BasicBlocks per stage (ResNet-(6n+2)): the logits. */
export function cifarResNet(o: ModelOptions, n: number): Tensor {
  const x = input(o.input ?? [3, 32, 32]);
  let h = relu(batchNorm(conv2d(x, { out: 16, kernel: 3, pad: 1, bias: false, name: 'conv1' }), { name: 'bn1' }));
  [16, 32, 64].forEach((planes, g) => {
    for (let i = 0; i < n; i++) h = basicBlock(h, planes, g > 0 && i === 0 ? 2 : 1, `group${g + 1}_layer${i}`);
  });
  return linear(flatten(globalAvgPool(h)), o.classes ?? 10, { name: 'fc' });
}
