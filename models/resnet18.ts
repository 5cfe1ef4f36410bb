// ResNet-18 for CIFAR, as kuangliu/pytorch-cifar's models/resnet.py builds it (11,173,962 parameters at 10 classes):
// a 3×3 stem conv 64 with stride 1 + BN + ReLU and no max-pool, four stages of 2 BasicBlocks (64, 128, 256, 512
// channels; the first block of stages 2–4 has stride 2), average pooling over the final 4×4 map (avg_pool2d(4) on
// 32×32 inputs) and a linear classifier 512 → classes. A BasicBlock is conv3×3 + BN + ReLU, conv3×3 + BN, plus the
// shortcut, then ReLU; convolutions have no bias. The shortcut is a 1×1 conv + BN where the stride or the width
// changes, else the identity.
//
// Differences from the reference: lpc's default initialisation is PyTorch's default, as the reference uses, so
// none in the layers; the final pool is global, so 1×28×28 inputs (`--input 1x28x28`) work too (4×4 final map).
// Parameter names follow the reference's state_dict (conv1, bn1, layer1.0.conv1, layer2.0.shortcut.0, …, linear).
import { model, input, conv2d, batchNorm, relu, add, globalAvgPool, flatten, linear, Tensor } from 'lpc/dsl';

function basicBlock(x: Tensor, planes: number, stride: number, name: string): Tensor {
  let h = relu(batchNorm(conv2d(x, { out: planes, kernel: 3, stride, pad: 1, bias: false, name: `${name}.conv1` }), { name: `${name}.bn1` }));
  h = batchNorm(conv2d(h, { out: planes, kernel: 3, pad: 1, bias: false, name: `${name}.conv2` }), { name: `${name}.bn2` });
  const shortcut = stride !== 1 || x.shape[1] !== planes
    ? batchNorm(conv2d(x, { out: planes, kernel: 1, stride, bias: false, name: `${name}.shortcut.0` }), { name: `${name}.shortcut.1` })
    : x;
  return relu(add(h, shortcut));
}

export default model('resnet18', (o) => {
  const x = input(o.input ?? [3, 32, 32]);
  let h = relu(batchNorm(conv2d(x, { out: 64, kernel: 3, pad: 1, bias: false, name: 'conv1' }), { name: 'bn1' }));
  [64, 128, 256, 512].forEach((planes, s) => {
    for (let i = 0; i < 2; i++) h = basicBlock(h, planes, s > 0 && i === 0 ? 2 : 1, `layer${s + 1}.${i}`);
  });
  return linear(flatten(globalAvgPool(h)), o.classes ?? 10, { name: 'linear' });
});
