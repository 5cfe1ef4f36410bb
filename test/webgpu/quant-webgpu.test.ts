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
import {
  maxAbsDispatch, maxAbsKernelWgsl, mergeWgslDecls, quantDispatch, quantKernelParams, quantKernelWgsl, WgslKernel,
  wgslQuantFns, WGSL_QUANT_CHUNKS,
} from '../../codegen/quant/wgsl.js';

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

const pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
function pipelineFor(k: WgslKernel): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
  let p = pipelines.get(k.code);
  if (!p) {
    const layout = device.createBindGroupLayout({
      entries: k.bindings.map((b) => ({ binding: b.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: b.type } })),
    });
    const pipeline = device.createComputePipeline({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module: device.createShaderModule({ code: k.code }), entryPoint: k.entryPoint },
    });
    pipelines.set(k.code, (p = { pipeline, layout }));
  }
  return p;
}

function upload(data: Uint32Array, usage: number): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data);
  return b;
}

async function readBack(enc: GPUCommandEncoder, src: GPUBuffer, n: number): Promise<Uint32Array> {
  const rb = device.createBuffer({ size: Math.max(16, n * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  enc.copyBufferToBuffer(src, 0, rb, 0, Math.max(16, n * 4));
  device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const out = new Uint32Array(rb.getMappedRange().slice(0, n * 4));
  rb.unmap();
  rb.destroy();
  return out;
}

function dispatch(enc: GPUCommandEncoder, k: WgslKernel, buffers: GPUBuffer[], groups: [number, number, number]): void {
  const { pipeline, layout } = pipelineFor(k);
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout, entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) }));
  pass.dispatchWorkgroups(...groups);
  pass.end();
}

/** The two-step GPU quantization (max-abs reduction for bfp, then the elementwise kernel); returns bit patterns. */
async function gpuQuantize(x: Float32Array, shape: number[], fmt: Exclude<Format, { kind: 'f32' }>, rounding: Rounding, rng?: RngKey): Promise<Uint32Array> {
  const n = x.length;
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const src = upload(new Uint32Array(x.buffer, x.byteOffset, n), storage);
  const dst = device.createBuffer({ size: Math.max(16, n * 4), usage: storage });
  const layout = fmt.kind === 'bfp' ? blockLayout(shape, fmt.axis) : undefined;
  const params = upload(quantKernelParams(fmt, rounding, n, rng, layout), GPUBufferUsage.UNIFORM);
  const enc = device.createCommandEncoder();
  const bufs = [src, dst, params];
  if (layout) {
    const maxBuf = device.createBuffer({ size: Math.max(16, layout.axisLen * 4), usage: storage | GPUBufferUsage.COPY_DST });
    enc.clearBuffer(maxBuf);
    dispatch(enc, maxAbsKernelWgsl(), [src, maxBuf, params], maxAbsDispatch(layout));
    bufs.push(maxBuf);
  }
  dispatch(enc, quantKernelWgsl(fmt.kind), bufs, quantDispatch(n));
  const out = await readBack(enc, dst, n);
  for (const b of bufs) b.destroy();
  return out;
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
  const k: WgslKernel = {
    code: `${mergeWgslDecls({ chunks: ['lpc_pcg4d', 'lpc_random_bits'] })}
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < ${n}u) { out[g.x] = lpc_random_bits(0xfffffff0u, 3u, 77u, g.x); }
}`,
    entryPoint: 'main', workgroupSize: 64, uniformBytes: 0, bindings: [{ binding: 0, name: 'out', type: 'storage' }],
  };
  const out = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const enc = device.createCommandEncoder();
  dispatch(enc, k, [out], [Math.ceil(n / 64), 1, 1]);
  expect(Array.from(await readBack(enc, out, n))).toEqual(Array.from(randomBitsArray(0xfffffff0, 3, 77, n)));
  expect(Object.keys(WGSL_QUANT_CHUNKS)).toContain('lpc_qbits_float');
});

test('fused call sites with widths as uniforms: one pipeline, many widths', async () => {
  const n = 2048;
  const x = new Float32Array(n).map((_, i) => Math.cos(i * 1.3) * 2 ** ((i % 20) - 10));
  const qf = wgslQuantFns({ kind: 'float', exp: 5, man: 2 }, 'stochastic');
  const qx = wgslQuantFns({ kind: 'fixed', wl: 8, fl: 4 }, 'nearest');
  const k: WgslKernel = {
    code: `${mergeWgslDecls(qf, qx)}
struct U { exp: u32, man: u32, wl: u32, fl: u32, seed: u32, step: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read_write> ys: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= ${n}u) { return; }
  let a = ${qf.call('xs[i]', 'i', { exp: 'u.exp', man: 'u.man', seed: 'u.seed', step: 'u.step', tensorId: '5u' })};
  ys[i] = ${qx.call('a * 3.0', 'i', { wl: 'u.wl', fl: 'u.fl' })};
}`,
    entryPoint: 'main', workgroupSize: 64, uniformBytes: 32,
    bindings: [{ binding: 0, name: 'xs', type: 'read-only-storage' }, { binding: 1, name: 'ys', type: 'storage' }, { binding: 2, name: 'u', type: 'uniform' }],
  };
  const src = upload(new Uint32Array(x.buffer), GPUBufferUsage.STORAGE);
  for (const [exp, man, wl, fl] of [[5, 2, 8, 4], [4, 3, 6, 2], [8, 7, 12, 9]]) {
    const dst = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const params = upload(new Uint32Array([exp, man, wl, fl, 99, 7, 0, 0]), GPUBufferUsage.UNIFORM);
    const enc = device.createCommandEncoder();
    dispatch(enc, k, [src, dst, params], [n / 64, 1, 1]);
    const gpu = await readBack(enc, dst, n);
    const a = quantize(x, [n], { kind: 'float', exp, man }, 'stochastic', { seed: 99, step: 7, tensorId: 5 });
    const cpu = quantize(a.map((v) => v * 3), [n], { kind: 'fixed', wl, fl }, 'nearest');
    expect(mismatches(gpu, cpu, x)).toEqual([]);
  }
  expect(pipelines.has(k.code)).toBe(true);
});
