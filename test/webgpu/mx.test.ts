/**
 * The MX quantizers in WGSL (codegen/quant/wgsl.ts lpc_mx_scale / lpc_qbits_mx, codegen/kernels/mx.ts) against the CPU
 * spec (ir/quant/mx.ts), bit for bit: the scale byte of every kind of block maximum, every golden element of
 * microxcaling's mx.json in all three of its roundings (with the library's scale bytes, which lpc's unit tests
 * derive from MX.md's closed form, and with lpc's own), and the quantize op's kernel on tensors with partial blocks,
 * strided axes, specials, both roundings and every element format.
 */
import { readFileSync } from 'fs';
import path from 'path';
import { Builder, emptyGraph } from '../../ir/graph.js';
import { Format, MX_ELEMS, MxElem, Rounding, formatToString, parseFormat } from '../../ir/format.js';
import { getOp } from '../../ir/ops/index.js';
import { numel } from '../../ir/types.js';
import { quantize } from '../../ir/quant/quantize.js';
import {
  MX_EVEN, MX_FLOOR, MX_NEAREST, MX_STOCHASTIC, mxBlockOf, mxElemWord, mxLayout, mxScaleByte, mxScaleBytes, qMxBits,
} from '../../ir/quant/mx.js';
import { randomBitsArray } from '../../ir/quant/rng.js';
import { DEPS, mergeWgslDecls } from '../../codegen/quant/wgsl.js';
import { kernelsForNode } from '../../codegen/kernels/index.js';
import { getGpu } from '../../runtime/webgpu/device.js'; // first: it installs the WebGPU globals
import { PipelineCache } from '../../runtime/webgpu/pipelines.js';
import { HostArray, runKernels } from '../../runtime/webgpu/run-kernels.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { fuseQuantizers } from '../../passes/fuse.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { initState } from '../../runtime/train/init.js';
import { WebGpuBackend } from '../../runtime/webgpu/executor.js';
import { rand as seededRandom, stepFeeds } from '../unit/helpers.js';
import { TEST_SEED, expectLenetStepsLikeCpu } from './gpu-fixture.js';
import { launch, standalone } from './standalone-kernels.js';
import { mxWalk } from '../../codegen/kernels/mx.js';
import { MX_COMPRESS_ONE_KERNEL } from '../../codegen/kernels/mx-pack.js';

let device: GPUDevice;
let cache: PipelineCache;
beforeAll(async () => {
  device = (await getGpu({ quiet: true })).device;
  cache = new PipelineCache(device);
});

const ELEMS = Object.keys(MX_ELEMS) as MxElem[];
const isNaNBits = (v: number) => (v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0;
function diff(got: Uint32Array, want: ArrayLike<number>, x: Uint32Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < got.length && out.length < 5; i++)
    if (got[i] !== want[i] && !(isNaNBits(got[i]) && isNaNBits(want[i])))
      out.push(`[${i}] x=${(x[i] ?? 0).toString(16)} gpu=${got[i].toString(16)} cpu=${(want[i] >>> 0).toString(16)}`);
  return out;
}

const PARAMS = `struct Params { n: u32, word: u32, mode: u32, emax: u32, seed: u32, step: u32, tid: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: Params;`;

/** dst[i] = lpc_mx_scale(src[i], emax) (scale: true) or lpc_qbits_mx(src[i], sb[i], word, mode, r_i). */
async function gpuElementwise(scale: boolean, u: Uint32Array, sb: Uint32Array | null, p: { word?: number; mode?: number; emax?: number; seed?: number }): Promise<Uint32Array> {
  const n = u.length;
  const code = `${PARAMS}
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;
${scale ? '' : '@group(0) @binding(4) var<storage, read> sb: array<u32>;\n'}${mergeWgslDecls({ chunks: [...DEPS.mx, ...DEPS.rng] })}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n) { return; }
  ${scale ? 'dst[i] = lpc_mx_scale(src[i], P.emax);'
    : 'dst[i] = lpc_qbits_mx(src[i], sb[i], P.word, P.mode, select(0u, lpc_random_bits(P.seed, P.step, P.tid, i), P.mode == 3u));'}
}`;
  const params = Uint32Array.of(n, p.word ?? 0, p.mode ?? 0, p.emax ?? 0, p.seed ?? 0, 7, 3, 0);
  const bindings: Parameters<typeof standalone>[3] = [
    { ref: { kind: 'node', id: 0 }, elem: 'u32', access: 'read' },
    { ref: { kind: 'node', id: 1 }, elem: 'u32', access: 'read_write' },
    ...(sb ? [{ ref: { kind: 'node' as const, id: 2 }, elem: 'u32' as const, access: 'read' as const }] : []),
  ];
  const fed = new Map([[0, u], ...(sb ? [[2, sb] as [number, Uint32Array]] : [])]);
  const k = standalone(scale ? 'mx_scale' : 'mx_elem', code, params, bindings, [Math.ceil(n / 64), 1, 1]);
  return (await launch(device, cache, [k], fed, [[1, n]])).get(1)!;
}

