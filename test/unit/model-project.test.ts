/**
 * Multi-file model projects: a model imports its own modules by relative path (inside its folder tree), they are
 * type-checked together, and every DSL call in any of them carries its own file:line:col — through an alias too.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd, gatherProject, typeCheck, typeCheckMarker, DiagnosticsError } from '../../dsl/frontend.js';
import { frontEndSandboxed } from '../../runtime/sandbox/trace.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-project-'));
const write = (rel: string, text: string) => { const f = path.join(tmp, rel); fs.mkdirSync(path.dirname(f), { recursive: true }); fs.writeFileSync(f, text); return f; };

// blocks/mlp.ts, line 4 col 12: the linear whose input the shape error is about
write('proj/blocks/mlp.ts', [
  "import { linear, relu, flatten, Tensor } from 'lpc/dsl';",
  'export function block(x: Tensor, width: number): Tensor {',
  '  const h = flatten(x);',
  '  return relu(linear(h, width));',
  '}',
  'export function bad(x: Tensor): Tensor { return relu(linear(x, 3)); }',
  ''].join('\n'));
const entry = write('proj/net.ts', [
  "import { model, input, linear, conv2d } from 'lpc/dsl';",
  "import { block } from './blocks/mlp.js';",
  'const c = conv2d;',
  "export default model('net', () => {",
  '  const x = c(input([1, 6, 6]), { out: 2, kernel: 3 });',
  '  return linear(block(x, 8), 2);',
  '});',
  ''].join('\n'));
const badEntry = write('proj/bad.ts', [
  "import { model, input } from 'lpc/dsl';",
  "import { bad } from './blocks/mlp.js';",
  "export default model('bad', () => bad(input([1, 4, 4])));",
  ''].join('\n'));

const locOf = (m: ReturnType<typeof frontEnd>, op: string) => m.graphs[0].nodes.filter((n) => n.op === op).map((n) => n.loc && `${path.basename(n.loc.file)}:${n.loc.line}:${n.loc.col}`);

test('a two-file model traces with every call at its own file, line and column; an alias call keeps its place', () => {
  expect(gatherProject(entry).files.map((f) => f.key)).toEqual(['net.ts', 'blocks/mlp.ts']);
  for (const m of [frontEnd(entry, 2), frontEndSandboxed(entry, 2)]) {
    expect(locOf(m, 'conv2d')).toEqual(['net.ts:5:13']); // c(…): the alias of conv2d
    expect(locOf(m, 'linear')).toEqual(['mlp.ts:4:15', 'net.ts:6:10']);
    expect(locOf(m, 'relu')).toEqual(['mlp.ts:4:10']);
  }
});

test("a shape error in the imported file points at that file's line", () => {
  expect(() => frontEndSandboxed(badEntry, 2)).toThrow(/blocks\/mlp\.ts:6:54: linear expects 2-D input \[N, features\], got \[2, 1, 4, 4\]/);
});

test('type errors in an imported file are reported there, and editing it invalidates the type-check cache', () => {
  const dir = path.join(tmp, 'typed');
  const dep = write('typed/dep.ts', "export const width: number = 'eight';\n");
  const main = write('typed/main.ts', "import { model, input, flatten, linear } from 'lpc/dsl';\nimport { width } from './dep.js';\nexport default model('t', () => linear(flatten(input([1, 2, 2])), width));\n");
  let err: unknown;
  try { typeCheck(main); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(DiagnosticsError);
  expect((err as Error).message).toMatch(new RegExp(`${path.relative(process.cwd(), dep).replace(/[.]/g, '\\.')}:1:14: error TS2322`));
  fs.writeFileSync(dep, 'export const width: number = 8;\n');
  const before = typeCheckMarker(main);
  typeCheck(main);
  fs.writeFileSync(dep, 'export const width: number = 9;\n');
  expect(typeCheckMarker(main)).not.toBe(before);
  expect(fs.existsSync(dir)).toBe(true);
});

test('imports outside the folder tree, of packages or of missing files are refused with one line at the import', () => {
  write('outside.ts', 'export const w = 3;\n');
  const cases: [string, RegExp][] = [
    ["import { w } from '../outside.js';", /esc1\.ts:2:19: '\.\.\/outside\.js' is outside the model's folder/],
    ["import * as fs from 'fs';", /esc2\.ts:2:21: a model may import only 'lpc\/dsl' and its own files \(\.\/…\), not 'fs'/],
    ["import { w } from './nothere.js';", /esc3\.ts:2:19: cannot find '\.\/nothere\.js'/],
  ];
  cases.forEach(([imp, msg], i) => {
    const f = write(`proj/esc${i + 1}.ts`, `import { model, input, flatten, linear } from 'lpc/dsl';\n${imp}\nexport default model('e', () => linear(flatten(input([1, 2, 2])), 2));\n`);
    const r = spawnSync(process.execPath, ['bin/lpc.js', 'compile', f, '-o', path.join(tmp, `esc${i}.lpc`)], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(msg);
  });
});

test('the zoo shares its blocks: resnet20/38/74 import models/blocks/cifar-resnet.ts', () => {
  for (const n of [20, 38, 74]) expect(gatherProject(`models/resnet${n}.ts`).files.map((f) => f.key)).toEqual([`resnet${n}.ts`, 'blocks/cifar-resnet.ts']);
});
