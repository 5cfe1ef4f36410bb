/**
 * The memory planner: slot sharing is checked by simulating a step (every read must find its value still in its
 * slot), independently of the planner's own lifetimes; figures by class against independent counts.
 */
import { Builder, Graph, Module, emptyGraph } from '../../ir/graph.js';
import { numel } from '../../ir/types.js';
import { autodiff, GRAD_PREFIX } from '../../passes/autodiff.js';
import { optimizer } from '../../passes/optimizer.js';
import { runPasses } from '../../passes/pipeline.js';
import { frontEnd } from '../../dsl/frontend.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { GraphMemoryPlan, MEM_CLASSES, NodeKernels, classifyValues, planGraphMemory } from '../../passes/memory.js';
import { moduleKernels, nodeKernels, planModule } from '../../runtime/memory.js';
import { rand } from './helpers.js';

const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const SOURCES = new Set(['input', 'state', 'reshape']);

/**
 * Runs the step on slot contents: inputs and cleared scratch are written before the pass; each dispatch of a node
 * reads its inputs and scratch and (from its first dispatch) owns its output slot; outputs and update sources are
 * read after the pass. Fails if a read finds another value in the slot, or a node's output slot is one it reads.
 */
function simulate(g: Graph, p: GraphMemoryPlan, kernels: (id: number) => NodeKernels): void {
  const root = g.nodes.map((n) => n.id);
  for (const n of g.nodes) if (n.op === 'reshape') root[n.id] = root[n.inputs[0]];
  const slotOf = new Map(p.buffers.map((b) => [`${b.node}:${b.scratch ?? ''}`, b.slot]));
  const holder = new Map<number, string>();
  const where = (id: number): number | undefined => (g.nodes[root[id]].op === 'state' ? undefined : slotOf.get(`${root[id]}:`)!);
  const write = (slot: number, v: string) => holder.set(slot, v);
  const read = (slot: number | undefined, v: string, at: string) => {
    if (slot !== undefined) expect(`${at}: slot ${slot} holds ${holder.get(slot)}`).toBe(`${at}: slot ${slot} holds ${v}`);
  };
  for (const n of g.nodes) {
    if (n.op === 'input') { write(where(n.id)!, `%${n.id}`); }
    for (const s of kernels(n.id).scratch) if (s.cleared) write(slotOf.get(`${n.id}:${s.index}`)!, `%${n.id}#${s.index}`);
  }
  for (const n of g.nodes) {
    if (SOURCES.has(n.op)) continue;
    const k = kernels(n.id);
    const own = where(n.id)!;
    for (const i of n.inputs) expect(where(i)).not.toBe(own);
    for (let d = 0; d < Math.max(1, k.dispatches); d++) {
      for (const i of n.inputs) read(where(i), `%${root[i]}`, `%${n.id} dispatch ${d}`);
      for (const s of k.scratch) {
        const slot = slotOf.get(`${n.id}:${s.index}`)!;
        if (d === 0 && !s.cleared) write(slot, `%${n.id}#${s.index}`);
        read(slot, `%${n.id}#${s.index}`, `%${n.id} dispatch ${d}`);
      }
      if (d === 0) write(own, `%${n.id}`);
      read(own, `%${n.id}`, `%${n.id} dispatch ${d}`);
    }
  }
  for (const x of [...g.outputs, ...g.updates]) read(where(x.node), `%${root[x.node]}`, `after the pass (${x.name})`);
}

