// ResNet-38 for CIFAR-10/100, as CPT's `cifar{10,100}_resnet_38`: n = 6 BasicBlocks per stage, in CPT's layout
// (cpt_cifar/models.py; research/seeds.md §2.3). The network and where it differs from the reference:
// blocks/cifar-resnet.ts, shared by resnet20.ts, resnet38.ts and resnet74.ts.
import { model } from 'lpc/dsl';
import { cifarResNet } from './blocks/cifar-resnet.js';

export default model('resnet38', (o) => cifarResNet(o, 6));
