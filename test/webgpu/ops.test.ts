/**
 * Every op's WebGPU kernels against the op table's CPU semantics (float64) on fresh random inputs: shapes that are
 * not multiples of the 4×4 register tiles, stride 2 and padding for convolutions, odd spatial sizes for pooling,
 * ties for max pooling and argmax, labels of −1, and a 2-D grid past 65535 workgroups. Quantizers are compared bit
 * for bit with ir/quant/quantize.ts in both roundings. Needs a WebGPU adapter (setup.sh installs a CPU driver).
 */
import { Attrs, Builder, Graph, emptyGraph } from '../../ir/graph.js';
import { allOps, getOp } from '../../ir/ops/index.js';
import { Format } from '../../ir/format.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import { grid1d, hasKernel, kernelsForNode } from '../../codegen/kernels/index.js';
import { getGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { rand as seededRandom } from '../unit/helpers.js';
import { TEST_SEED } from './gpu-fixture.js';

let device: GPUDevice;
let cache: PipelineCache;
beforeAll(async () => {
  device = (await getGpu({ quiet: true })).device;
  cache = new PipelineCache(device);
});

// ---- fresh random data, reproducible from the seed printed on failure ----
const SEED = TEST_SEED;
const rand = seededRandom(SEED);
function uniform(n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}
const smallInts = (n: number, k: number) => Float32Array.from({ length: n }, () => Math.floor(rand() * k));
/** Labels in [0, classes), about one in five −1 (padding of a partial batch). */
const labels = (n: number, classes: number) => Int32Array.from({ length: n }, () => (rand() < 0.2 ? -1 : Math.floor(rand() * classes)));

interface In { shape: number[]; data?: HostArray }

/** A graph of input nodes feeding one `op` node. */
function build(op: string, ins: In[], attrs: Attrs): { g: Graph; id: number; feeds: Map<number, HostArray> } {
  const g = emptyGraph('t');
  const b = new Builder(g);
  const feeds = new Map<number, HostArray>();
  const ids = ins.map((x, i) => {
    const data = x.data ?? uniform(numel(x.shape));
    const id = b.add('input', [], { name: `x${i}`, kind: 'data', shape: x.shape, dtype: data instanceof Int32Array ? 'i32' : 'f32' });
    feeds.set(id, data);
    return id;
  });
  return { g, id: b.add(op, ids, attrs), feeds };
}

/** The op table's CPU semantics in float64. */
function cpuRef(g: Graph, id: number, feeds: Map<number, HostArray>, rng = { seed: 0, step: 0 }): Float64Array {
  const n = g.nodes[id];
  const out = new Float64Array(numel(n.type.shape));
  getOp(n.op).cpu(n.inputs.map((i) => Float64Array.from(feeds.get(i)!)), out, {
    attrs: n.attrs, inTypes: n.inputs.map((i) => g.nodes[i].type), type: n.type, epi: n.epi, rng: { ...rng, tensorId: id },
  });
  return out;
}

async function gpuRun(g: Graph, id: number, feeds: Map<number, HostArray>, step = { seed: 0, step: 0 }): Promise<Float32Array> {
  const { values } = await runKernels(device, g, { feeds, run: [id], read: [id], step, pipelines: cache });
  return values.get(id) as Float32Array;
}

/**
 * Tolerance: the GPU accumulates in f32, the spec in float64. f32 rounding error of a sum grows with the magnitude
 * of its terms, not with the (possibly cancelled) result, so an element near zero in a tensor of large values may
 * legitimately differ by more than 1e-5 of itself. Each element is therefore held to 1e-5 of the largest magnitude
 * in the reference output (a relative max-norm bound), with a 1e-30 floor for all-zero outputs. For the sizes here
 * (reductions of ≤ 10⁴ terms) the worst observed error is about 0.12 of this bound (sum_channel over 9240 terms),
 * most kernels 0.03 or less.
 */
function expectClose(what: string, gpu: ArrayLike<number>, ref: Float64Array, rel = 1e-5, termScale = 0): void {
  expect(gpu.length).toBe(ref.length);
  let scale = termScale; // an output that cancels large terms (a loss: log-sum-exp − logit) is held to their magnitude
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  const tol = rel * Math.max(scale, 1e-30);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(gpu[i] - ref[i]);
    if (!(e <= tol) && (worst < 0 || e > worstErr || Number.isNaN(e))) { worst = i; worstErr = e; }
  }
  if (worst >= 0)
    throw new Error(`${what}: element ${worst} gpu=${gpu[worst]} cpu=${ref[worst]} (|err| ${worstErr} > ${tol}); data seed ${SEED}`);
}

