/**
 * CPT over MX and the MX scale modes in WGSL against the CPU spec (ir/quant/mx.ts), bit for bit: lpc_mx_scale_m
 * (ceil, even, rceil) and lpc_mx_int_word on every kind of block maximum and width; the quantize op's kernels with a
 * scheduled mx<int8,fwd> at every width 2…8 (the width a step-uniform value: one pipeline for all) and with each
 * scale mode, nearest and stochastic, on all three walks of kernels/mx.ts; and LeNet-5 trained under a CPT schedule
 * over MXINT on WebGPU against the CPU interpreter.
 */
import { Builder, emptyGraph } from '../../ir/graph.js';
import { Format, MX_ELEMS, MxElem, Rounding, formatToString, parseFormat } from '../../ir/format.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import { mxElemWord, mxIntWord, mxScaleByteMode } from '../../ir/quant/mx.js';
import { parsePolicy, scheduleBits } from '../../ir/precision/index.js';
import { DEPS, mergeWgslDecls } from '../../codegen/quant/wgsl.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { mxWalk } from '../../codegen/kernels/mx.js';
import { getGpu } from '../../runtime/webgpu/device.js'; // first: it installs the WebGPU globals
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { runKernels } from '../../runtime/webgpu/run-kernels.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState } from '../../runtime/train/init.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { rand as seededRandom } from '../unit/helpers.js';
import { launch, standalone } from './standalone-kernels.js';

let device: GPUDevice;
let cache: PipelineCache;
beforeAll(async () => {
  device = (await getGpu({ quiet: true })).device;
  cache = new PipelineCache(device);
});

