/** Small buffer helpers: storage buffers from data, uploads, and readback into preallocated memory. */
import { throwIfDeviceErrors } from './device.js';

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** WebGPU wants sizes in multiples of 4; we round to 16 so vec4 views never run off the end. */
export function paddedSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/** A STORAGE|COPY_SRC|COPY_DST buffer of `bytesOrData` bytes, or holding a copy of the given data. */
export function createStorageBuffer(device: GPUDevice, bytesOrData: number | ArrayBufferView, label: string): GPUBuffer {
  const bytes = typeof bytesOrData === 'number' ? bytesOrData : bytesOrData.byteLength;
  const buffer = device.createBuffer({ size: paddedSize(bytes), usage: STORAGE, label });
  if (typeof bytesOrData !== 'number') writeBuffer(device, buffer, bytesOrData);
  return buffer;
}

/** queue.writeBuffer of a typed array's bytes (its own byteOffset/byteLength, not the whole ArrayBuffer). */
export function writeBuffer(device: GPUDevice, buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
  if (data.byteLength % 4 !== 0) throw new Error(`writeBuffer: ${data.byteLength} bytes is not a multiple of 4`);
  device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The first `byteLength` bytes of `buffer` (which needs COPY_SRC): copy to a MAP_READ staging buffer, map, copy
 * out into a fresh preallocated array (much cheaper than slicing the mapped range, research §0), unmap.
 * Throws any device error Dawn reported meanwhile.
 */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, byteLength: number): Promise<ArrayBuffer> {
  const size = Math.ceil(byteLength / 4) * 4;
  const staging = device.createBuffer({ size: Math.max(4, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
  try {
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, size);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ, 0, size);
    const out = new Uint8Array(byteLength);
    out.set(new Uint8Array(staging.getMappedRange(0, size), 0, byteLength));
    staging.unmap();
    throwIfDeviceErrors(device);
    return out.buffer;
  } finally {
    staging.destroy();
  }
}