/** Figures that hold for every plan. */
function checkFigures(p: GraphMemoryPlan): void {
  const stateAligned = p.state.reduce((s, b) => s + b.aligned, 0);
  expect(p.peak_bytes).toBe(stateAligned + p.slots.reduce((s, b) => s + b, 0));
  for (const b of p.buffers) expect(p.slots[b.slot]).toBeGreaterThanOrEqual(b.aligned);
  // Brute force: the largest set of buffers live at one position fits, as does its logical size.
  let maxLive = 0, maxLogical = 0;
  for (let t = -1; t <= p.positions; t++) {
    const live = p.buffers.filter((b) => b.start <= t && t <= b.end);
    maxLive = Math.max(maxLive, live.reduce((s, b) => s + b.aligned, 0));
    maxLogical = Math.max(maxLogical, live.reduce((s, b) => s + b.bytes, 0));
  }
  expect(p.peak_bytes).toBeGreaterThanOrEqual(stateAligned + maxLive);
  expect(p.live_peak_bytes).toBe(p.state.reduce((s, b) => s + b.bytes, 0) + maxLogical);
  expect(MEM_CLASSES.reduce((s, c) => s + p.at_peak[c], 0)).toBe(p.live_peak_bytes);
  for (const c of MEM_CLASSES) expect(p.classes[c]).toBeGreaterThanOrEqual(p.at_peak[c]);
  for (const c of ['weights', 'optimizer'] as const)
    expect(p.classes[c]).toBe(p.state.filter((s) => s.class === c).reduce((t, s) => t + s.bytes, 0));
}

const defaultKernels = (g: Graph) => (id: number): NodeKernels => ({ dispatches: SOURCES.has(g.nodes[id].op) ? 0 : 1, scratch: [] });

