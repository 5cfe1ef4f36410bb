// DenseNet-121 for CIFAR (6.96 M parameters at 10 classes): kuangliu/pytorch-cifar's `DenseNet121()` — DenseNet-BC
// with dense blocks of 6, 12, 24 and 16 layers, growth rate 32, compression 0.5, a 3×3 stem and no stem pooling
// (DIVISION's CIFAR-100 DenseNet-121, research/seeds.md §4.4). The network and where it differs from the reference:
// blocks/densenet.ts, shared with densenet161.ts.
import { model } from 'lpc/dsl';
import { cifarDenseNet } from './blocks/densenet.js';

export default model('densenet121', (o) => cifarDenseNet(o, [6, 12, 24, 16], 32));
