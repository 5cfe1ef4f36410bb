/** `lpc run`: load and validate an artifact, initialise state from the seed, train, evaluate each epoch. */
import { readArtifact } from '../artifact.js';
import { loadDataset } from '../data/index.js';
import { initState } from '../train/init.js';
import { train } from '../train/train.js';
import { Progress } from '../train/progress.js';
import { FlagSpec, Parsed, UsageError, flag, intFlag } from './args.js';
import { makeBackend } from './backends.js';

export const runFlags: FlagSpec[] = [
  { name: 'data', value: 'SET', help: 'mnist (default), fashion-mnist, cifar10:<dir>, cifar100:<dir> or synthetic' },
  { name: 'epochs', value: 'N', help: 'epochs to train (default 5)' },
  { name: 'backend', value: 'B', help: 'webgpu (default; hardware adapter if present, else a CPU Vulkan driver) or cpu' },
  { name: 'seed', value: 'S', help: 'seed for initialisation, shuffling and stochastic rounding (default 0)' },
  { name: 'metrics', value: 'FILE', help: 'write one JSON object per epoch (epoch, train_loss, test_loss, test_accuracy, …)' },
  { name: 'max-steps', value: 'N', help: 'stop each epoch after N steps (quick runs)' },
];

export async function runCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc run needs one artifact directory');
  const art = readArtifact(p.positional[0]);
  const epochs = intFlag(p, 'epochs', 5);
  const seed = intFlag(p, 'seed', 0, 0);
  const maxSteps = p.flags.has('max-steps') ? intFlag(p, 'max-steps', 1) : undefined;
  const { batch, optimizer } = art.manifest.options;
  const x = art.module.graphs[0].nodes.find((n) => n.op === 'input' && n.attrs.name === 'x')!;
  const data = loadDataset(flag(p, 'data') ?? 'mnist', { sampleShape: x.type.shape.slice(1), seed });
  const want = x.type.shape.slice(1).join(','), have = data.train.shape.join(',');
  if (want !== have) throw new UsageError(`model '${art.manifest.options.model}' expects inputs [${want}] but ${flag(p, 'data') ?? 'mnist'} has [${have}]`);
  const backend = await makeBackend(flag(p, 'backend'), art.module);
  process.stderr.write(`lpc: training ${art.manifest.options.model} on ${backend.description}: ${data.train.n} train / ${data.test.n} test images, batch ${batch}, ${epochs} epochs, precision ${art.manifest.options.precision ?? 'f32'}\n`);
  try {
    await backend.setState(initState(art.module, seed));
    await train(backend, data, {
      epochs, batch, seed, maxSteps, metricsPath: flag(p, 'metrics'), progress: new Progress(),
      lr: () => optimizer.lr,
    });
  } finally {
    await backend.dispose();
  }
}
