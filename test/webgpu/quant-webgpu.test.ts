/**
 * The WGSL quantizers through Dawn vs the CPU reference, bit for bit: golden QPyTorch inputs, random bit patterns
 * (NaN, Inf, subnormals), random values, both roundings, the rng itself, and a fused-style kernel with widths as
 * uniforms. Needs a WebGPU adapter (a CPU Vulkan driver from setup.sh where there is no GPU).
 */
import { readFileSync } from 'fs';
import path from 'path';
import { Format, Rounding } from '../../ir/format.js';
import { quantize } from '../../ir/quant/quantize.js';
import { blockLayout } from '../../ir/quant/layout.js';
import { randomBitsArray, RngKey } from '../../ir/quant/rng.js';
import { mergeWgslDecls, wgslQuantFns, WGSL_QUANT_CHUNKS } from '../../codegen/quant/wgsl.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { launch, quantKernels, standalone } from './standalone-kernels.js';

let device: GPUDevice;

/** The shared runtime device when runtime/webgpu/device.ts exists, else a Dawn instance of our own. */
async function getDevice(): Promise<GPUDevice> {
  const shared = '../../runtime/webgpu/device.js';
  try {
    const mod = await import(shared);
    if (typeof mod.getGpu === 'function') return (await mod.getGpu()).device as GPUDevice;
  } catch { /* not written yet: fall back */ }
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const g = globalThis as unknown as { __lpcQuantTestGpu?: GPU };
  g.__lpcQuantTestGpu ??= create([]) as GPU; // held for the process: a collected instance crashes Dawn
  const adapter = await g.__lpcQuantTestGpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter: install a CPU Vulkan driver (setup.sh) or set VK_ICD_FILENAMES');
  return adapter.requestDevice({ requiredLimits: { maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage } });
}

beforeAll(async () => { device = await getDevice(); });

let pipelines: PipelineCache;
beforeAll(() => { pipelines = new PipelineCache(device); });

/** The GPU quantization (bfp: max-|x| per block, then the elementwise kernel) through the launch layer; bit patterns. */
async function gpuQuantize(x: Float32Array, shape: number[], fmt: Exclude<Format, { kind: 'f32' }>, rounding: Rounding, rng?: RngKey): Promise<Uint32Array> {
  if (fmt.kind === 'minmax') throw new Error('minmax is quantized by the graph kernels');
  const n = x.length;
  const kernels = quantKernels(fmt, rounding, n, rng, fmt.kind === 'bfp' ? blockLayout(shape, fmt.axis) : undefined);
  return (await launch(device, pipelines, kernels, new Map([[0, new Uint32Array(x.buffer, x.byteOffset, n)]]), [[1, n]])).get(1)!;
}