test('lpc_mx_scale: every exponent field, subnormals, zero, Inf and NaN, for every element format', async () => {
  const r = seededRandom(TEST_SEED);
  const m: number[] = [0, 1, 2, 3, 0x7fffff, 0x400000, 0x7f800000, 0x7f800001, 0x7fc00000, 0x7fffffff];
  for (let ef = 1; ef < 255; ef++) m.push(ef << 23, (ef << 23) | 0x7fffff, (ef << 23) | Math.floor(r() * 0x800000));
  for (let i = 0; i < 200; i++) m.push(Math.floor(r() * 0x800000) >>> Math.floor(r() * 23));
  const u = Uint32Array.from(m);
  for (const e of ELEMS) {
    const { emax } = MX_ELEMS[e];
    const got = await gpuElementwise(true, u, null, { emax });
    expect([e, diff(got, Array.from(u, (a) => mxScaleByte(a, emax)), u)]).toEqual([e, []]);
  }
});

interface Case { id: string; args: { elem_format: string; axes: number[]; block_size: number; round: string }; x: { shape: number[]; hex: string[] }; scale_e8m0: { values: number[] } }
const golden = JSON.parse(readFileSync(path.resolve(process.cwd(), 'test/fixtures/golden/mx.json'), 'utf8')) as { cases: Case[] };
const ELEM: Record<string, MxElem> = { fp8_e4m3: 'e4m3', fp8_e5m2: 'e5m2', fp6_e3m2: 'e3m2', fp6_e2m3: 'e2m3', fp4_e2m1: 'e2m1', int8: 'int8', int4: 'int4' };
const MODE: Record<string, number> = { nearest: MX_NEAREST, even: MX_EVEN, floor: MX_FLOOR };

test('lpc_qbits_mx on every golden element: the library\'s scale bytes and lpc\'s own, its three roundings and stochastic', async () => {
  for (const c of golden.cases) {
    const shape = c.x.shape, ax = c.args.axes[0] < 0 ? shape.length + c.args.axes[0] : c.args.axes[0];
    const L = mxLayout(shape, ax, c.args.block_size || shape[ax]);
    const elem = ELEM[c.args.elem_format], word = mxElemWord(elem);
    const u = Uint32Array.from(c.x.hex, (h) => parseInt(h, 16));
    const own = mxScaleBytes(u, L, MX_ELEMS[elem].emax);
    const r = randomBitsArray(11, 7, 3, u.length);
    for (const [which, bytes] of [['library', c.scale_e8m0.values], ['lpc', own]] as const) {
      const sb = Uint32Array.from(u, (_, i) => bytes[mxBlockOf(i, L)]);
      for (const mode of [MODE[c.args.round], MX_STOCHASTIC]) {
        const got = await gpuElementwise(false, u, sb, { word, mode, seed: 11 });
        const want = Array.from(u, (v, i) => qMxBits(v, sb[i], word, mode, mode === MX_STOCHASTIC ? r[i] : 0));
        const what = `${c.id} ${which} scale, mode ${mode}`;
        expect([what, diff(got, want, u)]).toEqual([what, []]);
      }
    }
  }
});

