// ResNet-20 for CIFAR (0.27 M parameters), n = 3 BasicBlocks per stage, in CPT's layout
// (cpt_cifar/models.py; research/seeds.md §2.3). The network and where it differs from the reference:
// blocks/cifar-resnet.ts, shared by resnet20.ts, resnet38.ts and resnet74.ts.
import { model } from 'lpc/dsl';
import { cifarResNet } from './blocks/cifar-resnet.js';

export default model('resnet20', (o) => cifarResNet(o, 3));
