/**
 * MX formats in the IR type: canonical text (print ∘ parse), the precision spec in every role, IR text, bad input
 * (unknown element format, block size not a power of two, an axis the tensor lacks), the default axis, partial
 * blocks (the reference's zero padding) and storage bits.
 */
import { Builder, emptyGraph } from '../../ir/graph.js';
import { spawnSync } from 'node:child_process';
import { FormatParseError, MX_ELEMS, formatBits, formatBitsWithScale, formatToString, parseFormat } from '../../ir/format.js';
import { parsePolicy, parsePolicyDiagnostics, printPolicy } from '../../ir/precision/index.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { getOp } from '../../ir/ops/index.js';
import { quantize } from '../../ir/quant/quantize.js';
import { MX_NEAREST, mxAxis, mxLayout, mxPackedBytes, quantizeMxWith } from '../../ir/quant/mx.js';
import { packedBytes } from '../../passes/memory.js';
import { loadConfigs, precisionProblem } from '../../runtime/sweep/configs.js';
import { LocatedError } from '../../ir/types.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { rand } from './helpers.js';

const msg = (s: string) => { try { return formatToString(parseFormat(s)); } catch (e) { expect(e).toBeInstanceOf(FormatParseError); return (e as Error).message; } };
const errs = (text: string) => parsePolicyDiagnostics(text).errors.map((e) => `${e.line}:${e.col}: ${e.message}`);

test('canonical text: defaults (block 32, the default axis) are not printed; options in any order', () => {
  for (const s of ['mx<e4m3>', 'mx<e5m2>', 'mx<e3m2>', 'mx<e2m3>', 'mx<e2m1>', 'mx<int8>', 'mx<int4>', 'mx<e2m1,block=16>', 'mx<int8,axis=0>', 'mx<e4m3,block=64,axis=1>'])
    expect(msg(s)).toBe(s);
  expect(msg('mx< e4m3 , axis=1, block=32 >')).toBe('mx<e4m3,axis=1>');
  expect(parseFormat('mx<e2m1,block=16>')).toEqual({ kind: 'mx', elem: 'e2m1', block: 16 });
});

test('bad formats: one line with the column of the offending argument', () => {
  expect(msg('mx<e9m9>')).toBe("4: mx: unknown element format 'e9m9'; expected e4m3, e5m2, e3m2, e2m3, e2m1, int2 … int8");
  expect(msg('mx<e4m3,block=48>')).toBe('9: mx: block must be a power of two (got 48)');
  expect(msg('mx<e4m3,block=0>')).toBe('9: mx: block must satisfy 1 <= block <= 65536 (got 0)');
  expect(msg('mx<e4m3,axis=-1>')).toBe('9: mx: axis must be an integer >= 0 (got -1)');
  expect(msg('mx<e4m3,block=16,block=32>')).toBe("18: mx: unexpected option 'block=32'; expected block=B, axis=k, scale=S or fwd|bwd (each at most once)");
  expect(msg('mx<8>')).toBe('4: mx expects mx<elem[,block=B][,axis=k][,scale=S][,fwd|bwd]> (elem: e4m3, e5m2, e3m2, e2m3, e2m1, int2 … int8; S: floor, ceil, even, rceil)');
  expect(msg('mx')).toBe('1: mx expects mx<elem[,block=B][,axis=k][,scale=S][,fwd|bwd]> (elem: e4m3, e5m2, e3m2, e2m3, e2m1, int2 … int8; S: floor, ceil, even, rceil)');
});

test('the precision spec takes MX in every role and prints it back; errors name the place', () => {
  const spec = 'W=mx<e4m3> A=mx<e2m1,block=16>:stochastic E=mx<e5m2>:stochastic G=mx<int8,axis=0> M=mx<e3m2> V=mx<e2m3> ACC=mx<int4>';
  const p = parsePolicy(spec);
  expect(p.roles.A).toEqual({ fmt: { kind: 'mx', elem: 'e2m1', block: 16 }, rounding: 'stochastic' });
  expect(parsePolicy(printPolicy(p))).toEqual(p);
  expect(printPolicy(p)).toContain('G=mx<int8,axis=0>');
  // named classes (PEPPP's explicit quantizer sites) take MX too
  expect(parsePolicy('low=mx<e2m1>:stochastic W=low').roles.W).toEqual({ fmt: { kind: 'mx', elem: 'e2m1', block: 32 }, rounding: 'stochastic' });
  expect(errs('W=mx<e4m3> A=mx<fp8>')).toEqual(["1:17: mx: unknown element format 'fp8'; expected e4m3, e5m2, e3m2, e2m3, e2m1, int2 … int8"]);
  expect(errs('A=mx<int8,block=24>')).toEqual(['1:11: mx: block must be a power of two (got 24)']);
  expect(errs('mx=mx<int8>')[0]).toMatch(/'mx' cannot name a precision class/);
});

