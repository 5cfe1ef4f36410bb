#!/usr/bin/env node
// Probe: does Dawn (npm `webgpu`) find a WebGPU adapter here? Prints it; exit 0 if yes, 1 if not.
// Used by setup.sh to decide whether a CPU Vulkan driver must be installed.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
// Held for the whole process: a collected Dawn instance crashes mid-run (research/webgpu-on-cpu.md §0).
globalThis.__lpcProbeGpu = create([]);

let adapter = null;
try {
  adapter = await globalThis.__lpcProbeGpu.requestAdapter({ powerPreference: 'high-performance' });
} catch (e) {
  console.error(`probe: requestAdapter failed: ${e?.message ?? e}`);
}
if (!adapter) {
  console.log('probe: no WebGPU adapter');
  process.exit(1);
}
const i = adapter.info ?? {};
const f16 = adapter.features.has('shader-f16') ? ' shader-f16' : '';
console.log(`probe: adapter ${i.vendor || '?'} | ${i.architecture || '?'} | ${i.description || i.device || '?'}${f16}`);
process.exit(0);
