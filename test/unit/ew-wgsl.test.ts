/**
 * The op table's elementwise ops (ir/ops/elementwise.ts) and their WGSL spellings (codegen/ew-wgsl.ts): every
 * elementwise op has one, and constants are spelled as f32 literals that round-trip.
 */
import { allOps } from '../../ir/ops/index.js';
import { ewWgsl, hasEwWgsl, wgslF32, wgslPost } from '../../codegen/ew-wgsl.js';
import { parsePost } from '../../ir/parse.js';

test('every elementwise op has a WGSL spelling, and only those', () => {
  const ew = allOps().filter((d) => d.ew).map((d) => d.name);
  expect(ew.filter((n) => !hasEwWgsl(n))).toEqual([]);
  expect(allOps().filter((d) => !d.ew && hasEwWgsl(d.name)).map((d) => d.name)).toEqual([]);
  expect(() => ewWgsl('conv2d', ['a'], {})).toThrow("no WGSL spelling for elementwise op 'conv2d'");
});

test('WGSL spellings and f32 literals', () => {
  expect(ewWgsl('relu_bwd', ['d', 'y'], {})).toBe('select(0.0, d, y > 0.0)');
  expect(ewWgsl('scale', ['a'], { c: 0.1 })).toBe('(a * 0.10000000149011612f)');
  expect(wgslF32(2)).toBe('2.0f');
  expect(() => wgslF32(1e39)).toThrow('non-finite constant');
  expect(wgslPost(parsePost('relu(add(x,$0))'), 'v', (k) => `p${k}[i]`)).toBe('max((v + p0[i]), 0.0)');
});
