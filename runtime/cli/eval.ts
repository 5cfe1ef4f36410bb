/**
 * `lpc eval <artifact> --weights FILE|DIR`: test loss, accuracy, per-class accuracy and the confusion matrix of given
 * weights (a PyTorch state_dict in safetensors, or a checkpoint folder) on a --data spec's test split. The artifact's
 * eval graph runs in its precision, or with --fp32 with every quantizer removed (runtime/eval.ts). A checkpoint
 * folder supplies its run's data spec and seed as defaults, and --swa picks its SWA model (evaluated in full precision,
 * as lpc run evaluates it).
 */
import * as fs from 'node:fs';
import { readArtifact } from '../artifact.js';
import { inputProblem, loadDataset, parseDataSpec } from '../data/index.js';
import { classesProblem } from '../data/tasks.js';
import { initState, stateDecls } from '../train/init.js';
import { CheckpointError, tensorNames } from '../checkpoint.js';
import { confusionText, evalModule, evaluateDetailed } from '../eval.js';
import { loadStateDict, modelDecls, readWeights, weightsLimit } from '../weights.js';
import { FlagSpec, Parsed, UsageError, flag, intFlag } from './args.js';
import { makeBackend } from './backends.js';
import { checkOutputFile } from './outputs.js';
import { scheduleOf } from './run.js';

export const evalFlags: FlagSpec[] = [
  { name: 'weights', value: 'FILE|DIR', help: "the weights: a PyTorch state_dict in safetensors (F32, F16, BF16 or F64; BN running_mean/running_var) or a checkpoint folder of lpc run --checkpoint (required); strict: every tensor the eval graph reads, with its shape" },
  { name: 'data', value: 'SET', help: "the test split of a --data spec as lpc run takes it (class subsets too); default: a checkpoint folder's run's, else mnist" },
  { name: 'seed', value: 'S', help: "seed of synthetic data (the only data that depends on it); default: a checkpoint folder's run's, else 0" },
  { name: 'fp32', help: 'evaluate in full precision: the eval graph with every quantizer removed (quantize nodes and fused quantizer epilogues)' },
  { name: 'swa', help: "evaluate a checkpoint folder's SWA model (swa.* tensors, BN statistics re-estimated), in full precision as lpc run --swa does" },
  { name: 'json', value: 'FILE', help: 'also write the results as JSON: test_loss, test_accuracy, samples, per_class [{class, samples, correct, accuracy}], confusion [true][predicted]' },
  { name: 'backend', value: 'B', help: 'webgpu (default; tilings from the tune cache, nothing measured) or cpu' },
];

