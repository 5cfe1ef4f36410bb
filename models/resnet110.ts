// ResNet-110 for CIFAR (1.7 M parameters), n = 18 BasicBlocks per stage, in CPT's layout (cpt_cifar/models.py
// `cifar10_resnet_110`; research/seeds.md §2.3). The network and where it differs from the reference:
// blocks/cifar-resnet.ts, shared with resnet20.ts, resnet38.ts and resnet74.ts.
import { model } from 'lpc/dsl';
import { cifarResNet } from './blocks/cifar-resnet.js';

export default model('resnet110', (o) => cifarResNet(o, 18));
