/**
 * Test-only standalone kernels for the WGSL quantizer library (codegen/quant/wgsl.ts): a whole buffer of f32 bit
 * patterns quantized into another (array<u32>, so NaN payloads survive the round trip), bfp's max-|x| per block, and
 * hand-written kernels. They are lpc Kernel objects (codegen/kernel.ts) with its binding convention and run through
 * the one launch layer (runtime/webgpu/launch.ts), like every kernel of a compiled graph.
 */
import { Kernel } from '../../codegen/kernel.js';
import { DEPS, mergeWgslDecls, wgslBlockIndex } from '../../codegen/quant/wgsl.js';
import { Format, Rounding } from '../../ir/format.js';
import { FIXED_NOCLAMP, FIXED_STOCHASTIC, FIXED_SYM } from '../../ir/quant/bits.js';
import type { BlockLayout } from '../../ir/quant/layout.js';
import type { RngKey } from '../../ir/quant/rng.js';
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { bindKernel, encodeLaunches, STEP_BYTES } from '../../runtime/webgpu/launch.js';

const WORKGROUP = 256;
/** n, a (wl | exp), b (fl | man), mode (fixed: FIXED_* flags; float/bfp: 1 = stochastic), seed, step, tensorId,
 *  axisLen, inner, outer, 2 words padding. */
const PARAMS = `struct Params { n: u32, a: u32, b: u32, mode: u32, seed: u32, step: u32, tid: u32, axisLen: u32,
  inner: u32, outer: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> P: Params;`;

/** A kernel from its WGSL: binding 0 the params uniform, then storage buffers of nodes (or scratch) in order. */
export function standalone(name: string, code: string, params: Uint32Array, bindings: Kernel['bindings'], dispatch: [number, number, number], clears?: number[]): Kernel {
  return { key: code, name, wgsl: () => code, bindings, usesStep: false, params, dispatch, ...(clears ? { clears } : {}) };
}

/** Uniform words for the quantizer kernels. `layout` is required for bfp (ir/quant blockLayout). */
function quantParams(fmt: Exclude<Format, { kind: 'f32' | 'minmax' }>, rounding: Rounding, n: number, rng?: RngKey, layout?: BlockLayout): Uint32Array {
  const p = new Uint32Array(12);
  const stoch = rounding === 'stochastic';
  if (stoch && !rng) throw new Error('stochastic quantization needs an rng key {seed, step, tensorId}');
  p[0] = n;
  if (fmt.kind === 'fixed') {
    p[1] = fmt.wl; p[2] = fmt.fl;
    p[3] = (stoch ? FIXED_STOCHASTIC : 0) | (fmt.noclamp ? FIXED_NOCLAMP : 0) | (fmt.sym ? FIXED_SYM : 0);
  } else {
    p[1] = fmt.kind === 'float' ? fmt.exp : (fmt as { wl: number }).wl;
    p[2] = fmt.kind === 'float' ? fmt.man : 0;
    p[3] = stoch ? 1 : 0;
  }
  if (rng) { p[4] = rng.seed; p[5] = rng.step; p[6] = rng.tensorId; }
  if (layout) { p[7] = layout.axisLen; p[8] = layout.inner; p[9] = layout.outer; }
  return p;
}

