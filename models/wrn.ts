// WRN-28-10 for CIFAR (36.5 M parameters), Zagoruyko & Komodakis's Wide ResNet with depth 28 and widen factor 10,
// no dropout, as xternalz/WideResNet-pytorch builds it. The network and where it differs from the reference:
// blocks/wide-resnet.ts. The compile options carry only --input and --classes, so depth and width are constants
// here: another WRN is a file of three lines, `model('wrn16_4', (o) => wideResNet(o, 16, 4))` (or
// `wideResNet(o, 28, 10, 0.3)` with the paper's dropout).
import { model } from 'lpc/dsl';
import { wideResNet } from './blocks/wide-resnet.js';

export const DEPTH = 28;
export const WIDEN = 10;

export default model('wrn28_10', (o) => wideResNet(o, DEPTH, WIDEN));