export async function evalCommand(p: Parsed): Promise<void> {
  if (p.positional.length !== 1) throw new UsageError('lpc eval needs one artifact directory');
  const weightsArg = flag(p, 'weights');
  if (weightsArg === undefined) throw new UsageError('lpc eval needs --weights FILE.safetensors|DIR');
  const jsonPath = flag(p, 'json');
  if (jsonPath !== undefined) checkOutputFile('--json', jsonPath, [p.positional[0], weightsArg]);
  const art = readArtifact(p.positional[0]);
  const { batch, model, precision } = art.manifest.options;
  const swa = p.flags.has('swa'), fp32 = p.flags.has('fp32') || swa;

  const mod = evalModule(art.module, fp32);
  const decls = stateDecls(mod);
  const artDecls = modelDecls(stateDecls(art.module));
  const w = readWeights(weightsArg, '--weights', weightsLimit(artDecls));
  const sc = w.sidecar;
  if (swa) {
    const count = sc?.position?.swaCount;
    if (!sc) throw new UsageError('--swa needs a checkpoint folder as --weights (its swa.* tensors and SWA count)');
    if (![...w.tensors.keys()].some((k) => k.startsWith('swa.'))) throw new CheckpointError(w.file, 'holds no SWA model (swa.* tensors); was its run started with --swa?', '--weights');
    if (count === 0) throw new CheckpointError(w.file, 'holds an SWA model that has averaged nothing yet (swa_count 0: its run stopped before the --swa start epoch)', '--weights');
  }
  const state = initState(mod, 0);
  loadStateDict(state, decls, modelDecls(decls), w, {
    what: '--weights', model, strict: true, prefix: swa ? 'swa.' : '', known: new Set(tensorNames(artDecls).map((t) => t.name)),
  });

  // the data: as the checkpoint's run had it unless given
  const cfg = sc?.config && typeof sc.config === 'object' ? sc.config : {};
  const dataSpec = flag(p, 'data') ?? (typeof cfg.data === 'string' ? cfg.data : 'mnist');
  try { parseDataSpec(dataSpec); } catch (e) { throw new UsageError((e as Error).message); }
  const seed = p.flags.has('seed') ? intFlag(p, 'seed', 0, 0) : Number.isSafeInteger(sc?.seed) && (sc!.seed as number) >= 0 ? (sc!.seed as number) : 0;
  const g = mod.graphs[0];
  const x = g.nodes.find((n) => n.op === 'input' && n.attrs.name === 'x')!;
  const xent = g.nodes.find((n) => n.op === 'softmax_xent')!;
  const outputs = g.nodes[xent.inputs[0]].type.shape[1];
  const data = loadDataset(dataSpec, { sampleShape: x.type.shape.slice(1), seed, classes: outputs });
  const inputBad = inputProblem(model, x.type, dataSpec, data.test);
  if (inputBad) throw new UsageError(inputBad);
  const mismatch = classesProblem(model, outputs, dataSpec, data.test.classes);
  if (mismatch) throw new UsageError(mismatch);
  if (data.test.n === 0) throw new UsageError(`${dataSpec} has no test images`);

  // a precision schedule (CPT): the widths of the run's last step, as the run's evaluation used them
  let bits;
  if (!fp32 && scheduleOf(precision, 1)) {
    const epochs = Number(cfg.epochs), steps = Number(sc?.position?.globalStep), maxSteps = cfg['max-steps'] === null || cfg['max-steps'] === undefined ? Infinity : Number(cfg['max-steps']);
    if (!sc || !(epochs >= 1) || !(steps >= 1) || !(maxSteps >= 1))
      throw new UsageError(`the artifact's precision has a schedule (${precision}): its widths depend on the training step, so --weights must be a checkpoint folder (or evaluate with --fp32)`);
    const perEpoch = Math.min(Math.floor(data.train.n / batch), maxSteps);
    bits = scheduleOf(precision, epochs * perEpoch)!(steps - 1);
  }

  const backend = await makeBackend(flag(p, 'backend'), mod, true, { budget: 'off', hint: `recompile with a lower --batch (the artifact's is ${batch})` });
  const what = swa ? 'SWA model' : fp32 ? 'full precision (quantizers removed)' : `precision ${precision ?? 'f32'}`;
  process.stderr.write(`lpc: evaluating ${model} (${w.file}${swa ? ', SWA model' : ''}) on ${backend.description}: ${data.test.n} test ${data.test.tokens ? 'sequences' : 'images'} of ${dataSpec}, batch ${batch}, ${what}\n`);
  let r;
  try {
    await backend.setState(state);
    r = await evaluateDetailed(backend, data.test, batch, outputs, bits);
  } finally {
    await backend.dispose();
  }
  process.stdout.write(`test loss ${r.test_loss.toFixed(4)}  test accuracy ${(100 * r.test_accuracy).toFixed(2)}% (${r.samples} ${data.test.tokens ? `sequences` : `images`})\n\n${confusionText(r)}\n`);
  if (jsonPath !== undefined) {
    const out = { artifact: p.positional[0], model, weights: w.file, data: dataSpec, precision: fp32 ? 'f32' : precision ?? 'f32', swa, ...r, ...(bits ? { bits_fwd: bits.fwd, bits_bwd: bits.bwd } : {}) };
    fs.writeFileSync(jsonPath, JSON.stringify(out, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n');
  }
}