/** Workgroups covering n invocations (2-D beyond 65535 groups). */
function spread(n: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / WORKGROUP));
  if (groups <= 65535) return [groups, 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * The kernels quantizing node 0 (f32 bits) into node 1: for bfp, first the max |x| per block into scratch 0 (u32 bit
 * patterns; unsigned order = order of |x|, NaN above Inf, so NaN poisons its block as in QPyTorch), then the
 * elementwise quantizer reading it.
 */
export function quantKernels(fmt: Exclude<Format, { kind: 'f32' | 'minmax' }>, rounding: Rounding, n: number, rng?: RngKey, layout?: BlockLayout): Kernel[] {
  const kind = fmt.kind;
  const params = quantParams(fmt, rounding, n, rng, layout);
  const body = kind === 'fixed' ? 'lpc_qbits_fixed(u, P.a, P.b, P.mode, r)'
    : kind === 'float' ? 'lpc_qbits_float(u, P.a, P.b, stochastic, r)'
      : `lpc_qbits_bfp(u, blockMax[${wgslBlockIndex('i', 'P.axisLen', 'P.inner')}], P.a, stochastic, r)`;
  const quant = `${PARAMS}
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;
${kind === 'bfp' ? '@group(0) @binding(4) var<storage, read> blockMax: array<u32>;\n' : ''}${mergeWgslDecls({ chunks: [...DEPS[kind], ...DEPS.rng] })}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WORKGROUP}u;
  if (i >= P.n) { return; }
  let stochastic = ${kind === 'fixed' ? '(P.mode & 1u) != 0u' : 'P.mode != 0u'};
  var r = 0u;
  if (stochastic) { r = lpc_random_bits(P.seed, P.step, P.tid, i); }
  let u = src[i];
  dst[i] = ${body};
}
`;
  const io: Kernel['bindings'] = [
    { ref: { kind: 'node', id: 0 }, elem: 'u32', access: 'read' },
    { ref: { kind: 'node', id: 1 }, elem: 'u32', access: 'read_write' },
  ];
  if (kind !== 'bfp') return [standalone(`q_${kind}`, quant, params, io, spread(n))];
  if (!layout) throw new Error('bfp needs the block layout');
  const max = `${PARAMS}
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<atomic<u32>>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let count = P.outer * P.inner;
  let stride = nwg.x * ${WORKGROUP}u;
  for (var a = gid.y; a < P.axisLen; a += nwg.y) {
    var m = 0u;
    for (var j = gid.x; j < count; j += stride) {
      let i = (j / P.inner) * P.axisLen * P.inner + a * P.inner + (j % P.inner);
      m = max(m, src[i] & 0x7fffffffu);
    }
    if (m != 0u) { atomicMax(&out[a], m); }
  }
}
`;
  const blockMax = { kind: 'scratch' as const, index: 0, bytes: Math.max(16, layout.axisLen * 4) };
  const count = layout.outer * layout.inner;
  return [
    standalone('max_abs', max, params, [io[0], { ref: blockMax, elem: 'atomic<u32>', access: 'read_write' }],
      [Math.max(1, Math.min(64, Math.ceil(count / WORKGROUP))), Math.min(65535, Math.max(1, layout.axisLen)), 1], [0]),
    standalone('q_bfp', quant, params, [...io, { ref: blockMax, elem: 'u32', access: 'read' }], spread(n)),
  ];
}

/**
 * Runs `kernels` in one pass through the launch layer: nodes are buffers of 32-bit words (`fed` uploaded, the rest
 * zero), scratch is shared by all of them; returns the words of the nodes in `read` (n words each).
 */
export async function launch(device: GPUDevice, pipelines: PipelineCache, kernels: Kernel[], fed: Map<number, Uint32Array>, read: [number, number][]): Promise<Map<number, Uint32Array>> {
  const owned: GPUBuffer[] = [];
  const make = (bytes: number, usage: number, label?: string) => { const b = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage, label }); owned.push(b); return b; };
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const sizes = new Map<number, number>([...fed].map(([id, v]) => [id, v.byteLength]));
  for (const [id, n] of read) sizes.set(id, Math.max(sizes.get(id) ?? 0, n * 4));
  const nodes = new Map([...sizes].map(([id, bytes]) => [id, make(bytes, STORAGE, `%${id}`)]));
  for (const [id, v] of fed) device.queue.writeBuffer(nodes.get(id)!, 0, v);
  const scratch = new Map<number, GPUBuffer>();
  try {
    const ctx = {
      device, pipelines, step: make(STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST),
      uniform: (bytes: number, label: string) => make(bytes, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label),
      node: (id: number) => nodes.get(id)!,
      scratch: (index: number, bytes: number, label: string) => { if (!scratch.has(index)) scratch.set(index, make(bytes, STORAGE, label)); return scratch.get(index)!; },
    };
    const launches = kernels.map((k) => bindKernel(ctx, k));
    await pipelines.check();
    const enc = device.createCommandEncoder();
    encodeLaunches(enc, launches);
    const staging = read.map(([id, n]) => { const s = make(n * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST); enc.copyBufferToBuffer(nodes.get(id)!, 0, s, 0, Math.max(16, Math.ceil(n * 4 / 16) * 16)); return [id, n, s] as const; });
    device.queue.submit([enc.finish()]);
    const out = new Map<number, Uint32Array>();
    for (const [id, n, s] of staging) {
      await s.mapAsync(GPUMapMode.READ);
      out.set(id, new Uint32Array(s.getMappedRange().slice(0, n * 4)));
      s.unmap();
    }
    return out;
  } finally {
    await device.queue.onSubmittedWorkDone();
    for (const b of owned) b.destroy();
  }
}
