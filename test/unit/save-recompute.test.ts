/**
 * save=recompute (passes/compress.ts recomputeGraph): cheap forward ops re-run in backward instead of saving their
 * results — placement, a CPU training step bit-identical to saving everything, and the planner's saved bytes.
 */
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { forwardBackward } from '../../passes/compress.js';
import { planModuleMemory } from '../../passes/memory.js';
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { initState } from '../../runtime/train/init.js';
import { rand } from './helpers.js';

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
function compile(file: string, batch: number, spec?: string, input?: number[]) {
  return runPasses(frontEnd(file, batch, input ? { input } : {}), { batch, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
}
const train = (m: ReturnType<typeof compile>) => m.graphs.find((g) => g.name === 'train')!;

test('residual BN net: relu/bn_apply/add/maxpool outputs recomputed in backward from the saved conv outputs and statistics', () => {
  const m = compile('test/fixtures/resbn.ts', 2, 'save=recompute'), g = train(m);
  const { fwd, bwd } = forwardBackward(g);
  // backward never reads a forward bn_apply or max/avg pool (always recomputable from what it keeps); a relu or add
  // stays saved only where its inputs are not kept (the 1×1 shortcut conv has no BN to keep its output)
  for (const nd of g.nodes) {
    if (!bwd[nd.id]) continue;
    // (a bn_apply with folded post-ops is the relu(add(…)) after it, after fusion)
    for (const v of nd.inputs) if (['bn_apply', 'maxpool', 'avgpool'].includes(g.nodes[v].op) && !g.nodes[v].epi?.post) expect(fwd[v]).toBe(false);
  }
  const clones = g.nodes.filter((nd) => !fwd[nd.id] && ['relu', 'bn_apply', 'add', 'maxpool'].includes(nd.op));
  // (after fusion a recomputed relu rides on its recomputed bn_apply as a post-op)
  expect(clones.some((n) => n.op === 'bn_apply')).toBe(true);
  expect(clones.some((n) => n.op === 'maxpool')).toBe(true);
  // clones read only forward values backward keeps (conv outputs, statistics), states, inputs or other clones
  for (const c of clones) for (const u of c.inputs) expect(['conv2d', 'bn_stats', 'state', 'input', 'relu', 'bn_apply', 'add', 'maxpool', 'reshape'].includes(g.nodes[u].op)).toBe(true);
  expect(m.graphs.find((x) => x.name === 'eval')).toEqual(compile('test/fixtures/resbn.ts', 2).graphs.find((x) => x.name === 'eval'));
});

test('a CPU training step with save=recompute is bit-identical to saving everything', () => {
  const batch = 3, mf = compile('test/fixtures/resbn.ts', batch), mr = compile('test/fixtures/resbn.ts', batch, 'save=recompute');
  const r = rand(11);
  const feeds = {
    x: Float32Array.from({ length: batch * 3 * 28 * 28 }, () => r() * 2 - 1),
    y: Int32Array.from({ length: batch }, () => Math.floor(r() * 10)), lr: new Float32Array([0.05]),
  };
  const state = initState(mf, 0);
  const a = runGraph(train(mf), feeds, state, { seed: 1, step: 0 }), b = runGraph(train(mr), feeds, state, { seed: 1, step: 0 });
  expect(Array.from(b.outputs.loss)).toEqual(Array.from(a.outputs.loss));
  expect([...b.updates.keys()].sort()).toEqual([...a.updates.keys()].sort());
  for (const [name, v] of a.updates) expect({ name, v: Array.from(b.updates.get(name)!) }).toEqual({ name, v: Array.from(v) });
}, 60000);

test.each([['models/resnet20.ts', 8, [3, 32, 32]], ['models/lenet5.ts', 16, undefined]] as const)('%s batch %i: fewer saved bytes, the recomputed values no longer saved', (file, batch, input) => {
  const pf = planModuleMemory(compile(file, batch, undefined, input as number[] | undefined)).graphs.find((p) => p.graph === 'train')!;
  const mr = compile(file, batch, 'save=recompute', input as number[] | undefined), g = train(mr);
  const pr = planModuleMemory(mr).graphs.find((p) => p.graph === 'train')!;
  expect(pr.classes.saved_activations).toBeLessThan(pf.classes.saved_activations * (file.includes('resnet') ? 0.6 : 0.9));
  const { fwd } = forwardBackward(g);
  for (const b of pr.buffers.filter((x) => x.class === 'saved_activations'))
    expect({ op: g.nodes[b.node].op, recomputed: g.nodes.some((n) => !fwd[n.id] && n.op === g.nodes[b.node].op && n.attrs === g.nodes[b.node].attrs) }).toEqual({ op: g.nodes[b.node].op, recomputed: false });
});
