// DenseNet-161 for ImageNet (28.7 M parameters at 1000 classes; 26.5 M at the default 10): torchvision's
// `densenet161()` — DenseNet-BC with 96 stem features, growth rate 48, dense blocks of 6, 12, 36 and 24 layers, a
// 7×7 stride-2 stem and 3×3 stride-2 max pooling (DIVISION's ImageNet DenseNet-161, research/seeds.md §4.4). Default
// input 3×224×224; small inputs such as `--input 3x64x64` work (the final pool is global). The network and where it
// differs from the reference: blocks/densenet.ts, shared with densenet121.ts.
import { model } from 'lpc/dsl';
import { imagenetDenseNet } from './blocks/densenet.js';

export default model('densenet161', (o) => imagenetDenseNet(o, 96, 48, [6, 12, 36, 24]));
