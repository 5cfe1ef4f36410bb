// ResNet-50 for ImageNet (25.6 M parameters at 1000 classes; 23.5 M at the default 10): torchvision's `resnet50()`,
// Bottlenecks [3, 4, 6, 3] with the stride on the 3×3 conv (ResNet v1.5; DIVISION's ImageNet ResNet-50,
// research/seeds.md §4.4). Default input 3×224×224; `--input 3x64x64` for small runs. The network and where it
// differs from the reference: blocks/imagenet-resnet.ts, shared with resnet34.ts.
import { model } from 'lpc/dsl';
import { imagenetResNet } from './blocks/imagenet-resnet.js';

export default model('resnet50', (o) => imagenetResNet(o, [3, 4, 6, 3], 'bottleneck'));
