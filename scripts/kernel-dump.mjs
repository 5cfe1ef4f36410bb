#!/usr/bin/env node
/**
 * Kernels and CPU results of a few compiles, one line each, to compare two lpc trees after a refactor that must not
 * change them: every kernel's key, name, WGSL hash, params, bindings, dispatch and epilogue kind (both variants), and
 * the CPU interpreter's outputs and updates of one training step (LeNet-5), for the precisions below.
 *
 *   node scripts/kernel-dump.mjs /path/to/lpc-a > a.txt; node scripts/kernel-dump.mjs /path/to/lpc-b > b.txt; cmp a.txt b.txt
 *
 * Each path is a repository root with dist/ built (npm run build).
 */
import crypto from 'node:crypto';
const root = (await import('node:path')).resolve(process.argv[2] ?? '.');
process.chdir(root);
const { frontEnd } = await import(`${root}/dist/dsl/frontend.js`);
const { runPasses } = await import(`${root}/dist/passes/pipeline.js`);
const { parsePolicy } = await import(`${root}/dist/ir/precision/index.js`);
const { moduleKernels } = await import(`${root}/dist/runtime/memory.js`);
const { runGraph } = await import(`${root}/dist/runtime/cpu/interpreter.js`);
const { initState } = await import(`${root}/dist/runtime/train/init.js`);
const h = (x) => crypto.createHash('sha256').update(x).digest('hex').slice(0, 16);
const CASES = [
  ['models/lenet5.ts', 4, 'A=bfp<8,axis=0> E=bfp<8,axis=0> W=fixed<8,6> G=fixed<8,6>'],
  ['models/lenet5.ts', 4, 'A=fixed<8,4> E=float<5,2>'],
  ['models/lenet5.ts', 4, 'A=bfp<6,tensor>:stochastic E=float<5,2>:stochastic W=fixed<8,6>:stochastic'],
  ['models/lenet5.ts', 4, ''],
  ['models/resnet20.ts', 2, 'A=bfp<8,axis=0> E=bfp<8,axis=0>'],
  ['models/resnet20.ts', 2, 'A=fixed<8,4> E=float<5,2>:stochastic save=division(block=8,bits=2)'],
  ['models/lenet5.ts', 4, 'A=fixed<8,4> E=fixed<8,4> save=fp16'],
];
const out = [];
for (const [file, batch, spec] of CASES) {
  let precision;
  try { precision = spec ? parsePolicy(spec) : undefined; } catch (e) { out.push(`${file} ${spec}: ${e.message}`); continue; }
  const optimizer = { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 };
  const m = runPasses(frontEnd(file, batch), { batch, optimizer, precision, log: () => {} });
  for (const variant of ['cpu-driver', 'gpu']) {
    const ks = moduleKernels(m, variant);
    for (const [g, per] of ks) per.forEach((list, id) => list.forEach((k, j) =>
      out.push(`${file} ${spec} ${variant} ${g} %${id}.${j} ${k.name} key=${k.key} wgsl=${h(k.wgsl())} params=${Array.from(k.params).join(',')} ` +
        `bind=${JSON.stringify(k.bindings)} disp=${k.dispatch} ep=${k.epilogue ?? ''} clears=${k.clears ?? ''}`)));
  }
  if (file.includes('lenet')) {
    const g = m.graphs.find((x) => x.name === 'train');
    const state = initState(m, 7);
    const feeds = {};
    for (const n of g.nodes) if (n.op === 'input') {
      const size = n.attrs.shape.reduce((a, b) => a * b, 1);
      feeds[n.attrs.name] = n.attrs.dtype === 'i32' ? Int32Array.from({ length: size }, (_, i) => i % 10) : Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37) * 0.5 + (n.attrs.kind === 'scalar' ? 0.5 : 0));
    }
    const r = runGraph(g, feeds, state, { seed: 11, step: 3 });
    for (const [k, v] of Object.entries(r.outputs)) out.push(`${file} ${spec} cpu output ${k} ${h(Buffer.from(new Float32Array(v).buffer))}`);
    for (const [k, v] of r.updates) out.push(`${file} ${spec} cpu update ${k} ${h(Buffer.from(new Float32Array(v).buffer))}`);
  }
}
console.log(out.join('\n'));
