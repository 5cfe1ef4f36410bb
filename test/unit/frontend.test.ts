import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { typeCheck, typeCheckMarker, loadModel, frontEnd, DiagnosticsError } from '../../dsl/frontend.js';
import { LocatedError } from '../../ir/types.js';

describe('front end', () => {
  test('a type error is reported as file:line:col with a code frame', () => {
    let err: unknown;
    try { typeCheck('test/fixtures/type_error.ts'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(DiagnosticsError);
    const msg = (err as Error).message;
    expect(msg.split('\n')[0]).toMatch(/^test\/fixtures\/type_error\.ts:5:25: error TS2322: Type 'string' is not assignable to type 'number'/);
    expect(msg).toContain("   5 |   const h = conv2d(x, { out: '6', kernel: 5 });");
    expect(msg).toContain('     |                         ^^^');
  });

  test("a shape error names the user's line and column", () => {
    expect(() => frontEnd('test/fixtures/shape_error.ts', 64)).toThrow(
      'test/fixtures/shape_error.ts:6:10: conv2d expects 4-D input [N, C, H, W], got [64, 3456]');
  });

  test('a model may import only lpc/dsl', () => {
    for (const f of [loadModel, (file: string) => frontEnd(file, 2)])
      expect(() => f('test/fixtures/bad_import.ts')).toThrow(
        "test/fixtures/bad_import.ts:2:21: a model may import only 'lpc/dsl' and its own files (./…), not 'node:fs'");
  });

  test('a passed type-check is remembered for the same source only; errors are never cached', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-tc-'));
    const file = path.join(dir, 'm.ts');
    const good = `import { model, input, linear, flatten } from 'lpc/dsl';\nexport default model('m${Date.now()}', () => linear(flatten(input([1, 2, 2])), 3));\n`;
    fs.writeFileSync(file, good);
    const marker = typeCheckMarker(file)!;
    expect(marker).toBeDefined();
    expect(fs.existsSync(marker)).toBe(false);
    typeCheck(file);
    expect(fs.existsSync(marker)).toBe(true);
    fs.writeFileSync(file, good.replace('3));', "'3'));"));
    expect(fs.existsSync(typeCheckMarker(file)!)).toBe(false);
    expect(() => typeCheck(file)).toThrow(DiagnosticsError);
    expect(() => typeCheck(file)).toThrow(DiagnosticsError);
    // A local import is part of the key: editing the imported file changes the marker (test/unit/model-project.test.ts).
    fs.writeFileSync(path.join(path.dirname(file), 'other.ts'), 'export {};\n');
    fs.writeFileSync(file, `import './other.js';\n${good}`);
    expect(typeCheckMarker(file)).not.toBe(marker);
    fs.rmSync(marker);
  });

  test('a missing model file is one clear error', () => {
    expect(() => typeCheck('test/fixtures/nope.ts')).toThrow('test/fixtures/nope.ts: no such model file');
  });

  test('every node carries the loc of the DSL call that made it; helpers and loops trace', () => {
    const m = frontEnd('test/fixtures/helpers_loop.ts', 2);
    const train = m.graphs.find((g) => g.name === 'train')!;
    const convs = train.nodes.filter((n) => n.op === 'conv2d');
    expect(convs).toHaveLength(5);
    // The two convs of block() point at lines 5 and 6 of the helper, for both loop iterations.
    expect(convs.map((n) => `${n.loc!.line}:${n.loc!.col}`)).toEqual(['10:16', '5:28', '6:32', '5:28', '6:32']);
    for (const n of train.nodes) if (n.op !== 'input' || n.attrs.name === 'x') expect(n.loc?.file).toBe('test/fixtures/helpers_loop.ts');
    expect(train.updates.map((u) => u.name)).toEqual(['bn0.running', 'bn1.running', 'bn2.running', 'bn3.running']);
    // Eval mode normalises with the running statistics: no batch statistics, no updates.
    const ev = m.graphs.find((g) => g.name === 'eval')!;
    expect(ev.nodes.some((n) => n.op === 'bn_stats')).toBe(false);
    expect(ev.updates).toEqual([]);
  });

  test('shape errors from the op table carry the loc too', () => {
    expect(() => frontEnd('test/fixtures/add_error.ts', 2)).toThrow('test/fixtures/add_error.ts:5:10: shape mismatch: [2, 4] vs [2, 5]');
  });
});

test('LocatedError prints file:line:col', () => {
  expect(new LocatedError({ file: 'm.ts', line: 3, col: 4 }, 'bad').message).toBe('m.ts:3:4: bad');
});