/** The quantize op's kernels (kernels/mx.ts) on the GPU vs the CPU quantize(). */
async function quantizeOp(x: Float32Array, shape: number[], fmt: Format, rounding: Rounding): Promise<void> {
  const g = emptyGraph('t'), b = new Builder(g);
  const xin = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
  const id = b.add('quantize', [xin], { fmt, rounding, role: 'A' });
  const ks = kernelsForNode(g, id);
  expect(ks.map((k) => k.name)).toEqual([expect.stringMatching(new RegExp(`^quantize_mx(4|rows)?_qmx${rounding === "stochastic" ? "_sr" : ""}$`))]);
  const step = { seed: 0x5eed, step: 4 };
  const { values } = await runKernels(device, g, { feeds: new Map([[xin, x]]), run: [id], read: [id], step, pipelines: cache, variant: 'cpu-driver' });
  const got = new Uint32Array((values.get(id) as Float32Array).buffer);
  const want = new Uint32Array(quantize(x, shape, fmt, rounding, { ...step, tensorId: id }).buffer);
  const what = `${formatToString(fmt)}:${rounding} [${shape}] (seed ${TEST_SEED})`;
  expect([what, diff(got, want, new Uint32Array(x.buffer))]).toEqual([what, []]);
}

test('the quantize op: partial and strided blocks, specials, every element format, nearest and stochastic', async () => {
  const r = seededRandom(TEST_SEED + 1);
  const data = (n: number) => {
    const x = Float32Array.from({ length: n }, () => (r() - 0.5) * 2 ** Math.floor(r() * 40 - 20));
    const u = new Uint32Array(x.buffer);
    // a block of subnormals, an Inf, a NaN, zeros of both signs, a value near FLT_MAX
    for (let i = 0; i < 6; i++) u[i] = Math.floor(r() * 0x800000) | (r() < 0.5 ? 0x80000000 : 0);
    u[Math.floor(n / 2)] = 0x7f800000; u[n - 1] = 0x7fc00001; u[n - 2] = 0x80000000; u[n - 3] = 0; u[n - 7] = 0x7f7fffff;
    return x;
  };
  const shapes: [number[], Partial<Format & { kind: 'mx' }>][] = [
    [[3, 37], {}], // last axis, a partial block of 5 per row
    [[2, 5, 3, 3], { block: 4 }], // axis 1 (channels) by default: strided blocks of 4 and 1
    [[9, 4], { axis: 0, block: 8 }],
    [[70], { block: 64 }],
    // the vector walks of kernels/mx.ts: whole rows of 4 (inner 1), and 4 lanes of channel blocks (inner % 4 = 0)
    [[3, 72], {}], // rows: blocks of 32, 32 and a partial 8
    [[2, 40, 2, 2], {}], // lanes: a block of 32 and a partial one of 8 per 4 positions
    [[2, 6, 4, 3], {}], // lanes: 6 channels, one partial block
    [[128], { block: 16 }], // rows, one line
  ];
  // every walk of the kernel is exercised
  expect(new Set(shapes.map(([shape, o]) => mxWalk({ kind: 'mx', elem: 'e4m3', block: 32, ...o } as never, shape)))).toEqual(new Set(['scalar', 'lanes', 'rows']));
  for (const [shape, o] of shapes)
    for (const elem of ELEMS)
      for (const rounding of ['nearest', 'stochastic'] as Rounding[])
        await quantizeOp(data(numel(shape)), shape, { kind: 'mx', elem, block: 32, ...o } as Format, rounding);
});

test('lenet5 with MX in every role, quantizers fused: the executor trains like the CPU interpreter', async () => {
  const policy = parsePolicy('W=mx<e4m3> A=mx<e2m1,block=16>:stochastic E=mx<e5m2>:stochastic G=mx<int8> M=mx<e3m2> ACC=mx<int8,block=8,axis=0>');
  const m = fuseQuantizers(runPasses(frontEnd('models/lenet5.ts', 4), { batch: 4, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: policy, fuse: false }));
  const gpu = await getGpu({ quiet: true });
  const web = new WebGpuBackend(gpu, m), cpu = new CpuBackend(m);
  expect(web.kernels('train').filter((k) => k.epilogue?.startsWith('mx')).length).toBeGreaterThan(5);
  await expectLenetStepsLikeCpu(m, web, cpu);
});

