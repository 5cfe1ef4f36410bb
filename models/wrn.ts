// Wide ResNets, depth and width from the compile options (`--depth N --width K`; default WRN-28-10, 36.5 M parameters):
// - depth 6n + 4 (10, 16, 22, 28, 40, …): Zagoruyko & Komodakis's CIFAR WRN-depth-K as xternalz/WideResNet-pytorch
//   builds it, no dropout (blocks/wide-resnet.ts, which also says where it differs; `wideResNet(o, 28, 10, 0.3)`
//   in a model file of your own for the paper's dropout);
// - depth 50 or 101: torchvision's ImageNet-style wide_resnet50_2 / wide_resnet101_2 at K = 2 (DIVISION's WRN-50-2),
//   Bottlenecks with K× the inner width (blocks/imagenet-resnet.ts); default input 3×224×224, `--input 3x64x64` for
//   small runs.
// `lpc compile models/wrn.ts --depth 16 --width 4` is WRN-16-4; `--depth 50 --width 2 --input 3x64x64` WRN-50-2.
import { model } from 'lpc/dsl';
import { wideResNet } from './blocks/wide-resnet.js';
import { imagenetResNet } from './blocks/imagenet-resnet.js';

/** torchvision's Bottleneck stages by depth. */
const IMAGENET: Record<number, number[]> = { 50: [3, 4, 6, 3], 101: [3, 4, 23, 3] };

export default model('wrn', (o) => {
  const depth = o.depth ?? 28, width = o.width ?? 10;
  if (IMAGENET[depth]) return imagenetResNet(o, IMAGENET[depth], 'bottleneck', width);
  if ((depth - 4) % 6 !== 0 || depth < 10)
    throw new Error(`--depth ${depth}: a Wide ResNet's depth is 6n + 4 (10, 16, 22, 28, 40, …; CIFAR) or 50, 101 (ImageNet-style)`);
  return wideResNet(o, depth, width);
});
