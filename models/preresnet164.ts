// PreResNet-164 for CIFAR (1.7 M parameters): SWALP's PreResNet164LP (models/preresnet_low.py; research/seeds.md §3),
// pre-activation bottleneck blocks, n = 18 per stage. The network and where it differs from the reference:
// blocks/bottleneck-resnet.ts, shared with resnet164.ts.
import { model } from 'lpc/dsl';
import { bottleneckPreResNet } from './blocks/bottleneck-resnet.js';

export default model('preresnet164', (o) => bottleneckPreResNet(o, 18));
