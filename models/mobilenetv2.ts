// MobileNetV2 (Sandler et al. 2018) for CIFAR (2.24 M parameters at 10 classes), as torchvision's
// models/mobilenetv2.py builds `mobilenet_v2(width_mult=1.0)`, with the CIFAR change of a stride-1 stem: a 3×3 conv 32
// + BN + ReLU6, 17 inverted residual blocks (expansion t, output c, repeats n, first stride s: 1,16,1,1 · 6,24,2,2 ·
// 6,32,3,2 · 6,64,4,2 · 6,96,3,1 · 6,160,3,2 · 6,320,1,1), a 1×1 conv 1280 + BN + ReLU6, global average pooling,
// dropout 0.2 and a linear classifier 1280 → classes. A block is, for t ≠ 1, a 1×1 expansion conv to t·in + BN +
// ReLU6, then a 3×3 depthwise conv (groups = channels, stride s) + BN + ReLU6, then a 1×1 projection conv + BN with no
// activation; the input is added where the stride is 1 and the width is unchanged. Convolutions have no bias;
// conv weights are initialised kaiming normal (fan_out), the classifier's weight N(0, 0.01²), BN γ=1, β=0, as
// torchvision does.
//
// Differences from the reference, on purpose:
// - The stem has stride 1 (torchvision: 2), so a 32×32 input ends at 2×2 before the pool, as CIFAR variants do
//   (kuangliu/pytorch-cifar's also sets the second stage's stride to 1; this one keeps torchvision's).
// - The classifier's bias keeps lpc's default (uniform ±1/√1280); torchvision zeroes it.
// - width_mult and the rounding of widths to multiples of 8 are not parameters: at 1.0 every width is one already.
// Parameter names follow torchvision's state_dict (features.0.0, features.1.conv.0.0, features.2.conv.1.0,
// features.18.1, classifier.1).
import { model, input, conv2d, batchNorm, relu6, add, dropout, globalAvgPool, flatten, linear, kaimingNormal, normal, Tensor } from 'lpc/dsl';

const convInit = kaimingNormal('fan_out');

/** Conv + BN + ReLU6 (torchvision's ConvBNReLU / Conv2dNormActivation): `<name>.0` the conv, `<name>.1` the BN. */
function convBnRelu6(x: Tensor, out: number, kernel: number, stride: number, name: string, groups = 1): Tensor {
  const h = conv2d(x, { out, kernel, stride, pad: (kernel - 1) / 2, groups, bias: false, name: `${name}.0`, init: convInit });
  return relu6(batchNorm(h, { name: `${name}.1` }));
}

function invertedResidual(x: Tensor, out: number, stride: number, t: number, name: string): Tensor {
  const cin = x.shape[1], hidden = cin * t;
  let h = x, i = 0;
  if (t !== 1) h = convBnRelu6(h, hidden, 1, 1, `${name}.conv.${i++}`);
  h = convBnRelu6(h, hidden, 3, stride, `${name}.conv.${i++}`, hidden); // depthwise
  h = conv2d(h, { out, kernel: 1, bias: false, name: `${name}.conv.${i++}`, init: convInit });
  h = batchNorm(h, { name: `${name}.conv.${i}` });
  return stride === 1 && cin === out ? add(x, h) : h;
}

/** [t, c, n, s] per stage, torchvision's inverted_residual_setting. */
const SETTING: [number, number, number, number][] = [
  [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
];

export default model('mobilenetv2', (o) => {
  const x = input(o.input ?? [3, 32, 32]);
  let h = convBnRelu6(x, 32, 3, 1, 'features.0'); // CIFAR: stride 1
  let f = 1;
  for (const [t, c, n, s] of SETTING)
    for (let i = 0; i < n; i++) h = invertedResidual(h, c, i === 0 ? s : 1, t, `features.${f++}`);
  h = convBnRelu6(h, 1280, 1, 1, `features.${f}`);
  h = dropout(flatten(globalAvgPool(h)), 0.2);
  return linear(h, o.classes ?? 10, { name: 'classifier.1', init: normal(0.01) });
});
