// DenseNets (Huang et al. 2017) with bottleneck layers and compression 0.5 (DenseNet-BC), shared by densenet121.ts
// (CIFAR) and densenet161.ts (ImageNet). A dense layer is BN + ReLU + conv1×1 (4·growth) + BN + ReLU + conv3×3
// (growth, pad 1), and its output is concatenated with its input along the channels; a transition is BN + ReLU +
// conv1×1 (⌊channels/2⌋) + 2×2 average pooling. Convolutions have no bias.
// - cifarDenseNet: kuangliu/pytorch-cifar's models/densenet.py (`DenseNet121()` = blocks [6, 12, 24, 16], growth 32):
//   a 3×3 stem conv to 2·growth channels, no stem pooling; each layer concatenates [new, input] (torch.cat([out, x]));
//   after the last block BN + ReLU, average pooling over the final map (avg_pool2d(4) on 32×32 inputs) and a linear
//   classifier. Parameter names as its state_dict (conv1, dense1.0.bn1, trans1.conv, bn, linear).
// - imagenetDenseNet: torchvision's models/densenet.py (densenet161: 96 stem features, growth 48, blocks
//   [6, 12, 36, 24]): a 7×7 stride-2 stem conv + BN + ReLU + 3×3 stride-2 max pooling (pad 1); each layer's input is
//   the concatenation of every earlier feature map in order ([x0, x1, …]: the running concatenation with the new
//   map appended); after the last block BN, then ReLU, adaptive average pooling to 1×1 and the classifier. Conv
//   weights kaiming normal (fan_in), BN γ=1, β=0, as torchvision. Parameter names as its state_dict
//   (features.conv0, features.denseblock1.denselayer1.norm1, features.transition1.conv, features.norm5, classifier).
//
// Differences from the references, on purpose:
// - Each layer concatenates two tensors, its input (the features so far) and its new map, which is the references'
//   concatenation of every earlier map; lpc's planner places a block's maps as channel ranges of one buffer, so the
//   concatenations copy nothing (passes/channel-views.ts).
// - Classifier and (CIFAR) convolutions keep lpc's default initialisation (uniform ±1/√fan_in); torchvision zeroes
//   the classifier's bias, kuangliu uses PyTorch's defaults as lpc does.
// - The final pool is global, so other input sizes work where every transition still has a 2×2 map to pool.
import { input, conv2d, batchNorm, relu, avgPool, maxPool, concat, globalAvgPool, flatten, linear, kaimingNormal, Init, Tensor, ModelOptions } from 'lpc/dsl';

interface Names { norm1: string; conv1: string; norm2: string; conv2: string }

function denseLayer(x: Tensor, growth: number, n: Names, newFirst: boolean, init?: Init): Tensor {
  let h = conv2d(relu(batchNorm(x, { name: n.norm1 })), { out: 4 * growth, kernel: 1, bias: false, name: n.conv1, init });
  h = conv2d(relu(batchNorm(h, { name: n.norm2 })), { out: growth, kernel: 3, pad: 1, bias: false, name: n.conv2, init });
  return newFirst ? concat([h, x]) : concat([x, h]);
}

function transition(x: Tensor, norm: string, convName: string, init?: Init): Tensor {
  const h = conv2d(relu(batchNorm(x, { name: norm })), { out: Math.floor(x.shape[1] / 2), kernel: 1, bias: false, name: convName, init });
  return avgPool(h, 2);
}

/** kuangliu's CIFAR DenseNet-BC with `blocks` layers per dense block: the logits. */
export function cifarDenseNet(o: ModelOptions, blocks: number[], growth: number): Tensor {
  const x = input(o.input ?? [3, 32, 32]);
  let h = conv2d(x, { out: 2 * growth, kernel: 3, pad: 1, bias: false, name: 'conv1' });
  blocks.forEach((layers, b) => {
    for (let i = 0; i < layers; i++) {
      const p = `dense${b + 1}.${i}`;
      h = denseLayer(h, growth, { norm1: `${p}.bn1`, conv1: `${p}.conv1`, norm2: `${p}.bn2`, conv2: `${p}.conv2` }, true);
    }
    if (b < blocks.length - 1) h = transition(h, `trans${b + 1}.bn`, `trans${b + 1}.conv`);
  });
  h = relu(batchNorm(h, { name: 'bn' }));
  return linear(flatten(globalAvgPool(h)), o.classes ?? 10, { name: 'linear' });
}

/** torchvision's ImageNet DenseNet-BC: the logits. */
export function imagenetDenseNet(o: ModelOptions, initFeatures: number, growth: number, blocks: number[]): Tensor {
  const init = kaimingNormal('fan_in');
  const x = input(o.input ?? [3, 224, 224]);
  let h = conv2d(x, { out: initFeatures, kernel: 7, stride: 2, pad: 3, bias: false, name: 'features.conv0', init });
  h = maxPool(relu(batchNorm(h, { name: 'features.norm0' })), 3, 2, 1);
  blocks.forEach((layers, b) => {
    for (let i = 0; i < layers; i++) {
      const p = `features.denseblock${b + 1}.denselayer${i + 1}`;
      h = denseLayer(h, growth, { norm1: `${p}.norm1`, conv1: `${p}.conv1`, norm2: `${p}.norm2`, conv2: `${p}.conv2` }, false, init);
    }
    if (b < blocks.length - 1) h = transition(h, `features.transition${b + 1}.norm`, `features.transition${b + 1}.conv`, init);
  });
  h = relu(batchNorm(h, { name: 'features.norm5' }));
  return linear(flatten(globalAvgPool(h)), o.classes ?? 10, { name: 'classifier' });
}