test('IR text: a quantize node of each element format prints and parses back', () => {
  const g = emptyGraph('t');
  const b = new Builder(g);
  let x = b.add('input', [], { name: 'x', kind: 'data', shape: [2, 40], dtype: 'f32' });
  for (const elem of Object.keys(MX_ELEMS)) x = b.add('quantize', [x], { fmt: parseFormat(`mx<${elem},block=8>`), rounding: 'nearest', role: 'A' });
  g.outputs.push({ name: 'y', node: x });
  const text = printModule({ version: 1, name: 'm', graphs: [g] });
  expect(text).toContain('mx<int4,block=8>');
  expect(printModule(parseModule(text, 'test.lpir'))).toBe(text);
});

test('an axis the tensor lacks is refused with the role and format', () => {
  const infer = () => getOp('quantize').infer([{ shape: [4, 5], dtype: 'f32', fmt: { kind: 'f32' } }], { fmt: parseFormat('mx<e4m3,axis=2>'), rounding: 'nearest', role: 'W' });
  expect(infer).toThrow('precision W=mx<e4m3,axis=2>: axis 2 does not exist in a tensor of shape [4, 5]');
});

test('default axis: channels of a 4-D tensor (NCHW activations, OIHW weights), else the last axis', () => {
  const f = parseFormat('mx<e4m3>') as Extract<ReturnType<typeof parseFormat>, { kind: 'mx' }>;
  expect([[8, 16, 5, 5], [64, 120], [10], [2, 3, 7]].map((s) => mxAxis(f, s))).toEqual([1, 1, 0, 2]);
  expect(mxAxis({ ...f, axis: 0 }, [8, 16, 5, 5])).toBe(0);
  // along channels: element (n, c, h, w) shares its block with (n, c', h, w), c' in the same run of 32 channels
  const r = rand(3);
  const x = Float32Array.from({ length: 2 * 40 * 2 * 2 }, () => r() - 0.5);
  x[(0 * 40 + 3) * 4 + 1] = 1000; // one large value: only its block (n=0, channels 0..31, position 1) coarsens
  const q = quantize(x, [2, 40, 2, 2], { ...f, elem: 'int8' }, 'nearest');
  const other = (n: number, c: number, p: number) => (n * 40 + c) * 4 + p;
  expect(Math.abs(q[other(0, 5, 1)])).toBe(0); // same block as 1000 (s = 9, grid 8) : |x| < 0.5 rounds to 0
  expect(q[other(0, 5, 0)]).not.toBe(0); // another position: another block
  expect(q[other(0, 35, 1)]).not.toBe(0); // channels 32..39: the partial block
});

test('a partial block equals the same block zero-padded to full size (the reference pads)', () => {
  const r = rand(5);
  for (const elem of ['e4m3', 'e2m1', 'int8'] as const) {
    const x = Float32Array.from({ length: 3 * 37 }, () => (r() - 0.5) * 2 ** Math.floor(r() * 20 - 10));
    const padded = new Float32Array(3 * 64);
    for (let row = 0; row < 3; row++) padded.set(x.subarray(row * 37, row * 37 + 37), row * 64);
    const a = quantizeMxWith(x, mxLayout([3, 37], 1, 32), elem, MX_NEAREST);
    const b = quantizeMxWith(padded, mxLayout([3, 64], 1, 32), elem, MX_NEAREST);
    for (let row = 0; row < 3; row++) expect([...a.subarray(row * 37, row * 37 + 37)]).toEqual([...b.subarray(row * 64, row * 64 + 37)]);
  }
});

test('storage bits per element (the scale byte per block is extra)', () => {
  expect(['mx<e4m3>', 'mx<e5m2>', 'mx<e3m2>', 'mx<e2m3>', 'mx<e2m1>', 'mx<int8>', 'mx<int4>'].map((s) => formatBits(parseFormat(s)))).toEqual([8, 8, 6, 6, 4, 8, 4]);
});