async function check(op: string, ins: In[], attrs: Attrs = {}, what = op, termScale = 0): Promise<void> {
  const { g, id, feeds } = build(op, ins, attrs);
  expectClose(`${what} ${JSON.stringify(ins.map((x) => x.shape))} ${JSON.stringify(attrs)}`, await gpuRun(g, id, feeds), cpuRef(g, id, feeds), 1e-5, termScale);
}

test('every op in the table has kernels (or needs none)', () => {
  expect(allOps().map((d) => d.name).filter((n) => !hasKernel(n))).toEqual([]);
});

test('sources and views have no kernels; an op without a kernel is a clear error', () => {
  const { g, id } = build('reshape', [{ shape: [2, 6] }], { shape: [3, 4] });
  expect(kernelsForNode(g, 0, {})).toEqual([]);
  expect(kernelsForNode(g, id, {})).toEqual([]);
  g.nodes.push({ ...g.nodes[id], id: g.nodes.length, op: 'fancy_op' });
  expect(() => kernelsForNode(g, g.nodes.length - 1, {})).toThrow(/no WebGPU kernel for op 'fancy_op'/);
});

test('grid1d spills into y past 65535 workgroups and covers every invocation', () => {
  expect(grid1d(100, 64)).toEqual([2, 1, 1]);
  expect(grid1d(65535 * 64, 64)).toEqual([65535, 1, 1]);
  const [x, y] = grid1d(65536 * 64 + 1, 64);
  expect(y).toBeGreaterThan(1);
  expect(x).toBeLessThanOrEqual(65535);
  expect(x * y * 64).toBeGreaterThanOrEqual(65536 * 64 + 1);
});

test('fill', async () => {
  await check('fill', [], { shape: [3, 5], value: 0.7 });
  await check('fill', [], { shape: [1027], value: -2.5 });
});

describe('elementwise (one generator, vec4 and scalar paths)', () => {
  const ewOps = allOps().filter((d) => d.ew);
  for (const d of ewOps) {
    test(d.name, async () => {
      const scalars = d.ew!.scalarInputs ?? [];
      const attrs: Attrs = d.name === 'scale' ? { c: -1.5 } : d.name === 'add_const' ? { c: 0.3 } : {};
      // the domain of each op: sqrt of non-negatives, division by numbers away from zero
      const data = (i: number, n: number) => (d.name === 'sqrt' ? uniform(n, 0, 4) : (d.name === 'div' || d.name === 'div_scalar') && i === 1 ? uniform(n, 0.5, 2) : undefined);
      for (const shape of [[4, 8], [3, 7], [1]]) {
        const ar = typeof d.arity === 'number' ? d.arity : d.arity[0];
        await check(d.name, Array.from({ length: ar }, (_, i) => {
          const sh = scalars.includes(i) ? [1] : shape, v = data(i, numel(sh));
          return v ? { shape: sh, data: v } : { shape: sh };
        }), attrs);
      }
    });
  }

  test('more than 65535 workgroups use a 2-D grid', async () => {
    // fill is one element per invocation: 65540 groups of 256 (elementwise ops do 4 per invocation, so they would
    // need more elements than one binding may hold to get here)
    const n = 65536 * 256 + 1001;
    const { g, id, feeds } = build('fill', [], { shape: [n], value: 0.25 });
    expect(kernelsForNode(g, id, {})[0].dispatch[1]).toBeGreaterThan(1);
    const y = await gpuRun(g, id, feeds);
    let bad = -1;
    for (let i = 0; i < n; i++) if (y[i] !== 0.25) { bad = i; break; } // no Math.*: global lookups are slow in jest's vm
    expect(bad).toBe(-1);
  });
});

