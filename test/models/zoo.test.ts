/**
 * The model zoo (models/resnet{18,20,38,74}.ts, preresnet20.ts, vgg16.ts): parameter counts equal the counts worked
 * out here from each reference architecture, layer by layer; the layer structure (conv/BN/ReLU/add counts,
 * shortcut shapes) matches; every model compiles through the whole pipeline with the verifier after each pass;
 * `--input`/`--classes` reach the model; and one ResNet-20 training step agrees on WebGPU and the CPU interpreter.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { Graph, Module } from '../../ir/graph.js';
import { initState } from '../../runtime/train/init.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { getGpu } from '../../runtime/webgpu/device.js';
import { Backend } from '../../runtime/backend.js';
import { rand, relErr } from '../unit/helpers.js';

const optimizer = { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, wd: 1e-4 };

// ---- the reference architectures as parameter arithmetic (PyTorch's sum(p.numel() for p in parameters())) ----
const conv = (cin: number, cout: number, k: number, bias = false) => cin * cout * k * k + (bias ? cout : 0);
const bn = (c: number) => 2 * c; // γ and β; running mean/var are buffers, not parameters
const fc = (i: number, o: number) => i * o + o;

/** He et al.'s CIFAR ResNet in CPT's layout: stem conv3×3 16 + BN; n BasicBlocks at 16, 32, 64; 1×1 conv + BN
 *  shortcut where the width changes (CPT's downsample + bn3; its unused bn3 on identity blocks are not counted). */
function cptResnet(n: number, classes = 10, cin = 3): number {
  let p = conv(cin, 16, 3) + bn(16), inp = 16;
  for (const w of [16, 32, 64]) for (let i = 0; i < n; i++) {
    p += conv(inp, w, 3) + bn(w) + conv(w, w, 3) + bn(w) + (inp !== w ? conv(inp, w, 1) + bn(w) : 0);
    inp = w;
  }
  return p + fc(64, classes);
}
/** kuangliu's ResNet-18: stem conv3×3 64 + BN; [2,2,2,2] BasicBlocks at 64…512; 1×1 conv + BN shortcuts. */
function kuangliuResnet18(classes = 10, cin = 3): number {
  let p = conv(cin, 64, 3) + bn(64), inp = 64;
  for (const w of [64, 128, 256, 512]) for (let i = 0; i < 2; i++) {
    p += conv(inp, w, 3) + bn(w) + conv(w, w, 3) + bn(w) + (inp !== w ? conv(inp, w, 1) + bn(w) : 0);
    inp = w;
  }
  return p + fc(512, classes);
}
/** SWALP's PreResNet-20: stem conv 16; 3 pre-activation blocks (BN(in), conv, BN, conv) per stage; 1×1 conv
 *  shortcut without BN; final BN(64); fc. */
function swalpPreresnet20(classes = 10): number {
  let p = conv(3, 16, 3), inp = 16;
  for (const w of [16, 32, 64]) for (let i = 0; i < 3; i++) {
    p += bn(inp) + conv(inp, w, 3) + bn(w) + conv(w, w, 3) + (inp !== w ? conv(inp, w, 1) : 0);
    inp = w;
  }
  return p + bn(64) + fc(64, classes);
}
/** SWALP's VGG16: 13 conv3×3 with bias, no BN; classifier 512→512→512→classes. */
function swalpVgg16(classes = 10): number {
  let p = 0, inp = 3;
  for (const w of [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]) { p += conv(inp, w, 3, true); inp = w; }
  return p + fc(512, 512) + fc(512, 512) + fc(512, classes);
}