test('packed bytes (lpc peppp memory): 8/6/4 bits per element plus a scale byte per block, in u32 words', () => {
  // [3, 40] along the last axis: 2 blocks per row (32 and a partial 8), 6 scale bytes = 2 words
  expect(mxPackedBytes({ kind: 'mx', elem: 'e4m3', block: 32 }, [3, 40])).toBe(120 + 8);
  expect(mxPackedBytes({ kind: 'mx', elem: 'e3m2', block: 32 }, [3, 40])).toBe(Math.ceil((120 * 6) / 32) * 4 + 8);
  expect(mxPackedBytes({ kind: 'mx', elem: 'int4', block: 32 }, [3, 40])).toBe(60 + 8);
  const g = emptyGraph('t'), b = new Builder(g);
  const x = b.add('input', [], { name: 'x', kind: 'data', shape: [64, 64], dtype: 'f32' });
  const q = b.add('quantize', [x], { fmt: parseFormat('mx<e2m1>'), rounding: 'nearest', role: 'A' });
  expect(packedBytes(g, q)).toBe(64 * 64 / 2 + 128); // 4.25 bits per element
});

test('sweep configurations (JSON lists) take MX through the precision parser; grids stay float<E,M>', () => {
  expect(precisionProblem('low=mx<e2m1>:stochastic high=mx<int8,block=16> W=low G=low M=high ACC=high loss_scale=1000')).toBeUndefined();
  expect(precisionProblem('low=mx<e2m1,block=12> W=low')).toBe('1:13: mx: block must be a power of two (got 12)');
});

test('--configs grid: mx<ELEM|ELEM…[,block=B]> terms beside float<E,M>', () => {
  const g = loadConfigs('grid:low=mx<e4m3|e2m1>+float<4,3>,high=mx<int8,block=16>');
  expect(g.map((c) => c.name)).toEqual(['l_mx_e4m3_h_mx_int8_b16', 'l_mx_e2m1_h_mx_int8_b16', 'l_8_3_h_mx_int8_b16']);
  expect(g[1].precision).toBe('low=mx<e2m1>:stochastic high=mx<int8,block=16>:stochastic W=low G=low M=high ACC=high loss_scale=1000');
  for (const c of g) expect(precisionProblem(c.precision)).toBeUndefined();
  expect(() => loadConfigs('grid:low=mx<e4m3|fp8>')).toThrow("--configs: slot low: 'fp8' is not an MX element format (e4m3, e5m2, e3m2, e2m3, e2m1, int8, int7, int6, int5, int4, int3, int2)");
});

test('a role\'s explicit axis that a tensor lacks is refused at the layer\'s line', () => {
  const sgd = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
  let err: unknown;
  try { runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer: sgd, precision: parsePolicy('A=mx<e4m3,axis=3>'), log: () => {} }); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(LocatedError);
  const e = err as LocatedError;
  expect(`${e.loc?.file}:${e.loc?.line}: ${e.message}`).toMatch(/^models\/lenet5\.ts:9: .*precision A=mx<e4m3,axis=3>: axis 3 does not exist in a tensor of shape \[2, 120\]$/);
});

test('lpc peppp memory: an MX class counts its scale byte per block (PEPPP\'s formula, lpc\'s packed plan)', () => {
  expect(['mx<e4m3>', 'mx<e2m1,block=16>', 'float<4,3>', 'bfp<8>'].map((s) => formatBitsWithScale(parseFormat(s)))).toEqual([8.25, 4.5, 8, 8]);
  const r = spawnSync(process.execPath, ['bin/lpc.js', 'peppp', 'memory', 'models/peppp-lenet5.ts', '--json',
    '--configs', 'grid:low=mx<e4m3>+float<4,3>+mx<e4m3,block=8>,high=float<6,7>'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  const [mx32, fp8, mx8] = (JSON.parse(r.stdout) as { configs: { memory_mb: number; planned_mb: number }[] }).configs;
  expect(mx32.memory_mb).toBeGreaterThan(fp8.memory_mb);
  expect(mx8.memory_mb).toBeGreaterThan(mx32.memory_mb);
  expect(mx8.planned_mb).toBeGreaterThan(mx32.planned_mb); // not one shared plan for the two block sizes
}, 60000);
