// ResNet-34 for ImageNet (21.8 M parameters at 1000 classes; 21.3 M at the default 10): torchvision's `resnet34()`,
// BasicBlocks [3, 4, 6, 3]. Default input 3×224×224; `--input 3x64x64` for small runs. The network and where it
// differs from the reference: blocks/imagenet-resnet.ts, shared with resnet50.ts.
import { model } from 'lpc/dsl';
import { imagenetResNet } from './blocks/imagenet-resnet.js';

export default model('resnet34', (o) => imagenetResNet(o, [3, 4, 6, 3], 'basic'));