describe('memory planner on hand-built graphs', () => {
  test('a chain reuses two buffers; outputs live to the end', () => {
    const g = emptyGraph('g');
    const b = new Builder(g);
    let h = b.add('input', [], { name: 'x', kind: 'data', shape: [64, 64], dtype: 'f32' });
    const x = h;
    for (let i = 0; i < 6; i++) h = b.add('relu', [h]);
    g.outputs.push({ name: 'y', node: h }, { name: 'x', node: x });
    const p = planGraphMemory(g);
    simulate(g, p, defaultKernels(g));
    checkFigures(p);
    // x (kept for output) + two ping-pong buffers.
    expect(p.slots).toEqual([16384, 16384, 16384]);
    expect(p.buffers.find((bb) => bb.node === x)!.end).toBe(p.positions);
    expect(p.buffers.find((bb) => bb.node === h)!.end).toBe(p.positions);
  });

  test('a view aliases its input and extends its lifetime; an update source lives to the end', () => {
    const g = emptyGraph('g');
    const b = new Builder(g);
    const x = b.add('input', [], { name: 'x', kind: 'data', shape: [4, 8], dtype: 'f32' });
    const a = b.add('relu', [x]);                                   // position 0
    const v = b.add('reshape', [a], { shape: [32] });
    let h = b.add('scale', [x], { c: 2 });                          // 1
    for (let i = 0; i < 4; i++) h = b.add('relu', [h]);             // 2..5
    const late = b.add('relu', [v]);                                // 6: reads a through the view
    const w = b.add('state', [], { name: 'w', kind: 'param', shape: [4, 8], init: 'zeros' });
    const upd = b.add('add', [w, h]);                               // 7
    g.outputs.push({ name: 'late', node: late });
    g.updates.push({ name: 'w', node: upd });
    const p = planGraphMemory(g);
    simulate(g, p, defaultKernels(g));
    checkFigures(p);
    expect(p.root[v]).toBe(a);
    expect(p.buffers.some((bb) => bb.node === v)).toBe(false);
    expect(p.buffers.find((bb) => bb.node === a)!.end).toBe(6);
    expect(p.buffers.find((bb) => bb.node === upd)!.end).toBe(p.positions);
    expect(p.state).toEqual([{ name: 'w', bytes: 128, aligned: 128, class: 'weights' }]);
  });

  test('multi-dispatch nodes, scratch (zeroed up front or not) and in-place kernels', () => {
    const g = emptyGraph('g');
    const b = new Builder(g);
    const x = b.add('input', [], { name: 'x', kind: 'data', shape: [256], dtype: 'f32' });
    const ids: number[] = [];
    let h = x;
    for (let i = 0; i < 5; i++) ids.push(h = b.add('relu', [h]));
    g.outputs.push({ name: 'y', node: h });
    // Every relu: 3 dispatches (e.g. compute, bfp block max, quantize in place), scratch 0 zeroed, scratch 1 not.
    const kernels = (id: number): NodeKernels => (ids.includes(id)
      ? { dispatches: 3, scratch: [{ index: 0, bytes: 4, cleared: true }, { index: 1, bytes: 1024, cleared: false }] }
      : { dispatches: 0, scratch: [] });
    const p = planGraphMemory(g, { kernels });
    simulate(g, p, kernels);
    checkFigures(p);
    expect(p.positions).toBe(15);
    const s0 = p.buffers.filter((bb) => bb.scratch === 0);
    // Zeroed before the pass: all live from the start, so no two share.
    expect(new Set(s0.map((bb) => bb.slot)).size).toBe(5);
    for (const bb of s0) expect(bb.start).toBe(-1);
    // Unzeroed scratch lives in its node's dispatches only: they share with each other and with dead values.
    const s1 = p.buffers.filter((bb) => bb.scratch === 1);
    expect(new Set(s1.map((bb) => bb.slot)).size).toBeLessThan(5);
  });

  test('random graphs: a simulated step never finds a value overwritten', () => {
    const r = rand(7);
    for (let trial = 0; trial < 60; trial++) {
      const g = emptyGraph('g');
      const b = new Builder(g);
      const sizes = [4, 16, 64, 100, 256, 1000];
      const vals: number[] = [];
      const nIn = 1 + Math.floor(r() * 3);
      for (let i = 0; i < nIn; i++) vals.push(b.add('input', [], { name: `x${i}`, kind: 'data', shape: [sizes[Math.floor(r() * sizes.length)]], dtype: 'f32' }));
      const nNodes = 5 + Math.floor(r() * 25);
      for (let i = 0; i < nNodes; i++) {
        const a = vals[Math.floor(r() * vals.length)];
        const shape = g.nodes[a].type.shape;
        const same = vals.filter((v) => g.nodes[v].type.shape.join() === shape.join());
        const u = r();
        if (u < 0.15) vals.push(b.add('reshape', [a], { shape: shape.length === 1 ? [1, shape[0]] : [numel(shape)] }));
        else if (u < 0.5) vals.push(b.add('add', [a, same[Math.floor(r() * same.length)]]));
        else vals.push(r() < 0.5 ? b.add('relu', [a]) : b.add('scale', [a], { c: 2 }));
      }
      const nOut = 1 + Math.floor(r() * 3);
      for (let i = 0; i < nOut; i++) g.outputs.push({ name: `o${i}`, node: vals[vals.length - 1 - Math.floor(r() * Math.min(5, vals.length))] });
      const info = new Map<number, NodeKernels>();
      for (const n of g.nodes) {
        if (SOURCES.has(n.op)) { info.set(n.id, { dispatches: 0, scratch: [] }); continue; }
        const scratch = r() < 0.3 ? [{ index: 0, bytes: 4 + Math.floor(r() * 400), cleared: r() < 0.5 }] : [];
        info.set(n.id, { dispatches: 1 + Math.floor(r() * 3), scratch });
      }
      const kernels = (id: number) => info.get(id)!;
      const p = planGraphMemory(g, { kernels });
      simulate(g, p, kernels);
      checkFigures(p);
    }
  });
});

