/**
 * Fuzzing the IR text parser: generated graphs (odd names, values and formats) and LeNet-5 after the pass pipeline
 * round-trip (print ∘ parse is the identity on printed text); random and mutated texts either parse (and then print
 * to a text that parses to the same print) or throw IrParseError whose lines all read `file:line:col: …`, and
 * parseModuleDiagnostics never throws.
 */
import fc from 'fast-check';
import { Builder, emptyGraph, Module } from '../../ir/graph.js';
import { Format } from '../../ir/format.js';
import { printModule } from '../../ir/print.js';
import { IrParseError, parseModule, parseModuleDiagnostics } from '../../ir/parse.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { mutated, params, randomText, returnsOrOwnError } from './fuzz-runs.js';

const FILE = 'fz.lpc/graph.lpir';
const fmt: fc.Arbitrary<Format> = fc.oneof(
  fc.constant({ kind: 'f32' } as Format),
  fc.record({ kind: fc.constant('fixed' as const), wl: fc.integer({ min: 1, max: 24 }), fl: fc.integer({ min: 1, max: 126 }) }),
  fc.record({ kind: fc.constant('bfp' as const), wl: fc.integer({ min: 1, max: 23 }), axis: fc.oneof(fc.constant('tensor' as const), fc.constantFrom(0, 1)) }),
  fc.record({ kind: fc.constant('float' as const), exp: fc.integer({ min: 1, max: 8 }), man: fc.integer({ min: 1, max: 23 }) }),
  fc.record({ kind: fc.constant('mx' as const), elem: fc.constantFrom('e4m3', 'e2m1', 'int8' as const), block: fc.constantFrom(2, 32), axis: fc.constantFrom(0, 1) }),
);

/** A small graph: an input, fills with any double, quantizes, elementwise ops, odd names and locations. */
const graphModule: fc.Arbitrary<Module> = fc.record({
  name: fc.string({ maxLength: 8 }), gname: fc.string({ maxLength: 8 }), input: fc.fullUnicodeString({ maxLength: 8 }),
  file: fc.string({ maxLength: 8 }), dims: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 3 }),
  values: fc.array(fc.double(), { maxLength: 3 }), fmts: fc.array(fc.tuple(fmt, fc.constantFrom('nearest', 'stochastic')), { maxLength: 3 }),
  loc: fc.tuple(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 1, max: 1e6 })),
}).map((r) => {
  const g = emptyGraph(r.gname);
  const b = new Builder(g);
  let x = b.add('input', [], { name: r.input, kind: 'data', shape: r.dims, dtype: 'f32' }, { file: r.file, line: r.loc[0], col: r.loc[1] });
  for (const v of r.values) x = b.add('add', [x, b.add('fill', [], { shape: r.dims, value: v })], {});
  for (const [f, rounding] of r.fmts)
    if ((f.kind !== 'bfp' && f.kind !== 'mx') || f.axis === 'tensor' || (f.axis ?? 0) < r.dims.length) x = b.add('quantize', [b.add('relu', [x], {})], { fmt: f, rounding, role: 'A' });
  g.outputs.push({ name: 'y', node: x });
  return { version: 1, name: r.name, graphs: [g] };
});

let lenet = '';
const SEEDS: string[] = [];
beforeAll(() => {
  const optimizer = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
  lenet = printModule(runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer, verifyEach: false, log: () => {} }));
  // Near-valid seeds: a few graphs and LeNet's first lines (a whole graph header and its first nodes).
  SEEDS.push(...fc.sample(graphModule, { numRuns: 6, seed: 1 }).map(printModule), lenet.split('\n').slice(0, 30).join('\n') + '\n}\n');
});

const LINE = (l: string) => l.startsWith(`${FILE}:`) ? /^fz\.lpc\/graph\.lpir:\d+:\d+: \S/.test(l) : /^… and \d+ more errors$/.test(l);
function check(text: string): void {
  expect(() => parseModuleDiagnostics(text)).not.toThrow();
  returnsOrOwnError(() => {
    const once = printModule(parseModule(text, FILE));
    expect(printModule(parseModule(once, FILE))).toBe(once);
  }, [IrParseError], (l) => /^fz\.lpc\/graph\.lpir:\d+:\d+: \S/.test(l), LINE);
}

describe('fuzz: IR text', () => {
  test('LeNet-5 after the passes: print ∘ parse is the identity', () => {
    expect(printModule(parseModule(lenet, FILE))).toBe(lenet);
  });
  test('regressions', () => {
    // a raw tab in a string lexed as a string, then JSON.parse threw a SyntaxError
    check('lpc.ir 1\nmodule "m"\ngraph @g {\n  %0 = input {dtype="f32", kind="data", name="x", shape=[2]} : tensor<[2], f32> loc("a\tb.ts":1:1)\n}\n');
    check('lpc.ir 1\nmodule "m\u0000"\n');
  });
  test('generated graphs: print ∘ parse is the identity', () => {
    fc.assert(fc.property(graphModule, (m) => {
      const text = printModule(m);
      expect(printModule(parseModule(text, FILE))).toBe(text);
    }), params());
  });
  test('random text: a module or IrParseError with file:line:col lines', () => {
    fc.assert(fc.property(fc.oneof(randomText, randomText.map((t) => `lpc.ir 1\nmodule "m"\ngraph @g {\n${t}\n}\n`)), check), params());
  });
  test('mutated valid texts: a module or IrParseError with file:line:col lines', () => {
    fc.assert(fc.property(mutated(SEEDS), check), params(2));
  });
});