describe('dense', () => {
  test('vec4 matmul variant is picked exactly when K and the leading dimensions are multiples of 4', () => {
    const name = (a: number[], b: number[], ta: boolean, tb: boolean) => {
      const { g, id } = build('matmul', [{ shape: a }, { shape: b }], { ta, tb });
      return kernelsForNode(g, id, {})[0].name;
    };
    expect(name([7, 12], [12, 16], false, false)).toBe('matmul_vec4');
    expect(name([7, 12], [12, 9], false, false)).toBe('matmul');
    expect(name([12, 7], [12, 16], true, false)).toBe('matmul_ta');
    expect(name([12, 8], [9, 12], true, true)).toBe('matmul_ta_tb_vec4');
  });

  test('linear with and without bias', async () => {
    for (const [n, k, o] of [[5, 13, 7], [33, 70, 10], [1, 1, 1], [4, 8, 4], [5, 16, 7], [9, 32, 11]]) {
      await check('linear', [{ shape: [n, k] }, { shape: [o, k] }]);
      await check('linear', [{ shape: [n, k] }, { shape: [o, k] }, { shape: [o] }]);
    }
  });

  test('matmul, every ta/tb, odd sizes and vec4-aligned ones', async () => {
    for (const [m, n, k] of [[6, 9, 11], [37, 41, 29], [1, 5, 3], [8, 8, 8], [7, 12, 16], [12, 8, 20], [16, 20, 12]])
      for (const ta of [false, true]) for (const tb of [false, true])
        await check('matmul', [{ shape: ta ? [k, m] : [m, k] }, { shape: tb ? [n, k] : [k, n] }], { ta, tb });
  });

  test('sum_channel (4-D, 2-D, and long enough to split)', async () => {
    for (const shape of [[5, 3, 7, 9], [37, 11], [8, 4, 33, 35], [1, 1, 1, 1]]) await check('sum_channel', [{ shape }]);
  });
});

describe('convolution', () => {
  const cases = [
    { n: 2, c: 3, h: 9, w: 11, o: 5, kh: 3, kw: 3, stride: 1, pad: 1 },
    { n: 3, c: 2, h: 10, w: 7, o: 6, kh: 3, kw: 2, stride: 2, pad: 1 },
    { n: 1, c: 4, h: 8, w: 8, o: 7, kh: 5, kw: 5, stride: 1, pad: 2 },
    { n: 2, c: 3, h: 7, w: 7, o: 4, kh: 1, kw: 1, stride: 2, pad: 0 },
    { n: 2, c: 5, h: 11, w: 9, o: 9, kh: 4, kw: 4, stride: 3, pad: 2 },
    { n: 4, c: 1, h: 12, w: 12, o: 6, kh: 5, kw: 5, stride: 1, pad: 0 },
    { n: 1, c: 6, h: 6, w: 5, o: 3, kh: 3, kw: 3, stride: 2, pad: 2 },
    { n: 2, c: 3, h: 8, w: 11, o: 5, kh: 2, kw: 2, stride: 3, pad: 0 },
  ];
  for (const k of cases) {
    const tag = `${k.n}x${k.c}x${k.h}x${k.w} → ${k.o}, ${k.kh}x${k.kw} s${k.stride} p${k.pad}`;
    const oh = Math.floor((k.h + 2 * k.pad - k.kh) / k.stride) + 1, ow = Math.floor((k.w + 2 * k.pad - k.kw) / k.stride) + 1;
    const x = { shape: [k.n, k.c, k.h, k.w] }, w = { shape: [k.o, k.c, k.kh, k.kw] }, dy = { shape: [k.n, k.o, oh, ow] };
    test(`conv2d ${tag}`, async () => {
      await check('conv2d', [x, w], { stride: k.stride, pad: k.pad });
      await check('conv2d', [x, w, { shape: [k.o] }], { stride: k.stride, pad: k.pad });
    });
    test(`conv2d_bwd_data ${tag}`, async () => {
      await check('conv2d_bwd_data', [dy, w], { stride: k.stride, pad: k.pad, in_hw: [k.h, k.w] });
    });
    test(`conv2d_bwd_weight ${tag}`, async () => {
      await check('conv2d_bwd_weight', [dy, x], { stride: k.stride, pad: k.pad, k_hw: [k.kh, k.kw] });
    });
  }
  test('conv2d_bwd_weight with a long reduction (split into chunks)', async () => {
    await check('conv2d_bwd_weight', [{ shape: [16, 6, 28, 28] }, { shape: [16, 1, 32, 32] }], { stride: 1, pad: 0, k_hw: [5, 5] });
  });
});

