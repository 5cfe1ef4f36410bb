/**
 * Block statistics tracked by a producer's stores (builder.ts trackEpilogue): a tensor-wide block keeps a running
 * maximum per invocation and folds it with one atomic when main ends; per-block layouts fold each store. The values
 * are checked bit for bit on the GPU (test/webgpu/epilogue.test.ts); this checks the shape of the WGSL.
 */
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { isTrackEpilogue, makeKernel, trackEpilogue } from '../../codegen/kernels/builder.js';

const SWALP = 'W=bfp<8,axis=0>:stochastic A=bfp<8>:stochastic E=bfp<8>:stochastic G=bfp<8,axis=0>:stochastic M=bfp<8,axis=0>:stochastic';

/** The WGSL of `fn name` (up to its closing brace at column 0). */
const fnText = (src: string, name: string) => {
  const a = src.indexOf(`fn ${name}(`);
  return a < 0 ? '' : src.slice(a, src.indexOf('\n}\n', a) + 2);
};

test('ResNet-20 (SWALP bfp<8>): tensor-wide tracking stores fold into a register, one atomic per invocation', () => {
  const m = runPasses(frontEnd('models/resnet20.ts', 4), { batch: 4, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: parsePolicy(SWALP) });
  const g = m.graphs.find((x) => x.name === 'train')!;
  let tracked = 0;
  for (const n of g.nodes) {
    for (const k of kernelsForNode(g, n.id, { variant: 'cpu-driver' })) {
      if (!isTrackEpilogue(k.epilogue)) continue;
      tracked++;
      const src = k.wgsl();
      expect(fnText(src, 'lpc_track')).not.toContain('atomic');
      expect(src.match(/atomicMax/g)).toHaveLength(1);
      expect(fnText(src, 'main').lastIndexOf('atomicMax')).toBeGreaterThan(fnText(src, 'main').lastIndexOf('lpc_track('));
    }
  }
  expect(tracked).toBeGreaterThan(60); // every conv, bn_apply, bn input gradient, residual add, conv input gradient
});

test('per-block layouts fold each store into its own block', () => {
  const ep = trackEpilogue({ kind: 'bfp', wl: 8, axis: 0 }, [6, 5]);
  expect(ep.finish).toBeUndefined();
  expect(ep.decls).toContain('atomicMax(&q_stats[b]');
  const mm = trackEpilogue({ kind: 'minmax', bits: 4, per: 'tensor' }, [6, 5]);
  expect(mm.finish!.match(/atomicMax/g)).toHaveLength(2); // max key(x) and max key(−x)
});

test('a body that returns early cannot skip a finish', () => {
  const spec = { name: 'k', buffers: [], params: {}, invocations: 4, epilogue: trackEpilogue({ kind: 'bfp', wl: 8, axis: 'tensor' }, [4]) };
  expect(() => makeKernel({ ...spec, body: '  if (t == 0u) { return; }' })).toThrow(/returns/);
  expect(() => makeKernel({ ...spec, body: '  let x = 1u;' })).not.toThrow();
});