describe('memory classes', () => {
  test('gradients are exactly the parameter gradients autodiff produces; saved activations cross into backward', () => {
    const g = emptyGraph('train');
    const b = new Builder(g);
    const x = b.add('input', [], { name: 'x', kind: 'data', shape: [8, 5], dtype: 'f32' });
    const w0 = b.add('state', [], { name: 'l0.weight', kind: 'param', shape: [6, 5], init: 'zeros' });
    const b0 = b.add('state', [], { name: 'l0.bias', kind: 'param', shape: [6], init: 'zeros' });
    const w1 = b.add('state', [], { name: 'l1.weight', kind: 'param', shape: [3, 6], init: 'zeros' });
    const h = b.add('relu', [b.add('linear', [x, w0, b0])]);
    const logits = b.add('linear', [h, w1]);
    const y = b.add('input', [], { name: 'y', kind: 'label', shape: [8], dtype: 'i32' });
    g.outputs.push({ name: 'loss', node: b.add('softmax_xent', [logits, y]) });
    const diff = autodiff({ version: 1, name: 't', graphs: [g] }).graphs[0];
    const grads = diff.outputs.filter((o) => o.name.startsWith(GRAD_PREFIX)).map((o) => o.node);
    const m: Module = optimizer({ version: 1, name: 't', graphs: [diff] }, sgd);
    const tg = m.graphs[0];
    const root = tg.nodes.map((n) => n.id);
    const { gradients, saved } = classifyValues(tg, root);
    expect([...gradients].sort((a, c) => a - c)).toEqual([...grads].sort((a, c) => a - c));
    // x (for dW0), h (for dW1 and relu', which reads relu's output), logits and labels (for the loss gradient).
    expect([...saved].sort((a, c) => a - c)).toEqual([x, h, logits, y].sort((a, c) => a - c));
    const p = planGraphMemory(tg);
    simulate(tg, p, defaultKernels(tg));
    checkFigures(p);
    const params = (6 * 5 + 6 + 3 * 6) * 4;
    expect(p.classes.weights).toBe(params);
    expect(p.classes.optimizer).toBe(params); // momentum
    expect(p.classes.gradients).toBe(params); // all alive once backward is done
    expect(p.classes.saved_activations).toBe((8 * 5 + 8 * 6 + 8 * 3 + 8) * 4);
  });

  const lenetParams = (6 * 1 * 5 * 5 + 6) + (16 * 6 * 5 * 5 + 16) + (120 * 400 + 120) + (84 * 120 + 84) + (10 * 84 + 10);

  for (const [label, spec] of [['fp32', undefined], ['bfp8 everywhere', 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic ACC=fixed<16,12>']] as const) {
    test(`LeNet-5 (${label}): simulated steps of both graphs, and figures by class`, () => {
      const m = runPasses(frontEnd('models/lenet5.ts', 16), { batch: 16, optimizer: sgd, precision: spec ? parsePolicy(spec) : undefined, log: () => {} });
      for (const variant of ['cpu-driver', 'gpu'] as const) {
        const kernels = moduleKernels(m, variant);
        const plan = planModule(m, variant, kernels);
        m.graphs.forEach((g, i) => {
          simulate(g, plan.graphs[i], (id) => nodeKernels(g, id, kernels.get(g.name)![id]));
          checkFigures(plan.graphs[i]);
        });
        const [train, evalp] = plan.graphs;
        expect(train.classes.weights).toBe(4 * lenetParams);
        expect(evalp.classes.weights).toBe(4 * lenetParams);
        expect(train.classes.optimizer).toBe(4 * lenetParams * (spec?.includes('ACC') ? 2 : 1));
        expect(evalp.classes.optimizer).toBe(0);
        expect(train.classes.gradients).toBe(4 * lenetParams);
        expect(evalp.classes.gradients + evalp.classes.saved_activations).toBe(0);
        // x, the conv outputs of both blocks (ReLU fused into them: relu_bwd reads the result) and pool outputs,
        // the linear outputs (ReLU fused), logits, labels.
        const saved = 16 * (784 + 6 * 784 + 6 * 196 + 16 * 100 + 16 * 25 + 120 + 84 + 10 + 1);
        expect(train.classes.saved_activations).toBe(4 * saved);
        expect(plan.allocated_bytes).toBeLessThan(train.peak_bytes + evalp.peak_bytes);
      }
    });
  }
});
