/**
 * Every kernel lpc generates fits the WebGPU baseline limits (8 storage buffers per stage, 16 KiB workgroup
 * storage, 256 invocations per workgroup, 65535 workgroups per dimension), so no kernel fails to compile on a
 * smaller GPU: the whole model zoo, both kernel variants, fp32 and quantized policies (bfp epilogues, CPT's minmax,
 * DIVISION compression). And the resource reading itself is checked on a hand-made kernel.
 */
import * as fs from 'node:fs';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { kernelsForNode, Variant } from '../../codegen/kernels/index.js';
import { WEBGPU_BASELINE, kernelUse, limitViolations } from '../../codegen/limits.js';
import { makeKernel } from '../../codegen/kernels/builder.js';
import { TILED_OPS, allTiles, tileFits } from '../../codegen/kernels/tiles.js';

const SGD = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
const POLICIES: (string | undefined)[] = [
  undefined,
  'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic',
  'W=minmax<8,channel> A=minmax<8,tensor> E=minmax<8,tensor>:stochastic ; schedule fwd=cyclic(3,8) bwd=const(8) ; save=division(block=8,bits=2)',
];
const MODELS = fs.readdirSync('models').filter((f) => f.endsWith('.ts')).map((f) => `models/${f}`);

test('the resources of a kernel are read from it', () => {
  const k = makeKernel({
    name: 't', buffers: Array.from({ length: 9 }, (_, i) => ({ name: `b${i}`, ref: { kind: 'node' as const, id: i }, elem: 'f32' as const, access: 'read' as const })),
    params: {}, invocations: 512, workgroup: 128, decls: 'var<workgroup> a: array<f32, 4096>;\nvar<workgroup> b: array<vec4<f32>, 16>;\n', body: '  a[0] = b[0].x;',
  });
  expect(kernelUse(k)).toEqual({ storageBuffers: 9, uniformBuffers: 1, workgroupStorageBytes: 4096 * 4 + 256, workgroupSize: 128, maxWorkgroupsPerDimension: 4 });
  expect(limitViolations(k, WEBGPU_BASELINE)).toEqual([
    'maxStorageBuffersPerShaderStage: uses 9, the device allows 8',
    'maxComputeWorkgroupStorageSize: uses 16640, the device allows 16384',
  ]);
});

describe.each(MODELS)('%s', (file) => {
  test.each(POLICIES.map((p) => [p ?? 'f32']))('every kernel fits the WebGPU baseline (%s)', (spec) => {
    const precision = spec === 'f32' ? undefined : parsePolicy(spec);
    const batch = 2;
    const m = runPasses(frontEnd(file, batch), { batch, optimizer: SGD, precision });
    const bad: string[] = [];
    for (const variant of ['cpu-driver', 'gpu'] as Variant[])
      for (const g of m.graphs)
        for (const n of g.nodes)
          for (const k of kernelsForNode(g, n.id, { variant })) {
            const v = limitViolations(k, WEBGPU_BASELINE);
            if (v.length) bad.push(`${variant} ${g.name} %${n.id} ${n.op} → ${k.name}: ${v.join('; ')}`);
          }
    expect(bad).toEqual([]);
  });
});

test('every GEMM tile the tuner may pick fits too (LeNet-5 and ResNet-20, bfp epilogues)', () => {
  const bad: string[] = [];
  for (const file of ['models/lenet5.ts', 'models/resnet20.ts']) {
    const m = runPasses(frontEnd(file, 2), { batch: 2, optimizer: SGD, precision: parsePolicy(POLICIES[1]!) });
    for (const g of m.graphs)
      for (const n of g.nodes) {
        if (!TILED_OPS.has(n.op)) continue;
        for (const tile of allTiles(n.op).filter((t) => tileFits(g, n, t)))
          for (const variant of ['cpu-driver', 'gpu'] as Variant[])
            for (const k of kernelsForNode(g, n.id, { variant, tiles: () => tile })) {
              const v = limitViolations(k, WEBGPU_BASELINE);
              if (v.length) bad.push(`${file} ${n.op} ${JSON.stringify(tile)} → ${k.name}: ${v.join('; ')}`);
            }
      }
  }
  expect(bad).toEqual([]);
});
