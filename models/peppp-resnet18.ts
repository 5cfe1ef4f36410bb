// PEPPP's ResNet-18 (Yang et al., ICLR 2022, the authors' LPResNet_baby in architectures/resnet_lp.py; see
// ../shared/peppp/README.md §2.1): a CIFAR ResNet-18 — 3×3 stride-1 stem, no max-pool, BasicBlocks [2, 2, 2, 2] at
// 64/128/256/512 channels (strides 1/2/2/2), no conv bias, global average pool, linear 512 → classes with bias — with
// PEPPP's hand-placed quantizers, as precision classes: `high` on the input and the logits, `low` after the stem and
// at six places in every block. Its BasicBlock is not the usual one: ReLU sits after the second BN, before the
// residual add, and nothing but the quantizer follows the add:
//     h = Q_lo(conv3×3(x, stride s)); h = Q_lo(ReLU(BN(h))); h = Q_lo(conv3×3(h)); h = Q_lo(ReLU(BN(h)))
//     r = x, or BN(conv1×1(x, stride s)) where the stride or the width changes;  y = Q_lo(h + Q_lo(r))
// Convolutions are initialised N(0, 2/(k·k·out)) (He, fan-out), the linear layer and BN as PyTorch's defaults.
// Parameter names follow the authors' state_dict (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, fc).
//
// Train it PEPPP's way with a configuration of `lpc sweep --configs peppp`, e.g. column 0:
//   --precision 'low=float<3,1>:stochastic high=float<6,7>:stochastic W=low G=low M=high ACC=high loss_scale=1000'
//   --optimizer 'sgd(lr=0.001,momentum=0.9,wd=5e-4)' --batch 32
// Without named classes in the spec every quantizer is the identity (an fp32 ResNet-18 of this layout).
// Difference: lpc's float formats follow QPyTorch ≥ 0.3 (subnormals); PEPPP ran qtorch 0.2.0 (none).
import { model, input, conv2d, batchNorm, relu, add, globalAvgPool, flatten, linear, quantize, scope, kaimingNormal, Tensor } from 'lpc/dsl';

const he = kaimingNormal('fan_out');

function basicBlock(x: Tensor, out: number, stride: number, name: string): Tensor {
  return scope(name, () => {
    let h = quantize(conv2d(x, { out, kernel: 3, stride, pad: 1, bias: false, name: 'conv1', init: he }), 'low');
    h = quantize(relu(batchNorm(h, { name: 'bn1' })), 'low');
    h = quantize(conv2d(h, { out, kernel: 3, pad: 1, bias: false, name: 'conv2', init: he }), 'low');
    h = quantize(relu(batchNorm(h, { name: 'bn2' })), 'low');
    let r = x;
    if (stride !== 1 || x.shape[1] !== out)
      r = batchNorm(conv2d(x, { out, kernel: 1, stride, bias: false, name: 'downsample.0', init: he }), { name: 'downsample.1' });
    return quantize(add(h, quantize(r, 'low')), 'low');
  });
}

export default model('peppp_resnet18', (o) => {
  const x = quantize(input(o.input ?? [3, 32, 32]), 'high');
  let h = quantize(relu(batchNorm(conv2d(x, { out: 64, kernel: 3, pad: 1, bias: false, name: 'conv1', init: he }), { name: 'bn1' })), 'low');
  [64, 128, 256, 512].forEach((width, stage) => {
    for (let i = 0; i < 2; i++) h = basicBlock(h, width, stage > 0 && i === 0 ? 2 : 1, `layer${stage + 1}.${i}`);
  });
  return quantize(linear(flatten(globalAvgPool(h)), o.classes ?? 10, { name: 'fc' }), 'high');
});
