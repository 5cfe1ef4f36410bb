/**
 * ReLU6 after a quantizer (`npm run build && node dist/bench/relu6-fusion.js [--batch 8] [--input 3x32x32]
 * [--rounds 4] [--spec '<precision>']`): MobileNetV2's training step under the SWALP-style bfp<8> recipe
 * (bench/recipes.ts) compiled twice — with the fusion rules as they are (relu6 of a bfp<8> value stays on its grid:
 * its quantizer goes, relu6 and its backward run after their producer's quantizer, passes/fuse.ts) and with relu6 not
 * claimed (FUSION_RULES_WITHOUT_RELU6: relu6 stores through its own quantizer in a kernel of its own, its backward
 * recomputes relu6 in another) — on the WebGPU adapter, one step of each per round (a drift hits both). Prints the
 * dispatches per step of each and the ratio of the median step times (wall and process CPU time); nothing is
 * asserted (speed targets live here, not in unit tests).
 */
import { frontEnd } from '../dsl/frontend.js';
import { dce, Module } from '../ir/graph.js';
import { verifyModule } from '../ir/verify.js';
import { parsePolicy } from '../ir/precision/index.js';
import { runPasses } from '../passes/pipeline.js';
import { FUSION_RULES_WITHOUT_RELU6, applyRuleToModule } from '../passes/fuse.js';
import { initState } from '../runtime/train/init.js';
import { getGpu, shutdownGpu } from '../runtime/webgpu/device.js';
import { tunedWebGpuBackend } from '../runtime/cli/backends.js';
import { Flags } from './common.js';
import { RECIPES } from './recipes.js';

const flags = new Flags();
const BATCH = flags.int('--batch', 8);
const rounds = flags.int('--rounds', 4);
const inputText = flags.str('--input') ?? '3x32x32';
const input = inputText.split('x').map(Number);
if (input.length !== 3 || !input.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`--input must be CxHxW, got '${inputText}'`);
const spec: string = flags.str('--spec') ?? RECIPES.swalp_bfp8.spec!;
const opts = { batch: BATCH, optimizer: { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: parsePolicy(spec), log: () => {} };
const front = () => frontEnd('models/mobilenetv2.ts', BATCH, { input });

/** The pipeline with fusion off, then the fusion rules without relu6's, then dce (the pipeline's order; no DIVISION). */
function withoutRelu6(): Module {
  let m = runPasses(front(), { ...opts, fuse: false });
  for (const rule of FUSION_RULES_WITHOUT_RELU6) m = applyRuleToModule(rule, m);
  m = { ...m, graphs: m.graphs.map(dce) };
  verifyModule(m);
  return m;
}

const gpu = await getGpu({ quiet: true });
const n = BATCH * input[0] * input[1] * input[2];
const feeds = {
  x: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 1.5),
  y: Int32Array.from({ length: BATCH }, (_, i) => i % 10), lr: new Float32Array([0.05]),
};
const arms = [];
for (const [name, m] of [['relu6 separate', withoutRelu6()], ['relu6 fused', runPasses(front(), opts)]] as const) {
  const b = await tunedWebGpuBackend(gpu, m);
  await b.setState(initState(m, 0));
  const loss = (await b.run('train', feeds, { seed: 1, step: 0 }, ['loss'])).loss[0]; // pipelines compile at first use
  const relu6Nodes = m.graphs.find((g) => g.name === 'train')!.nodes.filter((x) => x.op === 'relu6' || x.op === 'relu6_bwd').length;
  arms.push({ name, b, loss, relu6Nodes, kernels: b.kernels('train').length, times: [] as number[], cpu: [] as number[] });
}
let step = 1;
for (let round = 0; round < rounds; round++)
  for (const a of arms) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    await a.b.run('train', feeds, { seed: 1, step: step++ }, ['loss']);
    a.times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    a.cpu.push((c.user + c.system) / 1000);
  }
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const [sep, fused] = arms;
const result = {
  adapter: gpu.adapterDescription, model: 'mobilenetv2', batch: BATCH, input: inputText, precision: spec, steps_per_arm: rounds,
  ...Object.fromEntries(arms.map((a) => [a.name, {
    dispatches_per_step: a.kernels, relu6_nodes: a.relu6Nodes, first_loss: a.loss, step_ms: median(a.times), cpu_ms: median(a.cpu), steps_ms: a.times.map((t) => Math.round(t)),
  }])),
  separate_over_fused: median(sep.times) / median(fused.times), cpu_separate_over_fused: median(sep.cpu) / median(fused.cpu),
};
console.log(JSON.stringify(result, null, 1));
for (const a of arms)
  console.log(`${a.name.padEnd(15)} ${String(a.kernels).padStart(5)} dispatches/step  ${median(a.times).toFixed(1).padStart(9)} ms/step  CPU ${median(a.cpu).toFixed(1)} ms`);
console.log(`separate / fused: ×${result.separate_over_fused.toFixed(3)} wall, ×${result.cpu_separate_over_fused.toFixed(3)} CPU time`);
for (const a of arms) await a.b.dispose();
await shutdownGpu();
