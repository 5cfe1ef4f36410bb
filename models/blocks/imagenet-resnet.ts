// The ImageNet ResNets of He et al. as torchvision's models/resnet.py builds them (shared by resnet34.ts and
// resnet50.ts): a 7×7 stride-2 stem conv 64 (pad 3) + BN + ReLU, 3×3 stride-2 max pooling (pad 1), four stages of
// blocks at 64, 128, 256 and 512 planes (the first block of stages 2–4 has stride 2), adaptive average pooling to
// 1×1 and a linear classifier. A BasicBlock (expansion 1) is conv3×3 (stride) + BN + ReLU, conv3×3 + BN, plus the
// shortcut, then ReLU; a Bottleneck (expansion 4; torchvision's "ResNet v1.5": the stride on the 3×3 conv) is
// conv1×1 + BN + ReLU, conv3×3 (stride) + BN + ReLU, conv1×1 (4·planes) + BN, plus the shortcut, then ReLU. The
// shortcut is a 1×1 conv (stride) + BN where the stride or the width changes, else the identity. Wide ResNet-50-2
// (torchvision's wide_resnet50_2, width_per_group 128) doubles the Bottleneck's inner width (`widen`). Convolutions have
// no bias; their weights are initialised kaiming normal (fan_out), BN γ=1, β=0, as torchvision.
//
// Differences from the reference, on purpose:
// - torchvision's zero_init_residual option (off by default) is not offered; the classifier keeps lpc's (and
//   PyTorch's) default initialisation, as torchvision does.
// - The default input is 3×224×224; any input works (`--input 3x64x64` for quick runs: 64 → 32 → 16 → … → 2×2).
// Parameter names follow torchvision's state_dict (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, …, fc).
import { input, conv2d, batchNorm, relu, add, maxPool, globalAvgPool, flatten, linear, kaimingNormal, Tensor, ModelOptions } from 'lpc/dsl';

const init = kaimingNormal('fan_out');

function shortcut(x: Tensor, out: number, stride: number, name: string): Tensor {
  if (stride === 1 && x.shape[1] === out) return x;
  return batchNorm(conv2d(x, { out, kernel: 1, stride, bias: false, name: `${name}.downsample.0`, init }), { name: `${name}.downsample.1` });
}

function basicBlock(x: Tensor, planes: number, stride: number, name: string): Tensor {
  let h = relu(batchNorm(conv2d(x, { out: planes, kernel: 3, stride, pad: 1, bias: false, name: `${name}.conv1`, init }), { name: `${name}.bn1` }));
  h = batchNorm(conv2d(h, { out: planes, kernel: 3, pad: 1, bias: false, name: `${name}.conv2`, init }), { name: `${name}.bn2` });
  return relu(add(h, shortcut(x, planes, stride, name)));
}

function bottleneck(x: Tensor, planes: number, stride: number, name: string, widen: number): Tensor {
  const inner = planes * widen;
  let h = relu(batchNorm(conv2d(x, { out: inner, kernel: 1, bias: false, name: `${name}.conv1`, init }), { name: `${name}.bn1` }));
  h = relu(batchNorm(conv2d(h, { out: inner, kernel: 3, stride, pad: 1, bias: false, name: `${name}.conv2`, init }), { name: `${name}.bn2` }));
  h = batchNorm(conv2d(h, { out: 4 * planes, kernel: 1, bias: false, name: `${name}.conv3`, init }), { name: `${name}.bn3` });
  return relu(add(h, shortcut(x, 4 * planes, stride, name)));
}

/** torchvision's ResNet with `layers` blocks per stage, BasicBlocks or Bottlenecks: the logits. `widen` multiplies
 *  a Bottleneck's inner width (torchvision's width_per_group = 64·widen: wide_resnet50_2 is widen 2). */
export function imagenetResNet(o: ModelOptions, layers: number[], block: 'basic' | 'bottleneck', widen = 1): Tensor {
  if (block === 'basic' && widen !== 1) throw new Error('a wide ResNet needs Bottleneck blocks (torchvision: BasicBlock only supports base_width 64)');
  const x = input(o.input ?? [3, 224, 224]);
  let h = relu(batchNorm(conv2d(x, { out: 64, kernel: 7, stride: 2, pad: 3, bias: false, name: 'conv1', init }), { name: 'bn1' }));
  h = maxPool(h, 3, 2, 1);
  const f = block === 'basic' ? basicBlock : (x: Tensor, p: number, st: number, n: string) => bottleneck(x, p, st, n, widen);
  [64, 128, 256, 512].forEach((planes, s) => {
    for (let i = 0; i < layers[s]; i++) h = f(h, planes, s > 0 && i === 0 ? 2 : 1, `layer${s + 1}.${i}`);
  });
  return linear(flatten(globalAvgPool(h)), o.classes ?? 10, { name: 'fc' });
}