const isNaNBits = (v: number) => (v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0;
function diff(got: Uint32Array, want: ArrayLike<number>, x: ArrayLike<number>): string[] {
  const out: string[] = [];
  for (let i = 0; i < got.length && out.length < 5; i++)
    if (got[i] !== want[i] && !(isNaNBits(got[i]) && isNaNBits(want[i])))
      out.push(`[${i}] x=${(x[i] ?? 0).toString(16)} gpu=${got[i].toString(16)} cpu=${(want[i] >>> 0).toString(16)}`);
  return out;
}

/** dst[i] = lpc_mx_scale_m(src[i], word, smode) (or, `int`: lpc_mx_int_word(src[i], word)). */
async function gpuScale(u: Uint32Array, word: number, smode: number, int = false): Promise<Uint32Array> {
  const n = u.length;
  const code = `struct Params { n: u32, word: u32, smode: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;
${mergeWgslDecls({ chunks: DEPS.mx })}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n) { return; }
  dst[i] = ${int ? 'lpc_mx_int_word(src[i], P.word)' : 'lpc_mx_scale_m(src[i], P.word, P.smode)'};
}`;
  const k = standalone('mx_scale_m', code, Uint32Array.of(n, word, smode, 0), [
    { ref: { kind: 'node', id: 0 }, elem: 'u32', access: 'read' }, { ref: { kind: 'node', id: 1 }, elem: 'u32', access: 'read_write' },
  ], [Math.ceil(n / 64), 1, 1]);
  return (await launch(device, cache, [k], new Map([[0, u]]), [[1, n]])).get(1)!;
}

test('lpc_mx_scale_m (ceil, even, rceil) and lpc_mx_int_word: every exponent field, thresholds, subnormals, specials', async () => {
  const r = seededRandom(31);
  const m: number[] = [0, 1, 2, 3, 0x7fffff, 0x400000, 0x7f800000, 0x7f800001, 0x7fc00000, 0x7f7fffff, 0x80000000 | 0x3f800001];
  for (let ef = 1; ef < 255; ef++) m.push(ef << 23, (ef << 23) | 0x7fffff, (ef << 23) | Math.floor(r() * 0x800000));
  for (let i = 0; i < 100; i++) m.push(Math.floor(r() * 0x800000) >>> Math.floor(r() * 23));
  const elems = Object.keys(MX_ELEMS) as MxElem[];
  for (const e of elems) {
    const { f, maxK } = MX_ELEMS[e];
    for (const ef of [1, 127, 254]) for (const sig of [maxK * 2 ** (23 - f), 2 ** 24 - 2 ** (22 - f)]) for (const d of [-1, 0, 1]) m.push((ef << 23) | ((sig + d) & 0x7fffff));
  }
  const u = Uint32Array.from(m);
  for (const e of elems)
    for (const smode of [1, 2, 3]) {
      const word = mxElemWord(e), got = await gpuScale(u, word, smode);
      expect([e, smode, diff(got, Array.from(u, (a) => mxScaleByteMode(a, word, smode)), u)]).toEqual([e, smode, []]);
    }
  const widths = Uint32Array.from({ length: 40 }, (_, i) => i);
  for (let hi = 2; hi <= 8; hi++)
    expect([hi, diff(await gpuScale(widths, hi, 0, true), Array.from(widths, (b) => mxIntWord(b, hi)), widths)]).toEqual([hi, []]);
});

/** The quantize op's kernel on the GPU vs the CPU quantize() with the same step key (widths included). */
async function quantizeOp(x: Float32Array, shape: number[], fmt: Format, rounding: Rounding, bits?: { fwd: number; bwd: number }): Promise<string> {
  const g = emptyGraph('t'), b = new Builder(g);
  const xin = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
  const id = b.add('quantize', [xin], { fmt, rounding, role: 'A' });
  const ks = kernelsForNode(g, id);
  const step = { seed: 0x5eed, step: 4, ...(bits ? { bits } : {}) };
  const { values } = await runKernels(device, g, { feeds: new Map([[xin, x]]), run: [id], read: [id], step, pipelines: cache, variant: 'cpu-driver' });
  const got = new Uint32Array((values.get(id) as Float32Array).buffer);
  const want = new Uint32Array(quantize(x, shape, fmt, rounding, { ...step, tensorId: id }).buffer);
  const what = `${formatToString(fmt)}:${rounding} [${shape}] ${bits ? `fwd=${bits.fwd}` : ''}`;
  expect([what, diff(got, want, new Uint32Array(x.buffer))]).toEqual([what, []]);
  return ks.map((k) => k.key).join();
}

const SHAPES: number[][] = [[3, 37], [2, 40, 2, 2], [3, 72]]; // the scalar, lanes and rows walks of kernels/mx.ts
const data = (n: number, r: () => number) => {
  const x = Float32Array.from({ length: n }, () => (r() - 0.5) * 2 ** Math.floor(r() * 40 - 20));
  const u = new Uint32Array(x.buffer);
  u[3] = 0x80000000; u[5] = 0; u[n - 2] = 0x7f7fffff; u[Math.floor(n / 2)] = 0x7fc00001; // −0, +0, FLT_MAX, NaN
  return x;
};

test('the quantize op with a scheduled mx<int8,fwd>: bit-exact at every width 2…8, one kernel (cache key) for all', async () => {
  const r = seededRandom(32);
  expect(new Set(SHAPES.map((s) => mxWalk(parseFormat('mx<int8,fwd>') as never, s)))).toEqual(new Set(['scalar', 'lanes', 'rows']));
  for (const shape of SHAPES)
    for (const rounding of ['nearest', 'stochastic'] as Rounding[]) {
      const x = data(numel(shape), r), keys = new Set<string>();
      for (let B = 2; B <= 8; B++) keys.add(await quantizeOp(x, shape, parseFormat('mx<int8,fwd>'), rounding, { fwd: B, bwd: 8 }));
      expect(keys.size).toBe(1);
      await quantizeOp(x, shape, parseFormat('mx<int6,bwd,scale=ceil>'), rounding, { fwd: 8, bwd: 3 });
    }
});

test('the quantize op under each scale mode: bit-exact with the CPU, nearest and stochastic', async () => {
  const r = seededRandom(33);
  for (const shape of SHAPES)
    for (const spec of ['mx<e4m3,scale=ceil>', 'mx<e2m1,scale=even>', 'mx<e5m2,scale=rceil>', 'mx<int8,scale=rceil>', 'mx<e3m2,block=16,scale=even>', 'mx<int4,scale=ceil>'])
      for (const rounding of ['nearest', 'stochastic'] as Rounding[]) await quantizeOp(data(numel(shape), r), shape, parseFormat(spec), rounding);
});

const SCHEDULE = ' ; schedule fwd=cyclic(3,8,periods=2) bwd=cyclic(5,8,periods=2)';
// The second spec stores W (a copy of ACC) and M packed (passes/pack-state.ts), M with a torchao scale mode.
test.each([
  ['', 'W=mx<int8> A=mx<int8> E=mx<int8>:stochastic G=mx<int8,scale=ceil>'],
  [', packed W and M', 'W=mx<int8> A=mx<int8> E=mx<int8>:stochastic G=mx<int8,scale=ceil> ACC=f32 M=mx<int6,scale=rceil>'],
])('LeNet-5 under a CPT schedule over MXINT (fused%s): WebGPU steps follow the CPU interpreter, widths changing each step', async (_what, roles) => {
  const spec = roles + SCHEDULE;
  const policy = parsePolicy(spec), batch = 4, steps = 4;
  const m = runPasses(frontEnd('models/lenet5.ts', batch), { batch, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: policy });
  const packed = m.graphs[0].nodes.filter((n) => n.op === 'state' && n.attrs.packed).length;
  expect(packed).toBe(policy.roles.ACC ? 10 : 0); // LeNet-5's 5 weights and their momenta
  const gpu = await getGpu({ quiet: true });
  const web = new WebGpuBackend(gpu, m), cpu = new CpuBackend(m);
  const init = initState(m, 1);
  await web.setState(init);
  await cpu.setState(init);
  const r = seededRandom(34);
  const feeds = { x: Float32Array.from({ length: batch * 784 }, () => r()), y: Int32Array.from({ length: batch }, () => Math.floor(r() * 10)), lr: Float32Array.of(0.05) };
  const made = web.pipelinesCreated, widths: number[] = [];
  try {
    for (let step = 0; step < steps; step++) {
      const bits = { fwd: scheduleBits(policy.schedule!.fwd!, step, steps), bwd: scheduleBits(policy.schedule!.bwd!, step, steps) };
      widths.push(bits.fwd);
      const a = await web.run('train', feeds, { seed: 3, step, bits }, ['loss']);
      const b = await cpu.run('train', feeds, { seed: 3, step, bits }, ['loss']);
      expect([step, Math.abs(a.loss[0] - b.loss[0]) <= 1e-4 * Math.abs(b.loss[0])]).toEqual([step, true]);
    }
    expect(new Set(widths).size).toBeGreaterThan(1); // the schedule really varied the width
    expect(web.pipelinesCreated).toBe(made); // and no width needed a pipeline of its own
    // The weights are W-quantized (MXINT at the step's width): the same bits (all of them on lavapipe; a driver
    // summing in another order may flip a rare tie). The momentum buffers are f32 sums of gradients whose conv/GEMM
    // sums run in another order on the GPU: within fp32's 1e-5 relative (measured ~2e-7 on lavapipe).
    const [ws, cs] = [await web.getState(), await cpu.getState()];
    for (const [k, v] of cs) {
      const w = ws.get(k)!;
      // an MX momentum is on its grid: a last-bit difference of the f32 sum may move a value one level (rarely)
      const onGrid = !k.endsWith('.momentum') && !k.endsWith('.acc'), mxM = k.endsWith('.momentum') && policy.roles.M;
      if (onGrid || mxM) { expect([k, v.filter((c, i) => c === w[i]).length / v.length >= (mxM ? 0.99 : 0.999)]).toEqual([k, true]); continue; }
      const scale = Math.max(...v.map(Math.abs), 1e-6);
      expect([k, Math.max(...v.map((c, i) => Math.abs(c - w[i]))) / scale <= 1e-5]).toEqual([k, true]);
    }
  } finally {
    await web.dispose();
  }
});