const isNaNBits = (v: number) => (v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0;
function mismatches(gpu: Uint32Array, cpu: Float32Array, x: Float32Array): string[] {
  const c = new Uint32Array(cpu.buffer, cpu.byteOffset, cpu.length);
  const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out: string[] = [];
  for (let i = 0; i < c.length && out.length < 5; i++)
    if (gpu[i] !== c[i] && !(isNaNBits(gpu[i]) && isNaNBits(c[i])))
      out.push(`[${i}] x=${xb[i].toString(16)} gpu=${gpu[i].toString(16)} cpu=${c[i].toString(16)}`);
  return out;
}

async function expectSame(x: Float32Array, shape: number[], fmt: Exclude<Format, { kind: 'f32' }>, rounding: Rounding, rng?: RngKey) {
  const gpu = await gpuQuantize(x, shape, fmt, rounding, rng);
  expect(mismatches(gpu, quantize(x, shape, fmt, rounding, rng), x)).toEqual([]);
}

const GOLDEN = path.resolve(process.cwd(), 'test/fixtures/golden');
const f32FromHex = (h: string[]) => new Float32Array(Uint32Array.from(h, (s) => parseInt(s, 16)).buffer);

describe('golden inputs: GPU = CPU = QPyTorch', () => {
  for (const file of ['fixed_point', 'float', 'block']) {
    const data = JSON.parse(readFileSync(path.join(GOLDEN, `${file}.json`), 'utf8'));
    for (const c of data.cases) {
      test(c.id, async () => {
        const a = c.args;
        const fmt: Exclude<Format, { kind: 'f32' }> = file === 'fixed_point'
          ? { kind: 'fixed', wl: a.wl, fl: a.fl, noclamp: !a.clamp || undefined, sym: a.symmetric || undefined }
          : file === 'float' ? { kind: 'float', exp: a.exp, man: a.man } : { kind: 'bfp', wl: a.wl, axis: a.dim === -1 ? 'tensor' : a.dim };
        const x = f32FromHex(c.x.hex);
        const gpu = await gpuQuantize(x, c.x.shape, fmt, 'nearest');
        expect(mismatches(gpu, quantize(x, c.x.shape, fmt, 'nearest'), x)).toEqual([]);
        if (c.id !== 'float_e8_m23') // QPyTorch's man = 23 bug (docs/numerics.md)
          gpu.forEach((v, i) => {
            const w = parseInt(c.y.hex[i], 16);
            if (v !== w && !(isNaNBits(v) && isNaNBits(w))) throw new Error(`${c.id}[${i}]: ${v.toString(16)} != ${c.y.hex[i]}`);
          });
      });
    }
  }
});

describe('random inputs, both roundings', () => {
  const N = 60000;
  const bits = new Float32Array(randomBitsArray(11, 0, 0, N).buffer); // every kind of pattern: NaN, Inf, subnormal
  const vals = new Float32Array(N).map((_, i) => Math.sin(i * 0.37) * 3 * 2 ** ((i % 48) - 24));
  const shape = [300, 200];
  const formats: Exclude<Format, { kind: 'f32' }>[] = [
    { kind: 'fixed', wl: 8, fl: 4 }, { kind: 'fixed', wl: 5, fl: 4, sym: true, noclamp: true }, { kind: 'fixed', wl: 24, fl: 0 },
    { kind: 'fixed', wl: 16, fl: 120 }, { kind: 'float', exp: 5, man: 10 }, { kind: 'float', exp: 8, man: 7 },
    { kind: 'float', exp: 4, man: 3 }, { kind: 'float', exp: 1, man: 1 }, { kind: 'float', exp: 8, man: 23 },
    { kind: 'bfp', wl: 8, axis: 'tensor' }, { kind: 'bfp', wl: 4, axis: 0 }, { kind: 'bfp', wl: 6, axis: 1 }, { kind: 'bfp', wl: 23, axis: 0 },
  ];
  for (const fmt of formats)
    for (const rounding of ['nearest', 'stochastic'] as const)
      test(`${JSON.stringify(fmt)} ${rounding}`, async () => {
        const rng = { seed: 0xdeadbeef, step: 17, tensorId: 4 };
        await expectSame(bits, shape, fmt, rounding, rng);
        await expectSame(vals, shape, fmt, rounding, rng);
        // bfp blocks with finite maxima (random patterns almost always contain a NaN)
        if (fmt.kind === 'bfp') await expectSame(vals.map((v, i) => (i % 7 ? v : 2 ** ((i % 300) - 150))), shape, fmt, rounding, rng);
      });
});

test('lpc_random_bits equals randomBits', async () => {
  const n = 4099;
  const code = `${mergeWgslDecls({ chunks: ['lpc_pcg4d', 'lpc_random_bits'] })}
@group(0) @binding(0) var<uniform> P: vec4<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < ${n}u) { out[g.x] = lpc_random_bits(0xfffffff0u, 3u, 77u, g.x); }
}`;
  const k = standalone('rng', code, new Uint32Array(4), [{ ref: { kind: 'node', id: 0 }, elem: 'u32', access: 'read_write' }], [Math.ceil(n / 64), 1, 1]);
  const out = (await launch(device, pipelines, [k], new Map(), [[0, n]])).get(0)!;
  expect(Array.from(out)).toEqual(Array.from(randomBitsArray(0xfffffff0, 3, 77, n)));
  expect(Object.keys(WGSL_QUANT_CHUNKS)).toContain('lpc_qbits_float');
});

test('fused call sites with widths as uniforms: one pipeline, many widths', async () => {
  const n = 2048;
  const x = new Float32Array(n).map((_, i) => Math.cos(i * 1.3) * 2 ** ((i % 20) - 10));
  const qf = wgslQuantFns({ kind: 'float', exp: 5, man: 2 }, 'stochastic');
  const qx = wgslQuantFns({ kind: 'fixed', wl: 8, fl: 4 }, 'nearest');
  const code = `${mergeWgslDecls(qf, qx)}
struct U { exp: u32, man: u32, wl: u32, fl: u32, seed: u32, step: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> ys: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= ${n}u) { return; }
  let a = ${qf.call('xs[i]', 'i', { exp: 'u.exp', man: 'u.man', seed: 'u.seed', step: 'u.step', tensorId: '5u' })};
  ys[i] = ${qx.call('a * 3.0', 'i', { wl: 'u.wl', fl: 'u.fl' })};
}`;
  const io: Parameters<typeof standalone>[3] = [
    { ref: { kind: 'node', id: 0 }, elem: 'f32', access: 'read' }, { ref: { kind: 'node', id: 1 }, elem: 'f32', access: 'read_write' }];
  const before = pipelines.size;
  for (const [exp, man, wl, fl] of [[5, 2, 8, 4], [4, 3, 6, 2], [8, 7, 12, 9]]) {
    const k = standalone('fused', code, new Uint32Array([exp, man, wl, fl, 99, 7, 0, 0]), io, [n / 64, 1, 1]);
    const gpu = (await launch(device, pipelines, [k], new Map([[0, new Uint32Array(x.buffer)]]), [[1, n]])).get(1)!;
    const a = quantize(x, [n], { kind: 'float', exp, man }, 'stochastic', { seed: 99, step: 7, tensorId: 5 });
    const cpu = quantize(a.map((v) => v * 3), [n], { kind: 'fixed', wl, fl }, 'nearest');
    expect(mismatches(gpu, cpu, x)).toEqual([]);
  }
  expect(pipelines.size - before).toBe(1);
});
