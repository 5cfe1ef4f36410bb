// Wide ResNets (Zagoruyko & Komodakis 2016) for CIFAR, as xternalz/WideResNet-pytorch's wideresnet.py builds
// `WideResNet(depth, num_classes, widen_factor, dropRate)` (used by wrn.ts, which takes depth and width from the options): n = (depth − 4)/6 pre-activation
// BasicBlocks per stage at widths 16k, 32k, 64k (k = widen factor; the first block of stages 2 and 3 has stride 2),
// after a 3×3 stem conv 16, then BN + ReLU, global average pooling (avg_pool2d(8) on 32×32 inputs) and a linear
// classifier 64k → classes. A block is BN + ReLU, conv3×3 (stride), BN + ReLU, [dropout,] conv3×3, plus the
// shortcut; where the width changes the shortcut is a 1×1 conv (stride, no BN) of the block's pre-activated input
// (BN + ReLU of x, shared with the residual branch), else x itself. Convolutions have no bias; conv weights are
// initialised N(0, 2/(k²·out)) (kaiming normal, fan_out) as the reference does, BN γ=1, β=0.
//
// Differences from the reference, on purpose:
// - The classifier keeps lpc's default initialisation (uniform ±1/√fan_in for weight and bias); the reference zeroes
//   the bias (its weight is also PyTorch's default).
// - The global pool adapts to the input size, so 1×28×28 inputs (`--input 1x28x28`) work too.
// Parameter names follow the reference's state_dict (conv1, block1.layer.0.bn1, block2.layer.0.convShortcut, bn1, fc).
import { input, conv2d, batchNorm, relu, add, dropout, globalAvgPool, flatten, linear, kaimingNormal, Tensor, ModelOptions } from 'lpc/dsl';

const convInit = kaimingNormal('fan_out');

function wideBlock(x: Tensor, out: number, stride: number, drop: number, name: string): Tensor {
  const same = x.shape[1] === out;
  const a = relu(batchNorm(x, { name: `${name}.bn1` }));
  let h = conv2d(a, { out, kernel: 3, stride, pad: 1, bias: false, name: `${name}.conv1`, init: convInit });
  h = relu(batchNorm(h, { name: `${name}.bn2` }));
  if (drop > 0) h = dropout(h, drop);
  h = conv2d(h, { out, kernel: 3, pad: 1, bias: false, name: `${name}.conv2`, init: convInit });
  const shortcut = same ? x : conv2d(a, { out, kernel: 1, stride, bias: false, name: `${name}.convShortcut`, init: convInit });
  return add(shortcut, h);
}

/** WRN-depth-widen (depth = 6n + 4) with dropout `drop` inside the blocks: the logits. */
export function wideResNet(o: ModelOptions, depth: number, widen: number, drop = 0): Tensor {
  if (!Number.isInteger(depth) || (depth - 4) % 6 !== 0 || depth < 10) throw new Error(`a Wide ResNet's depth is 6n + 4 (10, 16, 22, 28, 40, …), got ${depth}`);
  const n = (depth - 4) / 6;
  const x = input(o.input ?? [3, 32, 32]);
  let h = conv2d(x, { out: 16, kernel: 3, pad: 1, bias: false, name: 'conv1', init: convInit });
  [16 * widen, 32 * widen, 64 * widen].forEach((width, s) => {
    for (let i = 0; i < n; i++) h = wideBlock(h, width, s > 0 && i === 0 ? 2 : 1, drop, `block${s + 1}.layer.${i}`);
  });
  h = relu(batchNorm(h, { name: 'bn1' }));
  return linear(flatten(globalAvgPool(h)), o.classes ?? 10, { name: 'fc' });
}