describe('pooling', () => {
  const cases = [
    { shape: [2, 3, 7, 5], k: 2, stride: 2 },
    { shape: [1, 2, 9, 8], k: 3, stride: 2 },
    { shape: [2, 2, 6, 7], k: 3, stride: 1 },
    { shape: [1, 3, 5, 5], k: 2, stride: 3 },
    { shape: [2, 2, 10, 11], k: 3, stride: 3 },
  ];
  for (const c of cases) {
    const attrs = { k: c.k, stride: c.stride };
    const oh = Math.floor((c.shape[2] - c.k) / c.stride) + 1, ow = Math.floor((c.shape[3] - c.k) / c.stride) + 1;
    const dy = { shape: [c.shape[0], c.shape[1], oh, ow] };
    test(`${JSON.stringify(c)}`, async () => {
      await check('maxpool', [{ shape: c.shape }], attrs);
      await check('avgpool', [{ shape: c.shape }], attrs);
      await check('maxpool_bwd', [dy, { shape: c.shape }], attrs);
      // ties everywhere: the first maximum in row-major window order must get the gradient
      await check('maxpool_bwd', [dy, { shape: c.shape, data: smallInts(numel(c.shape), 2) }], attrs, 'maxpool_bwd ties');
      await check('avgpool_bwd', [dy], { ...attrs, in_hw: c.shape.slice(2) });
    });
  }
});

describe('batch norm', () => {
  const eps = 1e-5;
  /** Batch statistics of x from the spec, as f32 (what bn_stats feeds the other kernels). */
  function stats(shape: number[], x: Float32Array): Float32Array {
    const { g, id, feeds } = build('bn_stats', [{ shape, data: x }], {});
    return Float32Array.from(cpuRef(g, id, feeds));
  }
  /** bn_bwd_sums of (dy, x) from the spec, as f32 (what bn_bwd_x reads). */
  function sums(shape: number[], dy: Float32Array, x: Float32Array, st: Float32Array): Float32Array {
    const { g, id, feeds } = build('bn_bwd_sums', [{ shape, data: dy }, { shape, data: x }, { shape: [2, shape[1]], data: st }], { eps });
    return Float32Array.from(cpuRef(g, id, feeds));
  }
  for (const shape of [[4, 3, 5, 7], [16, 5], [8, 3, 32, 33]]) {
    const C = shape[1], n = numel(shape);
    test(`bn ops ${JSON.stringify(shape)}`, async () => {
      const x = uniform(n);
      const st = stats(shape, x);
      await check('bn_stats', [{ shape, data: x }]);
      await check('bn_stats', [{ shape, data: uniform(n, 9, 11) }], {}, 'bn_stats |mean| ≫ std');
      await check('bn_apply', [{ shape, data: x }, { shape: [2, C], data: st }, { shape: [C] }, { shape: [C] }], { eps, training: true });
      const dy = uniform(n);
      await check('bn_bwd_sums', [{ shape, data: dy }, { shape, data: x }, { shape: [2, C], data: st }], { eps });
      await check('bn_bwd_x', [{ shape, data: dy }, { shape, data: x }, { shape: [2, C], data: st }, { shape: [C] },
        { shape: [2, C], data: sums(shape, dy, x, st) }], { eps });
      await check('row', [{ shape: [2, C] }], { index: 1 });
      await check('bn_bwd_x_eval', [{ shape }, { shape: [2, C], data: st }, { shape: [C] }], { eps });
    });
  }
  test('bn_running_update', async () => {
    const C = 7;
    const r = Float32Array.from([...uniform(C), ...uniform(C, 0.1, 2)]);
    const st = Float32Array.from([...uniform(C), ...uniform(C, 0.1, 2)]);
    for (const count of [64, 1])
      await check('bn_running_update', [{ shape: [2, C], data: r }, { shape: [2, C], data: st }], { momentum: 0.1, count });
  });
});

describe('loss and metrics', () => {
  test('softmax_xent', async () => {
    // the loss is log-sum-exp − logit, terms up to |3|: f32 rounding of those terms bounds its error
    for (const [n, k] of [[9, 10], [1, 3], [70, 100]]) await check('softmax_xent', [{ shape: [n, k], data: uniform(n * k, -3, 3) }, { shape: [n], data: labels(n, k) }], {}, 'softmax_xent', 3);
    await check('softmax_xent', [{ shape: [3, 4] }, { shape: [3], data: Int32Array.from([-1, -1, -1]) }], {}, 'softmax_xent, no labels');
  });
  test('softmax_xent_bwd', async () => {
    for (const [n, k] of [[9, 10], [70, 100]])
      await check('softmax_xent_bwd', [{ shape: [n, k], data: uniform(n * k, -3, 3) }, { shape: [n], data: labels(n, k) }, { shape: [1], data: uniform(1, 0.5, 2) }]);
  });
  test('correct_count (ties: the first maximum is the prediction)', async () => {
    for (const [n, k] of [[33, 10], [5, 2]])
      await check('correct_count', [{ shape: [n, k], data: smallInts(n * k, 3) }, { shape: [n], data: labels(n, k) }]);
  });
});

