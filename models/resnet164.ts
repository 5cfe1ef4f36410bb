// ResNet-164 for CIFAR (1.7 M parameters): the post-activation bottleneck ResNet of He et al. with n = 18 blocks per
// stage, as bearpaw/pytorch-classification builds `resnet(depth=164, block_name='bottleneck')` (DIVISION's CIFAR
// ResNet-164, research/seeds.md §4.4). The network and where it differs from the reference:
// blocks/bottleneck-resnet.ts, shared with preresnet164.ts.
import { model } from 'lpc/dsl';
import { bottleneckResNet } from './blocks/bottleneck-resnet.js';

export default model('resnet164', (o) => bottleneckResNet(o, 18));
