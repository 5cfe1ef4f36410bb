/**
 * The Dawn device singleton: adapter chosen and announced, limits requested, a tiny kernel runs and reads back,
 * device errors surface. Skips only where there is no adapter and CI is unset (gpuForTests throws under CI).
 */
import { jest } from '@jest/globals';
import { getGpu, gpuForTests, Gpu, shutdownGpu, withErrorScope } from '../../runtime/webgpu/device.js';
import { createStorageBuffer, readBuffer, writeBuffer } from '../../runtime/webgpu/buffers.js';

const gpu: Gpu | null = await gpuForTests();
const gpuTest = gpu ? test : test.skip;
if (!gpu) console.warn('no WebGPU adapter: skipping test/webgpu/device.test.ts (run ./setup.sh)');

afterAll(async () => { await shutdownGpu(); });

const DOUBLE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&data)) { data[id.x] = 2.0 * data[id.x]; }
}`;

describe('webgpu device', () => {
  gpuTest('is a singleton, announces the adapter once, and has the adapter limits', async () => {
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const a = await getGpu();
      const b = await getGpu();
      expect(a).toBe(b);
      const lines = write.mock.calls.map((c) => String(c[0])).filter((l) => l.startsWith('lpc: using adapter '));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(a.adapterDescription);
    } finally {
      write.mockRestore();
    }
    expect(gpu!.adapterDescription.split(' | ')).toHaveLength(3);
    expect(gpu!.adapterDescription.replace(/[ |?]/g, '')).not.toBe('');
    console.log(`adapter: ${gpu!.adapterDescription} (cpu driver: ${gpu!.isCpuDriver})`);
    // requiredLimits asked for the adapter's values, which on every driver we use beat the WebGPU defaults
    expect(gpu!.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(8);
    expect(gpu!.device.limits.maxComputeWorkgroupStorageSize).toBe(gpu!.limits.maxComputeWorkgroupStorageSize);
  });

  gpuTest('runs a compute kernel that doubles an array and reads it back', async () => {
    const { device } = gpu!;
    const n = 1000;
    const input = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 100);
    const buf = createStorageBuffer(device, input, 'double');
    const layout = device.createBindGroupLayout({
      entries: [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } }],
    });
    const pipeline = await withErrorScope(device, () => device.createComputePipeline({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module: device.createShaderModule({ code: DOUBLE }), entryPoint: 'main' },
    }));
    // arrayLength sees the padded buffer, so bind exactly n floats
    const bind = device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: buf, size: n * 4 } }] });
    const run = () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(Math.ceil(n / 64));
      pass.end();
      device.queue.submit([enc.finish()]);
    };
    run();
    let out = new Float32Array(await readBuffer(device, buf, n * 4));
    expect(Array.from(out)).toEqual(Array.from(input, (v) => 2 * v));
    writeBuffer(device, buf, input.subarray(10, 20), 0); // a view: its own offset, not the whole ArrayBuffer
    run();
    out = new Float32Array(await readBuffer(device, buf, 12));
    expect(Array.from(out)).toEqual(Array.from(input.subarray(10, 13), (v) => 2 * v));
    buf.destroy();
  });

  gpuTest('surfaces validation errors', async () => {
    const { device } = gpu!;
    await expect(withErrorScope(device, () => device.createShaderModule({ code: 'fn main( {' })))
      .rejects.toThrow(/WebGPU .*Error/);
    // an uncaptured error is logged at once and thrown by check()
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
      await device.queue.onSubmittedWorkDone();
      for (let i = 0; i < 50 && !write.mock.calls.some((c) => String(c[0]).includes('WebGPU')); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(write.mock.calls.some((c) => String(c[0]).startsWith('lpc: WebGPU GPUValidationError'))).toBe(true);
    } finally {
      write.mockRestore();
    }
    expect(() => gpu!.check()).toThrow(/MapRead/);
    expect(() => gpu!.check()).not.toThrow();
  });
});