describe('quantize: bit-exact with ir/quant/quantize.ts', () => {
  const fmts: [string, Format][] = [
    ['fixed<8,6>', { kind: 'fixed', wl: 8, fl: 6 }],
    ['fixed<6,3,sym>', { kind: 'fixed', wl: 6, fl: 3, sym: true }],
    ['fixed<8,4,noclamp>', { kind: 'fixed', wl: 8, fl: 4, noclamp: true }],
    ['float<5,2>', { kind: 'float', exp: 5, man: 2 }],
    ['bf16', { kind: 'float', exp: 8, man: 7 }],
    ['bfp<8,tensor>', { kind: 'bfp', wl: 8, axis: 'tensor' }],
    ['bfp<6,axis=0>', { kind: 'bfp', wl: 6, axis: 0 }],
    ['bfp<5,axis=1>', { kind: 'bfp', wl: 5, axis: 1 }],
  ];
  /** Values over many binades, exact zeros and both signs. */
  function values(n: number): Float32Array {
    return Float32Array.from({ length: n }, () => (rand() < 0.05 ? 0 : (rand() - 0.5) * 2 ** Math.floor(rand() * 24 - 12)));
  }
  for (const [name, fmt] of fmts) {
    for (const rounding of ['nearest', 'stochastic'] as const) {
      test(`${name} ${rounding}`, async () => {
        const shape = [6, 5, 7];
        const x = values(numel(shape));
        const { g, id, feeds } = build('quantize', [{ shape, data: x }], { fmt, rounding, role: 'A' });
        const step = { seed: 1234567, step: 89 };
        const gpu = await gpuRun(g, id, feeds, step);
        const ref = quantize(x, shape, fmt, rounding, { ...step, tensorId: id });
        const gb = new Uint32Array(gpu.buffer), rb = new Uint32Array(ref.buffer);
        const bad = [...gb.keys()].filter((i) => gb[i] !== rb[i]).slice(0, 3)
          .map((i) => `[${i}] x=${x[i]} gpu=${gpu[i]} cpu=${ref[i]}`);
        expect(bad).toEqual([]);
      });
    }
  }
});

test('kernels of the same structure share one pipeline whatever the shapes', async () => {
  const a = build('matmul', [{ shape: [5, 7] }, { shape: [7, 3] }], { ta: false, tb: false });
  const b = build('matmul', [{ shape: [17, 2] }, { shape: [2, 30] }], { ta: false, tb: false });
  const [ka] = kernelsForNode(a.g, a.id, {}), [kb] = kernelsForNode(b.g, b.id, {});
  expect(ka.key).toBe(kb.key);
  expect([...ka.params]).not.toEqual([...kb.params]);
  const own = new PipelineCache(device);
  expect(own.get(ka)).toBe(own.get(kb));
  expect(own.created).toBe(1);
  const before = cache.created;
  expectClose('matmul a', await gpuRun(a.g, a.id, a.feeds), cpuRef(a.g, a.id, a.feeds));
  expectClose('matmul b', await gpuRun(b.g, b.id, b.feeds), cpuRef(b.g, b.id, b.feeds));
  expect(cache.created - before).toBeLessThanOrEqual(1); // 0 if an earlier test already made it
  // a different structure (tb) is a different pipeline
  const c = build('matmul', [{ shape: [5, 7] }, { shape: [3, 7] }], { ta: false, tb: true });
  expect(kernelsForNode(c.g, c.id, {})[0].key).not.toBe(ka.key);
});

test('a WGSL error names the kernel and carries Tint\'s message', async () => {
  const [k] = kernelsForNode(build('relu', [{ shape: [4] }], {}).g, 1, {});
  const broken = { ...k, key: 'broken', wgsl: () => k.wgsl().replace('out[t] =', 'out[t] = undefined_name +') };
  const own = new PipelineCache(device);
  own.get(broken);
  await expect(own.check()).rejects.toThrow(/kernel 'relu_vec4' \(key broken\):[\s\S]*undefined_name/);
});
