// CIFAR ResNets with bottleneck blocks, as bearpaw/pytorch-classification's models/cifar/resnet.py and
// preresnet.py build them for depth 9n + 2 (shared by resnet164.ts and preresnet164.ts, n = 18): a 3×3 stem conv 16,
// three stages of n Bottleneck blocks (planes 16, 32, 64, expansion 4: outputs 64, 128, 256; the first block of
// stages 2 and 3 has stride 2, on its 3×3 conv), global average pooling (AvgPool2d(8) on 32×32 inputs) and a linear
// classifier 256 → classes. Convolutions have no bias.
// - resNet (post-activation, He et al. 2016a): stem conv + BN + ReLU; a block is conv1×1 + BN + ReLU, conv3×3
//   (stride) + BN + ReLU, conv1×1 (4·planes) + BN, plus the shortcut, then ReLU; the shortcut is a 1×1 conv (stride)
//   + BN where the stride or the width changes, else the identity.
// - preResNet (pre-activation, He et al. 2016b; SWALP's PreResNet164LP, research/seeds.md §3, which passes depth 110
//   but builds n = 18 bottlenecks per stage): a block is BN + ReLU + conv1×1, BN + ReLU + conv3×3 (stride),
//   BN + ReLU + conv1×1 (4·planes), plus the shortcut, no ReLU after the sum; the shortcut is a 1×1 conv (stride)
//   without BN on the block's input x; after the last stage BN + ReLU.
//
// Differences from the references, on purpose:
// - Parameters are initialised with lpc's defaults (PyTorch's: uniform ±1/√fan_in), not the references'
//   N(0, √(2/(k²·out))) for convs.
// - No quantizers in the network: SWALP's BlockQuantizers come from `lpc compile --precision 'A=… E=…'`.
// - The global pool adapts to the input size, so 1×28×28 inputs (`--input 1x28x28`) work too.
// Parameter names follow the references' state_dict (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, …, fc).
import { input, conv2d, batchNorm, relu, add, globalAvgPool, flatten, linear, Tensor, ModelOptions } from 'lpc/dsl';

const EXPANSION = 4;

function bottleneck(x: Tensor, planes: number, stride: number, name: string): Tensor {
  const out = planes * EXPANSION;
  let h = relu(batchNorm(conv2d(x, { out: planes, kernel: 1, bias: false, name: `${name}.conv1` }), { name: `${name}.bn1` }));
  h = relu(batchNorm(conv2d(h, { out: planes, kernel: 3, stride, pad: 1, bias: false, name: `${name}.conv2` }), { name: `${name}.bn2` }));
  h = batchNorm(conv2d(h, { out, kernel: 1, bias: false, name: `${name}.conv3` }), { name: `${name}.bn3` });
  const shortcut = stride !== 1 || x.shape[1] !== out
    ? batchNorm(conv2d(x, { out, kernel: 1, stride, bias: false, name: `${name}.downsample.0` }), { name: `${name}.downsample.1` })
    : x;
  return relu(add(h, shortcut));
}

function preBottleneck(x: Tensor, planes: number, stride: number, name: string): Tensor {
  const out = planes * EXPANSION;
  let h = conv2d(relu(batchNorm(x, { name: `${name}.bn1` })), { out: planes, kernel: 1, bias: false, name: `${name}.conv1` });
  h = conv2d(relu(batchNorm(h, { name: `${name}.bn2` })), { out: planes, kernel: 3, stride, pad: 1, bias: false, name: `${name}.conv2` });
  h = conv2d(relu(batchNorm(h, { name: `${name}.bn3` })), { out, kernel: 1, bias: false, name: `${name}.conv3` });
  const shortcut = stride !== 1 || x.shape[1] !== out
    ? conv2d(x, { out, kernel: 1, stride, bias: false, name: `${name}.downsample.0` })
    : x;
  return add(h, shortcut);
}

/** The stages: n blocks at planes 16, 32, 64 (stride 2 entering stages 2 and 3). */
function stages(h: Tensor, n: number, block: typeof bottleneck): Tensor {
  [16, 32, 64].forEach((planes, s) => {
    for (let i = 0; i < n; i++) h = block(h, planes, s > 0 && i === 0 ? 2 : 1, `layer${s + 1}.${i}`);
  });
  return h;
}

/** Post-activation bottleneck ResNet-(9n+2): the logits. */
export function bottleneckResNet(o: ModelOptions, n: number): Tensor {
  const x = input(o.input ?? [3, 32, 32]);
  const h = relu(batchNorm(conv2d(x, { out: 16, kernel: 3, pad: 1, bias: false, name: 'conv1' }), { name: 'bn1' }));
  return linear(flatten(globalAvgPool(stages(h, n, bottleneck))), o.classes ?? 10, { name: 'fc' });
}

/** Pre-activation bottleneck PreResNet-(9n+2): the logits. */
export function bottleneckPreResNet(o: ModelOptions, n: number): Tensor {
  const x = input(o.input ?? [3, 32, 32]);
  const h = stages(conv2d(x, { out: 16, kernel: 3, pad: 1, bias: false, name: 'conv1' }), n, preBottleneck);
  return linear(flatten(globalAvgPool(relu(batchNorm(h, { name: 'bn' })))), o.classes ?? 10, { name: 'fc' });
}
