/**
 * Reading PyTorch state_dicts: safetensors files assembled by hand here from the format's spec (8-byte little-endian
 * header length, a JSON header of dtype/shape/data_offsets, then the bytes) — not by lpc's writer — decode with
 * F16/BF16/F64 converted to float32 exactly as hand-computed; malformed files give one line naming the file (and
 * tensor); loadStateDict matches like load_state_dict(strict=True) or reports what non-strict skipped.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError, decodeSafetensors } from '../../runtime/checkpoint.js';
import { loadStateDict, readWeights } from '../../runtime/weights.js';
import type { StateDecl } from '../../runtime/train/init.js';
import { handSafetensors } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-st-'));

const u16 = (...v: number[]) => { const b = Buffer.alloc(2 * v.length); v.forEach((x, i) => b.writeUInt16LE(x, 2 * i)); return b; };
const f64 = (...v: number[]) => { const b = Buffer.alloc(8 * v.length); v.forEach((x, i) => b.writeDoubleLE(x, 8 * i)); return b; };
const f32 = (...v: number[]) => { const b = Buffer.alloc(4 * v.length); v.forEach((x, i) => b.writeFloatLE(x, 4 * i)); return b; };

describe('safetensors dtypes', () => {
  test('F16 (normals, subnormals, ±0, ±Inf, NaN), BF16 and F64 convert to float32 as computed by hand', () => {
    const buf = handSafetensors([
      ['h', 'F16', [10], u16(0x3c00, 0xc000, 0x3555, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000, 0x7c00, 0xfc00)],
      ['hn', 'F16', [1], u16(0x7e00)],
      ['b', 'BF16', [2, 3], u16(0x3f80, 0x4049, 0x0001, 0xc2f7, 0xff80, 0x7fc0)],
      ['d', 'F64', [5], f64(0.1, -2.5, 1e300, 1e-50, 1 + 2 ** -30)],
      ['f', 'F32', [1], f32(-0.75)],
    ], { __metadata__: { format: 'pt' } });
    const t = decodeSafetensors(buf, 'sd.safetensors').tensors;
    expect(Array.from(t.get('h')!.data)).toEqual([
      1, -2,
      0.333251953125, // 0x3555: (1 + 341/1024) · 2^−2
      2 ** -24, 1023 * 2 ** -24, 2 ** -14, // smallest and largest subnormal, smallest normal
      65504, -0, Infinity, -Infinity]);
    expect(Object.is(t.get('h')!.data[7], -0)).toBe(true);
    expect(Number.isNaN(t.get('hn')!.data[0])).toBe(true);
    const b = t.get('b')!;
    expect(b.shape).toEqual([2, 3]);
    expect(Array.from(b.data.subarray(0, 5))).toEqual([1, 3.140625, 2 ** -133, -123.5, -Infinity]); // 0x0001: a bf16 subnormal
    expect(Number.isNaN(b.data[5])).toBe(true);
    expect(Array.from(t.get('d')!.data)).toEqual([Math.fround(0.1), -2.5, Infinity, 0, 1]); // round to nearest, overflow to Inf
    expect(t.get('f')!.data[0]).toBe(-0.75);
    expect(t.get('d')!.dtype).toBe('F64');
  });

  const oneLine = (buf: Buffer, re: RegExp) => {
    let err: unknown;
    try { decodeSafetensors(buf, 'w.safetensors', '--init-from'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(CheckpointError);
    const m = (err as Error).message;
    expect(m.includes('\n')).toBe(false);
    expect(m.startsWith('--init-from w.safetensors: ')).toBe(true);
    expect(m).toMatch(re);
  };
  test('bad files: one line each, naming the file and the tensor', () => {
    const good = handSafetensors([['a', 'F32', [2], f32(1, 2)], ['b', 'F32', [1], f32(3)]]);
    oneLine(Buffer.from('this is not a safetensors file, just text\n'), /not a valid safetensors file \(header length \d+ is over the 100000000-byte limit\)/);
    oneLine(Buffer.from('{"a":1}'), /shorter than its 8-byte header length/);
    oneLine(good.subarray(0, good.length - 2), /tensor 'b' has data_offsets \[8,12\] that do not fit its shape or the file/);
    oneLine(good.subarray(0, 20), /header length \d+ exceeds the file \(truncated\?\)/);
    const big = Buffer.from(good); big.writeBigUInt64LE(2n ** 40n); oneLine(big, /header length 1099511627776 is over the 100000000-byte limit/);
    oneLine(handSafetensors([['conv0.weight', 'I64', [1], Buffer.alloc(8)]]), /tensor 'conv0.weight' has dtype I64, which lpc cannot read \(it reads F32, F16, BF16 and F64\)/);
    oneLine(handSafetensors([['mask', 'U8', [4], Buffer.alloc(4)]]), /tensor 'mask' has dtype U8, which lpc cannot read/);
    oneLine(Buffer.concat([good, Buffer.alloc(4)]), /4 bytes of data belong to no tensor/);
    // offsets that overlap, and a gap: assembled with explicit offsets
    const withOffsets = (a: [number, number], b: [number, number], n: number) => {
      const json = Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: a }, b: { dtype: 'F32', shape: [1], data_offsets: b } }));
      const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(json.length));
      return Buffer.concat([len, json, Buffer.alloc(n)]);
    };
    oneLine(withOffsets([0, 8], [4, 8], 8), /tensors 'a' and 'b' overlap/);
    oneLine(withOffsets([0, 8], [12, 16], 16), /bytes 8\.\.12 of the data belong to no tensor/);
    oneLine(withOffsets([0, 8], [8, 16], 16), /tensor 'b' has data_offsets \[8,16\] that do not fit/);
  });
});

describe('loadStateDict', () => {
  const decls: StateDecl[] = [
    { name: 'conv0.weight', kind: 'param', shape: [2, 1], init: 'uniform' },
    { name: 'bn0.running', kind: 'buffer', shape: [2, 2], init: 'bn_running' },
    { name: 'conv0.weight.acc', kind: 'optim', shape: [2, 1], init: 'copy:conv0.weight' },
    { name: 'conv0.weight.momentum', kind: 'optim', shape: [2, 1], init: 'zeros' },
  ];
  const model = decls.filter((d) => d.kind !== 'optim');
  const fresh = () => new Map(decls.map((d) => [d.name, new Float32Array(d.shape[0] * d.shape[1])]));
  const write = (name: string, tensors: [string, string, number[], Buffer][]) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, handSafetensors(tensors));
    return readWeights(f, '--init-from', 1 << 20);
  };
  const torch = (extra: [string, string, number[], Buffer][] = []) => [
    ['conv0.weight', 'F32', [2, 1], f32(0.5, -1)], ['bn0.running_mean', 'BF16', [2], u16(0x3f80, 0x4000)],
    ['bn0.running_var', 'F64', [2], f64(3, 4)], ['bn0.num_batches_tracked', 'I64', [], Buffer.alloc(8)], ...extra,
  ] as [string, string, number[], Buffer][];

  test("a PyTorch state_dict: running_mean/var fill lpc's running buffer, num_batches_tracked (I64) is ignored, the accumulator copies the weight", () => {
    const w = write('ok.safetensors', torch([['conv0.weight.momentum', 'F32', [2, 1], f32(9, 9)], ['swa.conv0.weight', 'F32', [2, 1], f32(7, 7)]]));
    const s = fresh();
    const r = loadStateDict(s, decls, model, w, { what: '--init-from', model: 'm', strict: true });
    expect(r).toMatchObject({ loaded: 3, expected: 3, missing: [], unexpected: [], shapes: [] });
    expect(Array.from(s.get('conv0.weight')!)).toEqual([0.5, -1]);
    expect(Array.from(s.get('bn0.running')!)).toEqual([1, 2, 3, 4]);
    expect(Array.from(s.get('conv0.weight.acc')!)).toEqual([0.5, -1]);
    expect(Array.from(s.get('conv0.weight.momentum')!)).toEqual([0, 0]); // run state starts fresh
  });

  test('strict: a missing key, an extra key and a wrong shape are named in one line', () => {
    const w = write('bad.safetensors', [
      ['conv0.weight', 'F32', [1, 2], f32(0.5, -1)], ['bn0.running_mean', 'F32', [2], f32(0, 0)], ['fc.weight', 'F32', [1], f32(1)],
    ]);
    const s = fresh(), before = Float32Array.from(s.get('conv0.weight')!);
    let m = '';
    try { loadStateDict(s, decls, model, w, { what: '--init-from', model: 'm', strict: true }); } catch (e) { m = (e as Error).message; }
    expect(m).toBe(`--init-from ${w.file}: does not match model 'm' (strict, as load_state_dict): missing bn0.running_var; unexpected fc.weight; ` +
      'wrong shape conv0.weight [1, 2] in the file, [2, 1] in the model; --init-from-non-strict loads what matches');
    expect(s.get('conv0.weight')).toEqual(before); // nothing loaded
  });

  test('a model tensor of a dtype lpc cannot read (I64, U8) is one line naming it, strict or not', () => {
    for (const [dtype, bytes] of [['I64', Buffer.alloc(16)], ['U8', Buffer.alloc(2)]] as const) {
      const w = write(`int-${dtype}.safetensors`, torch().map((t) => (t[0] === 'conv0.weight' ? [t[0], dtype, t[2], bytes] : t)) as [string, string, number[], Buffer][]);
      for (const strict of [true, false])
        expect(() => loadStateDict(fresh(), decls, model, w, { what: '--init-from', model: 'm', strict }))
          .toThrow(new CheckpointError(w.file, `tensor 'conv0.weight' has dtype ${dtype}, which lpc cannot read (it reads F32, F16, BF16 and F64)`, '--init-from'));
    }
  });

  test('non-strict loads what matches and reports the rest', () => {
    const w = write('part.safetensors', [['conv0.weight', 'F32', [2, 1], f32(2, 3)], ['bn0.running_mean', 'F16', [2], u16(0x3c00, 0x3c00)], ['head.bias', 'F32', [1], f32(1)]]);
    const s = fresh();
    const r = loadStateDict(s, decls, model, w, { what: '--init-from', model: 'm', strict: false });
    expect(r).toMatchObject({ loaded: 2, expected: 3, missing: ['bn0.running_var'], unexpected: ['head.bias'], shapes: [] });
    expect(Array.from(s.get('bn0.running')!)).toEqual([1, 1, 0, 0]);
    expect(Array.from(s.get('conv0.weight.acc')!)).toEqual([2, 3]);
  });
});
