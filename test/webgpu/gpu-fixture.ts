/** What the WebGPU suites share: the seed of their random inputs and the device they run on. */
import { getGpu, shutdownGpu } from '../../runtime/webgpu/device.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';

/** The seed of a randomised WebGPU test: fixed in `npm test` so a failure can be rerun; `LPC_TEST_SEED=S` varies it
 *  (each suite prints its seed in its title). */
export const TEST_SEED = process.env.LPC_TEST_SEED ? Number(process.env.LPC_TEST_SEED) >>> 0 : 0x5eed1;

/** The shared device for a suite (opened before its tests, shut after), with a pipeline cache of its own. */
export function useGpu(): { readonly device: GPUDevice; readonly cache: PipelineCache; readonly isCpuDriver: boolean } {
  const s = {} as { device: GPUDevice; cache: PipelineCache; isCpuDriver: boolean };
  beforeAll(async () => {
    const gpu = await getGpu({ quiet: true });
    s.device = gpu.device;
    s.isCpuDriver = gpu.isCpuDriver;
    s.cache = new PipelineCache(gpu.device);
  });
  afterAll(async () => { await shutdownGpu(); });
  return s;
}