describe('save=mx<…>: format_compress / format_decompress kernels give the CPU semantics\' words and values', () => {
  const cases: [string, number[]][] = [
    ['mx<e3m2>', [3, 37]], // 6-bit codes straddle words; a partial block per row
    ['mx<int4,block=16>', [2, 20, 3, 3]], // channel-axis blocks
    ['mx<e5m2,axis=0>', [5, 7]],
    ['mx<e2m3,block=2>', [1001]],
    ['mx<int8>', [4, 70]],
    ['mx<e4m3,block=8>', [2, 3, 5, 5]], // 3 channels: blocks of 3
    ['mx<e2m1>', [3, 33]],
    // above MX_COMPRESS_ONE_KERNEL elements: two kernels (scale bytes, then codes); the cases above take one
    ['mx<e3m2>', [300, 250]],
    ['mx<int4,block=16>', [8, 40, 15, 15]],
  ];
  test.each(cases)('%s [%s]', async (name, shape) => {
    const fmt = parseFormat(name);
    const g = emptyGraph('t'), b = new Builder(g);
    const x = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
    const c = b.add('format_compress', [x], { fmt });
    const d = b.add('format_decompress', [c], { fmt, shape });
    const r = seededRandom(TEST_SEED + 7);
    const xs = Float32Array.from({ length: numel(shape) }, () => (r() - 0.5) * 2 ** Math.floor(r() * 40 - 20));
    const xu = new Uint32Array(xs.buffer);
    xu[0] = 0x80000000; xu[1] = 3; xu[xs.length - 1] = 0x7fc00000; xu[Math.floor(xs.length / 3)] = 0xff800000;
    const res = await runKernels(device, g, { feeds: new Map([[x, xs]]), run: [c, d], read: [c, d], pipelines: cache });
    const run = (id: number, ins: Float32Array[]) => {
      const n = g.nodes[id], out = new Float32Array(numel(n.type.shape));
      getOp(n.op).cpu(ins, out, { attrs: n.attrs, epi: n.epi, inTypes: n.inputs.map((i) => g.nodes[i].type), type: n.type, rng: { seed: 0, step: 0, tensorId: id } });
      return out;
    };
    expect(kernelsForNode(g, c).length).toBe(numel(shape) > MX_COMPRESS_ONE_KERNEL ? 2 : 1);
    const wc = run(c, [xs]);
    const gotC = new Uint32Array(res.values.get(c)!.buffer), gotD = new Uint32Array(res.values.get(d)!.buffer);
    expect([name, diff(gotC, new Uint32Array(wc.buffer), xu)]).toEqual([name, []]);
    expect([name, diff(gotD, new Uint32Array(run(d, [wc]).buffer), xu)]).toEqual([name, []]);
  });
});

test('a training step of the residual BN net with save=mx<e3m2>: the packed words and restored values as on the CPU', async () => {
  const batch = 4;
  const m = runPasses(frontEnd('test/fixtures/resbn.ts', batch), { batch, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, wd: 5e-4 }, precision: parsePolicy('save=mx<e3m2>'), log: () => {} });
  const g = m.graphs.find((x) => x.name === 'train')!;
  const feeds: Map<number, HostArray> = stepFeeds(g, initState(m, 0), seededRandom(TEST_SEED + 9));
  const run = g.nodes.filter((n) => n.op !== 'input' && n.op !== 'state').map((n) => n.id);
  const ids = g.nodes.filter((n) => /^format_(de)?compress$/.test(n.op)).map((n) => n.id);
  expect(ids.length).toBeGreaterThan(10);
  const read = [...new Set([...ids, ...ids.flatMap((id) => g.nodes[id].inputs)])].filter((id) => !['state', 'input'].includes(g.nodes[id].op));
  const r = await runKernels(device, g, { feeds, run, read, step: { seed: 9, step: 3 }, pipelines: cache });
  const value = (id: number) => { const v = r.values.get(id) ?? feeds.get(id)!; return v instanceof Float32Array ? v : new Float32Array(v.buffer, v.byteOffset, v.length); };
  for (const id of ids) {
    const n = g.nodes[id], out = new Float32Array(numel(n.type.shape));
    getOp(n.op).cpu(n.inputs.map(value), out, { attrs: n.attrs, epi: n.epi, inTypes: n.inputs.map((i) => g.nodes[i].type), type: n.type, rng: { seed: 9, step: 3, tensorId: id } });
    const what = `%${id} ${n.op}`;
    expect([what, diff(new Uint32Array(value(id).buffer), new Uint32Array(out.buffer), new Uint32Array(0))]).toEqual([what, []]);
  }
}, 120000);