function params(g: Graph): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const n of g.nodes) if (n.op === 'state' && n.attrs.kind === 'param') out.set(n.attrs.name as string, n.attrs.shape as number[]);
  return out;
}
const count = (ps: Map<string, number[]>) => [...ps.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
const ops = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const trainGraph = (m: Module) => m.graphs.find((g) => g.name === 'train')!;

interface Case { file: string; params: number; conv: number; bn: number; relu: number; add: number; pools: [string, number] }
const n3 = 3 * 3; // BasicBlocks in a 3-stage ResNet with n = 3
const CASES: Case[] = [
  // convs: stem + 2 per block + 2 shortcut convs; BN after each; ReLU after stem and twice per block.
  { file: 'models/resnet20.ts', params: cptResnet(3), conv: 1 + 2 * n3 + 2, bn: 1 + 2 * n3 + 2, relu: 1 + 2 * n3, add: n3, pools: ['avgpool', 1] },
  { file: 'models/resnet38.ts', params: cptResnet(6), conv: 1 + 2 * 18 + 2, bn: 1 + 2 * 18 + 2, relu: 1 + 2 * 18, add: 18, pools: ['avgpool', 1] },
  { file: 'models/resnet74.ts', params: cptResnet(12), conv: 1 + 2 * 36 + 2, bn: 1 + 2 * 36 + 2, relu: 1 + 2 * 36, add: 36, pools: ['avgpool', 1] },
  { file: 'models/resnet18.ts', params: kuangliuResnet18(), conv: 1 + 2 * 8 + 3, bn: 1 + 2 * 8 + 3, relu: 1 + 2 * 8, add: 8, pools: ['avgpool', 1] },
  // pre-activation: 2 BN + ReLU per block plus the final BN + ReLU; shortcut convs have no BN; no ReLU after add.
  { file: 'models/preresnet20.ts', params: swalpPreresnet20(), conv: 1 + 2 * n3 + 2, bn: 2 * n3 + 1, relu: 2 * n3 + 1, add: n3, pools: ['avgpool', 1] },
  { file: 'models/vgg16.ts', params: swalpVgg16(), conv: 13, bn: 0, relu: 15, add: 0, pools: ['maxpool', 5] },
];

describe('model zoo: the architectures', () => {
  test('the reference counts themselves: ResNet-18 11,173,962 (kuangliu), ResNet-20 0.27 M (He et al.), VGG16 conv part 14,714,688', () => {
    expect(kuangliuResnet18()).toBe(11_173_962);
    expect(Math.abs(cptResnet(3) - 0.27e6)).toBeLessThan(0.005e6);
    expect(swalpVgg16() - (fc(512, 512) * 2 + fc(512, 10))).toBe(14_714_688); // VGG16's 13 convs, as torchvision/Keras
  });

  for (const c of CASES) {
    test(`${c.file}: ${c.params.toLocaleString('en')} parameters and the reference's layer structure`, () => {
      const g = trainGraph(frontEnd(c.file, 2));
      expect(count(params(g))).toBe(c.params);
      expect([ops(g, 'conv2d'), ops(g, 'bn_apply'), ops(g, 'relu'), ops(g, 'add'), ops(g, c.pools[0])])
        .toEqual([c.conv, c.bn, c.relu, c.add, c.pools[1]]);
      // No conv has a bias in the ResNets; VGG's all do.
      const biases = [...params(g).keys()].filter((k) => /conv|features|shortcut\.0|downsample/.test(k) && k.endsWith('.bias'));
      expect(biases.length).toBe(c.file.includes('vgg') ? 13 : 0);
    });
  }

  test('shortcuts: 1×1 stride-2 convs with BN where the width changes (ResNets), without BN (PreResNet)', () => {
    const r18 = params(trainGraph(frontEnd('models/resnet18.ts', 2)));
    expect(r18.get('layer2.0.shortcut.0.weight')).toEqual([128, 64, 1, 1]);
    expect(r18.get('layer2.0.shortcut.1.weight')).toEqual([128]);
    expect(r18.has('layer1.0.shortcut.0.weight')).toBe(false);
    expect(r18.get('linear.weight')).toEqual([10, 512]);
    const r20 = params(trainGraph(frontEnd('models/resnet20.ts', 2)));
    expect(r20.get('group3_layer0.downsample.weight')).toEqual([64, 32, 1, 1]);
    expect(r20.get('group3_layer0.bn3.weight')).toEqual([64]);
    expect(r20.has('group1_layer0.downsample.weight')).toBe(false);
    const pre = trainGraph(frontEnd('models/preresnet20.ts', 2));
    expect(params(pre).get('layer2.0.downsample.0.weight')).toEqual([32, 16, 1, 1]);
    // The pre-activation shortcut conv reads the block input itself (the previous add), not BN + ReLU of it.
    const sc = pre.nodes.find((n) => n.op === 'conv2d' && pre.nodes[n.inputs[1]].attrs.name === 'layer2.0.downsample.0.weight')!;
    expect(pre.nodes[sc.inputs[0]].op).toBe('add');
    expect(sc.attrs).toMatchObject({ stride: 2, pad: 0 });
  });
});

describe('model zoo: options and compiling', () => {
  test('--input and --classes reach the model: ResNet-20 on 1×28×28 with 100 classes', () => {
    const g = trainGraph(frontEnd('models/resnet20.ts', 2, { input: [1, 28, 28], classes: 100 }));
    const x = g.nodes.find((n) => n.op === 'input' && n.attrs.name === 'x')!;
    expect(x.type.shape).toEqual([2, 1, 28, 28]);
    expect(count(params(g))).toBe(cptResnet(3, 100, 1));
    const pool = g.nodes.find((n) => n.op === 'avgpool')!;
    expect(pool.attrs.k).toBe(7); // 28 → 28 → 14 → 7: the global pool adapts
    expect(count(params(trainGraph(frontEnd('models/resnet18.ts', 2, { classes: 100 }))))).toBe(kuangliuResnet18(100));
    expect(count(params(trainGraph(frontEnd('models/vgg16.ts', 2, { classes: 100 }))))).toBe(swalpVgg16(100));
  });

  test('clear errors: a model that ignores an option, a VGG input too small; a non-square final map pools adaptively', () => {
    expect(() => frontEnd('test/fixtures/helpers_loop.ts', 2, { classes: 7 }))
      .toThrow("model 'tiny_res' ignores the number of classes 7: its logits have 3; pass the options on, as linear(h, o.classes ?? 3)");
    expect(() => frontEnd('test/fixtures/helpers_loop.ts', 2, { input: [1, 16, 16] }))
      .toThrow("model 'tiny_res' ignores the input shape 1x16x16: its input() is 1x8x8");
    expect(() => frontEnd('models/vgg16.ts', 2, { input: [1, 28, 28] })).toThrow('vgg16 needs inputs [C, H, W] with H and W in 32…63');
    // a non-square final map pools over PyTorch's adaptive windows (models/*: nn.AdaptiveAvgPool2d(1))
    const ns = trainGraph(frontEnd('models/resnet20.ts', 2, { input: [1, 28, 30] }));
    expect(ns.nodes.find((n) => n.op === 'adaptive_avgpool')!.attrs.out_hw).toEqual([1, 1]);
  });

  test('lpc compile --input 1x28x28 --classes 100 (the built CLI) writes graphs with those shapes; bad values are usage errors', () => {
    const lpc = (args: string[]) => spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-zoo-')), 'r20.lpc');
    let r = lpc(['compile', 'models/resnet20.ts', '-o', out, '--input', '1x28x']);
    expect([r.status, r.stderr]).toEqual([2, "lpc: --input must be positive integers like 1x28x28 or 3x32x32, got '1x28x'\n"]);
    r = lpc(['compile', 'models/resnet20.ts', '-o', out, '--classes', '1']);
    expect([r.status, r.stderr]).toEqual([2, "lpc: --classes must be an integer ≥ 2, got '1'\n"]);
    expect(fs.existsSync(out)).toBe(false);
    expect(lpc(['compile', '--help']).stdout).toMatch(/--input CxHxW .*options\.input[\s\S]*--classes N .*options\.classes/);
    r = lpc(['compile', 'models/resnet20.ts', '-o', out, '--batch', '4', '--input', '1x28x28', '--classes', '100']);
    expect(r.status).toBe(0);
    const m = parseModule(fs.readFileSync(path.join(out, 'graph.lpir'), 'utf8'), 'graph.lpir');
    for (const g of m.graphs) {
      expect(g.nodes.find((n) => n.op === 'input' && n.attrs.name === 'x')!.type.shape).toEqual([4, 1, 28, 28]);
      const xent = g.nodes.find((n) => n.op === 'softmax_xent')!;
      expect(g.nodes[xent.inputs[0]].type.shape).toEqual([4, 100]);
    }
  });

  for (const file of ['models/resnet20.ts', 'models/resnet18.ts', 'models/resnet38.ts', 'models/resnet74.ts', 'models/preresnet20.ts', 'models/vgg16.ts']) {
    test(`${file} compiles with the verifier after every pass; print ∘ parse is the identity`, () => {
      const m = runPasses(frontEnd(file, 2), { batch: 2, optimizer, verifyEach: true, log: () => {} });
      const text = printModule(m);
      expect(printModule(parseModule(text, 'x.lpir'))).toBe(text);
      const train = trainGraph(m);
      const updated = new Set(train.updates.map((u) => u.name));
      for (const p of params(train).keys()) expect(updated.has(p)).toBe(true);
    });
  }
});

describe('model zoo: backends agree', () => {
  async function steps(b: Backend, m: Module, feeds: { x: Float32Array; y: Int32Array }[]): Promise<{ losses: number[]; state: Map<string, Float32Array> }> {
    await b.setState(initState(m, 0));
    const losses: number[] = [];
    const lr = new Float32Array([optimizer.lr]);
    for (let s = 0; s < feeds.length; s++) losses.push((await b.run('train', { ...feeds[s], lr }, { seed: 0, step: s }, ['loss'])).loss[0]);
    const state = await b.getState();
    await b.dispose();
    return { losses, state };
  }

  test('ResNet-20, batch 2: two SGD steps on WebGPU and on the CPU interpreter give the same losses (≤ 1e-4 rel) and state', async () => {
    const m = runPasses(frontEnd('models/resnet20.ts', 2), { batch: 2, optimizer, log: () => {} });
    const r = rand(20);
    const feeds = [0, 1].map(() => ({
      x: Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => 2 * r() - 1),
      y: Int32Array.from({ length: 2 }, () => Math.floor(r() * 10)),
    }));
    const cpu = await steps(new CpuBackend(m), m, feeds);
    const gpu = await steps(new WebGpuBackend(await getGpu({ quiet: true }), m), m, feeds);
    for (let i = 0; i < 2; i++) expect(Math.abs(gpu.losses[i] - cpu.losses[i]) / Math.abs(cpu.losses[i])).toBeLessThan(1e-4);
    // The second loss differs from the first: the step moved the weights (and the comparison above saw it).
    expect(cpu.losses[1]).not.toBe(cpu.losses[0]);
    // Every piece of state (weights, BN running statistics, momentum) after the two steps: ≤ 1e-4 of its largest entry.
    for (const [name, v] of cpu.state) expect([name, relErr(gpu.state.get(name)!, v, 1e-6) < 1e-4]).toEqual([name, true]);
  });
});
