/**
 * Fuzzing the IR text parser: generated graphs (odd names, values and formats, epilogues of every kind) and LeNet-5 after the pass pipeline
 * round-trip (print ∘ parse is the identity on printed text); random and mutated texts either parse (and then print
 * to a text that parses to the same print) or throw IrParseError whose lines all read `file:line:col: …`, and
 * parseModuleDiagnostics never throws.
 */
import fc from 'fast-check';
import { Builder, emptyGraph, Module } from '../../ir/graph.js';
import type { Epilogue } from '../../ir/epilogue.js';
import type { PostExpr } from '../../ir/post.js';
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
) as fc.Arbitrary<Format>;

/** Post expressions over x and $0: elementwise ops, a constant of any double. */
const postExpr: fc.Arbitrary<PostExpr> = fc.letrec<{ e: PostExpr }>((tie) => ({
  e: fc.oneof({ maxDepth: 3, depthIdentifier: 'post' },
    fc.constant<PostExpr>({ kind: 'x' }), fc.constant<PostExpr>({ kind: 'arg', index: 0 }),
    tie('e').map((a): PostExpr => ({ kind: 'op', op: 'relu', attrs: {}, args: [a] })),
    fc.tuple(fc.constantFrom('add', 'sub', 'mul', 'relu_bwd'), tie('e'), tie('e')).map(([op, a, b]): PostExpr => ({ kind: 'op', op, attrs: {}, args: [a, b] })),
    fc.tuple(fc.double(), tie('e')).map(([c, a]): PostExpr => ({ kind: 'op', op: 'scale', attrs: { c }, args: [a] }))),
})).e;

/** An epilogue of any kind: post-ops reading one extra operand, a quantizer (rounding, role), a qpost after it. */
const epilogue: fc.Arbitrary<Epilogue> = fc.record({
  post: fc.option(postExpr, { nil: undefined }),
  q: fc.option(fc.record({ fmt, rounding: fc.constantFrom('nearest' as const, 'stochastic' as const), role: fc.option(fc.fullUnicodeString({ maxLength: 6 }), { nil: undefined }) }), { nil: undefined }),
  qpost: fc.constantFrom(undefined, 'relu(x)', 'relu_bwd(x,$0)'),
}).map((r): Epilogue => ({
  args: 1,
  ...(r.post ? { post: r.post } : {}),
  ...(r.q ? { q: { fmt: r.q.fmt, rounding: r.q.rounding, ...(r.q.role !== undefined ? { role: r.q.role } : {}) } } : {}),
  ...(r.q && r.q.fmt.kind !== 'f32' && r.qpost ? { qpost: r.qpost === 'relu(x)' ? { kind: 'op', op: 'relu', attrs: {}, args: [{ kind: 'x' }] } as PostExpr
    : { kind: 'op', op: 'relu_bwd', attrs: {}, args: [{ kind: 'x' }, { kind: 'arg', index: 0 }] } as PostExpr } : {}),
}));

/** A small graph: an input, fills with any double, quantizes, elementwise ops with epilogues, odd names and locations. */
const graphModule: fc.Arbitrary<Module> = fc.record({
  name: fc.string({ maxLength: 8 }), gname: fc.string({ maxLength: 8 }), input: fc.fullUnicodeString({ maxLength: 8 }),
  file: fc.string({ maxLength: 8 }), dims: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 3 }),
  values: fc.array(fc.double(), { maxLength: 3 }), fmts: fc.array(fc.tuple(fmt, fc.constantFrom('nearest', 'stochastic')), { maxLength: 3 }),
  loc: fc.tuple(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 1, max: 1e6 })),
  epis: fc.array(epilogue, { maxLength: 3 }),
}).map((r) => {
  const g = emptyGraph(r.gname);
  const b = new Builder(g);
  let x = b.add('input', [], { name: r.input, kind: 'data', shape: r.dims, dtype: 'f32' }, { file: r.file, line: r.loc[0], col: r.loc[1] });
  for (const v of r.values) x = b.add('add', [x, b.add('fill', [], { shape: r.dims, value: v })], {});
  for (const [f, rounding] of r.fmts)
    if ((f.kind !== 'bfp' && f.kind !== 'mx') || f.axis === 'tensor' || (f.axis ?? 0) < r.dims.length) x = b.add('quantize', [b.add('relu', [x], {})], { fmt: f, rounding, role: 'A' });
  for (const e of r.epis)
    if (!e.q || (e.q.fmt.kind !== 'bfp' && e.q.fmt.kind !== 'mx') || e.q.fmt.axis === 'tensor' || (e.q.fmt.axis ?? 0) < r.dims.length) x = b.add('mul', [x, x, x], {}, undefined, e);
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
  test('generated graphs hold every epilogue kind', () => {
    const texts = fc.sample(graphModule, { numRuns: 100, seed: 3 }).map(printModule).join('\n');
    for (const field of ['epilogue{post=', ', args=1', 'rounding=stochastic', 'role="', 'qpost=relu(x)', 'qpost=relu_bwd(x,$0)', 'scale{c='])
      expect([field, texts.includes(field)]).toEqual([field, true]);
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
