/**
 * The IR text form and the verifier: print ∘ parse is the identity on graphs that use every op in the table, and
 * parse and verify errors are exact, located and (for parse) several per run.
 */
import { Builder, emptyGraph, Graph, Module } from '../../ir/graph.js';
import { allOps } from '../../ir/ops/index.js';
import { Format } from '../../ir/format.js';
import { tensorType } from '../../ir/types.js';
import { printModule } from '../../ir/print.js';
import { IrParseError, parseModule, parseModuleDiagnostics, parsePost } from '../../ir/parse.js';
import { postToString } from '../../ir/post.js';
import { VerifyError, verifyGraph, verifyModule } from '../../ir/verify.js';
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';

const at = (line: number, col = 3) => ({ file: 'models/x.ts', line, col });
const bfp = (wl: number, axis: number | 'tensor'): Format => ({ kind: 'bfp', wl, axis });

/** A small CNN's forward, backward and update, with every op of the table. */
function trainGraph(): Graph {
  const g = emptyGraph('train');
  const b = new Builder(g);
  const x = b.add('input', [], { name: 'x', kind: 'data', shape: [2, 1, 8, 8], dtype: 'f32' });
  const w = b.add('state', [], { name: 'conv0.weight', kind: 'param', shape: [3, 1, 3, 3], init: 'uniform', bound: 1 / 3 }, at(4));
  const cb = b.add('state', [], { name: 'conv0.bias', kind: 'param', shape: [3], init: 'uniform', bound: 1 / 3 }, at(4));
  const conv = b.add('conv2d', [x, w, cb], { stride: 1, pad: 1 }, at(4));
  const r = b.add('relu', [conv], {}, at(5));
  const q = b.add('quantize', [r], { fmt: bfp(8, 0), rounding: 'stochastic', role: 'A' }, at(5));
  const gamma = b.add('state', [], { name: 'bn0.weight', kind: 'param', shape: [3], init: 'ones' }, at(6));
  const beta = b.add('state', [], { name: 'bn0.bias', kind: 'param', shape: [3], init: 'zeros' }, at(6));
  const run = b.add('state', [], { name: 'bn0.running', kind: 'buffer', shape: [2, 3], init: 'bn_running' }, at(6));
  const st = b.add('bn_stats', [q], {}, at(6));
  const upd = b.add('bn_running_update', [run, st], { momentum: 0.1, count: 128 }, at(6));
  const bn = b.add('bn_apply', [q, st, gamma, beta], { eps: 1e-5, training: true }, at(6));
  const mp = b.add('maxpool', [bn], { k: 2, stride: 2 }, at(7));
  const ap = b.add('avgpool', [mp], { k: 2, stride: 2 }, at(8));
  const flat = b.add('reshape', [ap], { shape: [2, 12] }, at(9));
  const lw = b.add('state', [], { name: 'linear0.weight', kind: 'param', shape: [4, 12], init: 'uniform', bound: 0.2886751345948129 }, at(10));
  const lb = b.add('state', [], { name: 'linear0.bias', kind: 'param', shape: [4], init: 'uniform', bound: 0.2886751345948129 }, at(10));
  const logits = b.add('linear', [flat, lw, lb], {}, at(10));
  const y = b.add('input', [], { name: 'y', kind: 'label', shape: [2], dtype: 'i32' });
  const loss = b.add('softmax_xent', [logits, y], {}, at(10));
  const correct = b.add('correct_count', [logits, y], {}, at(10));
  // Backward, by hand.
  const one = b.add('fill', [], { shape: [1], value: 1 });
  const dz = b.add('softmax_xent_bwd', [logits, y, one], {}, at(10));
  const dflat = b.add('matmul', [dz, lw], { ta: false, tb: false }, at(10));
  const dlw = b.add('matmul', [dz, flat], { ta: true, tb: false }, at(10));
  b.add('sum_channel', [dz], {}, at(10));
  const dap = b.add('reshape', [dflat], { shape: [2, 3, 2, 2] }, at(9));
  const dmp = b.add('avgpool_bwd', [dap], { k: 2, stride: 2, in_hw: [4, 4] }, at(8));
  const dbn = b.add('maxpool_bwd', [dmp, bn], { k: 2, stride: 2 }, at(7));
  const sums = b.add('bn_bwd_sums', [dbn, q, st], { eps: 1e-5 }, at(6));
  const dq = b.add('bn_bwd_x', [dbn, q, st, gamma, sums], { eps: 1e-5 }, at(6));
  b.add('bn_bwd_x_eval', [dbn, run, gamma], { eps: 1e-5 }, at(6));
  b.add('row', [sums], { index: 1 }, at(6));
  const dconv = b.add('relu_bwd', [dq, conv], {}, at(5));
  b.add('conv2d_bwd_data', [dconv, w], { stride: 1, pad: 1, in_hw: [8, 8] }, at(4));
  const dw = b.add('conv2d_bwd_weight', [dconv, x], { stride: 1, pad: 1, k_hw: [3, 3] }, at(4));
  // SGD with momentum and weight decay, as passes/optimizer.ts writes it.
  const lr = b.add('input', [], { name: 'lr', kind: 'scalar', shape: [1], dtype: 'f32' });
  const mom = b.add('state', [], { name: 'conv0.weight.momentum', kind: 'optim', shape: [3, 1, 3, 3], init: 'zeros' }, at(4));
  const d = b.add('add', [b.add('scale', [mom], { c: 0.9 }, at(4)), b.add('add', [dw, b.add('scale', [w], { c: 5e-4 }, at(4))], {}, at(4))], {}, at(4));
  const neww = b.add('sub', [w, b.add('mul_scalar', [d, lr], {}, at(4))], {}, at(4));
  const gq = b.add('quantize', [dlw], { fmt: { kind: 'fixed', wl: 8, fl: 6, sym: true, noclamp: true }, rounding: 'nearest', role: 'G' }, at(10));
  const newlw = b.add('sub', [lw, b.add('mul', [gq, b.add('fill', [], { shape: [4, 12], value: -0.05 })])], {}, at(10));
  g.outputs.push({ name: 'loss', node: loss }, { name: 'correct', node: correct });
  g.updates.push({ name: 'bn0.running', node: upd }, { name: 'conv0.weight', node: neww },
    { name: 'conv0.weight.momentum', node: d }, { name: 'linear0.weight', node: newlw });
  return g;
}

/** Odd but legal values: every float spelling String(n) has, escapes, unicode, formats, an unquoted-unsafe name. */
function oddGraph(): Graph {
  const g = emptyGraph('odd graph "2"');
  const b = new Builder(g);
  const x = b.add('input', [], { name: 'tab\there "q" \\ \n 名 \u2028', kind: 'data', shape: [3, 4], dtype: 'f32' },
    { file: 'dir with space/"q".ts', line: 1, col: 1 });
  for (const v of [-0, 0.1, 1e-7, -1.5e300, 123456789012, Math.PI, Number.MIN_VALUE, Infinity, -Infinity, NaN])
    b.add('fill', [], { shape: [3, 4], value: v });
  for (const fmt of [{ kind: 'f32' }, bfp(4, 'tensor'), { kind: 'float', exp: 5, man: 2 }, { kind: 'fixed', wl: 24, fl: 126, noclamp: true }] as Format[])
    b.add('quantize', [x], { fmt, rounding: 'nearest', role: '' });
  b.add('scale', [x], { c: -1 / 3 });
  b.add('fill', [], { shape: [], value: 2 });
  // saved-activation compression (passes/compress.ts): packed u32 words
  const x4 = b.add('input', [], { name: 'x4', kind: 'data', shape: [2, 3, 4, 4], dtype: 'f32' });
  b.add('division_decompress', [b.add('division_compress', [x4], { block: 8, bits: 2 })], { block: 8, bits: 2, shape: [2, 3, 4, 4] });
  b.add('mask_decompress', [b.add('mask_compress', [x4], {})], { shape: [2, 3, 4, 4] });
  b.add('mask_decompress', [b.add('mask_compress', [x4], { upper: 6 })], { shape: [2, 3, 4, 4] }); // ReLU6's mask
  b.add('maxpool_bwd_argmax', [b.add('fill', [], { shape: [2, 3, 2, 2], value: 1 }), b.add('argmax_compress', [x4], { k: 2, stride: 2 })],
    { k: 2, stride: 2, in_shape: [2, 3, 4, 4] });
  b.add('maxpool_bwd_argmax', [b.add('fill', [], { shape: [2, 3, 2, 2], value: 1 }), b.add('argmax_compress', [x4], { k: 3, stride: 2, pad: 1 })],
    { k: 3, stride: 2, in_shape: [2, 3, 4, 4], pad: 1 }); // padded max pooling
  for (const fmt of [{ kind: 'float', exp: 8, man: 7 }, { kind: 'fixed', wl: 8, fl: 4, sym: true }] as Format[])
    b.add('format_decompress', [b.add('format_compress', [x4], { fmt })], { fmt, shape: [2, 3, 4, 4] });
  // CPT's running activation range (passes/quantize.ts cptGraph)
  const ar = b.add('state', [], { name: 'conv0.act_range', kind: 'buffer', shape: [2], init: 'zeros' });
  const mmf: Format = { kind: 'minmax', bits: 8, per: 'tensor', sched: 'fwd' };
  b.add('minmax_running_update', [ar, b.add('minmax_qparams', [x4], {})], { momentum: 0.1, fmt: mmf });
  b.add('minmax_quantize', [x4, ar], { fmt: mmf, rounding: 'stochastic' });
  b.add('dropout', [x4], { p: 0.5, key: 1 });
  // the model zoo's ops (issue 28): grouped conv and its gradients, padded max pooling, relu6, adaptive pooling, concat
  const wg = b.add('state', [], { name: 'dw.weight', kind: 'param', shape: [3, 1, 3, 3], init: 'uniform', bound: 0.5 });
  const dwy = b.add('conv2d', [x4, wg], { stride: 1, pad: 1, groups: 3 });
  b.add('conv2d_bwd_data', [dwy, wg], { stride: 1, pad: 1, in_hw: [4, 4], groups: 3 });
  b.add('conv2d_bwd_weight', [dwy, x4], { stride: 1, pad: 1, k_hw: [3, 3], groups: 3 });
  b.add('maxpool_bwd', [b.add('maxpool', [x4], { k: 3, stride: 2, pad: 1 }), x4], { k: 3, stride: 2, pad: 1 });
  b.add('relu6_bwd', [x4, b.add('relu6', [x4], {})], {});
  b.add('adaptive_avgpool_bwd', [b.add('adaptive_avgpool', [x4], { out_hw: [3, 2] })], { in_hw: [4, 4] });
  b.add('slice', [b.add('concat', [x4, dwy], { axis: 1 })], { axis: 1, start: 2, len: 3 });
  // explicit quantizer sites (DSL quantize()), both classes or one; a state with a normal init
  b.add('quantize_site', [b.add('quantize_site', [x4], { fwd: 'high', bwd: 'low' })], { bwd: 'low' });
  b.add('state', [], { name: 'conv9.weight', kind: 'param', shape: [2, 2], init: 'normal', std: 0.125 });
  // Adam's arithmetic and a step input (a bias correction computed from the step)
  const bc = b.add('input', [], { name: 'adam.bias_correction2_sqrt', kind: 'bias_correction_sqrt', shape: [1], dtype: 'f32', beta: 0.999 });
  b.add('add_const', [b.add('div', [b.add('div_scalar', [b.add('sqrt', [x], {}), bc], {}), x], {})], { c: 1e-8 });
  // sequence models (ir/ops/sequence.ts, activation.ts)
  const ids = b.add('input', [], { name: 'ids', kind: 'data', shape: [2, 3], dtype: 'i32' });
  const emb = b.add('embedding', [ids, b.add('state', [], { name: 'tok.weight', kind: 'param', shape: [5, 4], init: 'normal', std: 1 })], {});
  b.add('embedding_bwd', [emb, b.add('positions', [], { shape: [2, 3] })], { vocab: 3 });
  const ln = b.add('layernorm', [emb, b.add('fill', [], { shape: [4], value: 1 }), b.add('fill', [], { shape: [4], value: 0 })], { eps: 1e-5 });
  const st = b.add('layernorm_stats', [ln], { eps: 1e-5 });
  b.add('layernorm_bwd_x', [emb, ln, st, b.add('fill', [], { shape: [4], value: 1 })], {});
  b.add('layernorm_bwd_params', [emb, ln, st], {});
  const sc = b.add('batch_matmul', [emb, emb], { ta: false, tb: true });
  const sm = b.add('softmax', [sc], { causal: true });
  b.add('softmax_bwd', [sm, sm], {});
  b.add('permute', [b.add('gelu_bwd', [emb, b.add('gelu', [emb], {})], {})], { perm: [1, 0, 2] });
  b.add('tanh_bwd', [emb, b.add('tanh', [emb], {})], {});
  b.add('sigmoid_bwd', [emb, b.add('sigmoid', [emb], {})], {});
  b.add('slice_bwd', [b.add('slice', [b.add('stack', [emb, emb], { axis: 1 })], { axis: 1, start: 1, len: 1 })], { axis: 1, start: 0, shape: [2, 2, 3, 4] });
  return g;
}

function module(...graphs: Graph[]): Module {
  return { version: 1, name: 'test "net"', graphs };
}

const roundTrip = (m: Module) => printModule(parseModule(printModule(m), 'rt.lpir'));

describe('print ∘ parse', () => {
  test('every op of the table appears in a test graph', () => {
    const used = new Set([trainGraph(), oddGraph()].flatMap((g) => g.nodes.map((n) => n.op)));
    expect(allOps().map((d) => d.name).filter((n) => !used.has(n))).toEqual([]);
  });

  test('the text form, line by line', () => {
    const text = printModule(module(trainGraph()));
    const lines = text.split('\n');
    expect(lines.slice(0, 5)).toEqual(['lpc.ir 1', 'module "test \\"net\\""', '', 'graph @train {',
      '  %0 = input {dtype="f32", kind="data", name="x", shape=[2,1,8,8]} : tensor<[2,1,8,8], f32>']);
    expect(lines).toContain('  %3 = conv2d(%0, %1, %2) {pad=1, stride=1} : tensor<[2,3,8,8], f32> loc("models/x.ts":4:3)');
    expect(lines).toContain('  %5 = quantize(%4) {fmt=bfp<8,axis=0>, role="A", rounding="stochastic"} : tensor<[2,3,8,8], f32, bfp<8,axis=0>> loc("models/x.ts":5:3)');
    expect(lines).toContain('  %11 = bn_apply(%5, %9, %6, %7) {eps=0.00001, training=true} : tensor<[2,3,8,8], f32> loc("models/x.ts":6:3)');
    expect(lines).toContain('  %24 = matmul(%22, %14) {ta=true, tb=false} : tensor<[4,12], f32> loc("models/x.ts":10:3)');
    expect(lines.slice(-8)).toEqual(['  output "loss" = %19', '  output "correct" = %20', '  update "bn0.running" = %10',
      '  update "conv0.weight" = %43', '  update "conv0.weight.momentum" = %41', '  update "linear0.weight" = %47', '}', '']);
  });

  test.each([
    ['a training graph with every op', () => module(trainGraph())],
    ['odd numbers, strings and formats', () => module(oddGraph())],
    ['several graphs, an empty one', () => module(trainGraph(), oddGraph(), emptyGraph('eval'))],
    ['no graphs', () => module()],
  ])('identity: %s', (_, make) => {
    const m = make();
    expect(roundTrip(m)).toBe(printModule(m));
  });

  test('parse gives back the same structure', () => {
    const m = module(trainGraph());
    const p = parseModule(printModule(m), 'rt.lpir');
    expect(p.graphs[0].nodes.map((n) => [n.op, n.inputs, n.loc])).toEqual(m.graphs[0].nodes.map((n) => [n.op, n.inputs, n.loc]));
    expect(p.graphs[0].nodes[5].attrs).toEqual({ fmt: bfp(8, 0), rounding: 'stochastic', role: 'A' });
    expect(p.graphs[0].nodes[5].type).toEqual(tensorType([2, 3, 8, 8], 'f32', bfp(8, 0)));
    const odd = parseModule(printModule(module(oddGraph())), 'rt.lpir').graphs[0];
    expect(odd.name).toBe('odd graph "2"');
    expect(odd.nodes[0].attrs.name).toBe('tab\there "q" \\ \n 名 \u2028');
    expect(Object.is(odd.nodes[1].attrs.value, -0)).toBe(true);
    expect(odd.nodes.slice(1, 11).map((n) => n.attrs.value)).toEqual([-0, 0.1, 1e-7, -1.5e300, 123456789012, Math.PI, Number.MIN_VALUE, Infinity, -Infinity, NaN]);
  });

  test('comments and blank lines are ignored; aliases read as their canonical format', () => {
    const text = '// IR after frontend\nlpc.ir 1\n\nmodule "m"  // the name\ngraph @g {\n' +
      '  %0 = input {dtype="f32", kind="data", name="x", shape=[4]} : tensor<[4], f32>\n\n' +
      '  %1 = quantize(%0) {fmt=e4m3, role="A", rounding="nearest"} : tensor<[4], f32, float<4,3>>\n}\n';
    expect(printModule(parseModule(text.replace(/\n/g, '\r\n'), 'c.lpir'))).toBe(printModule(parseModule(text, 'c.lpir')));
    expect(printModule(parseModule(text, 'c.lpir'))).toContain('%1 = quantize(%0) {fmt=float<4,3>, role="A", rounding="nearest"} : tensor<[4], f32, float<4,3>>');
  });

  test('LeNet-5 through the pass pipeline round-trips and verifies', () => {
    const optimizer = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
    const m = runPasses(frontEnd('models/lenet5.ts', 4), { batch: 4, optimizer, verifyEach: true, log: () => {} });
    const text = printModule(m);
    const p = parseModule(text, 'lenet5.lpc/graph.lpir');
    expect(printModule(p)).toBe(text);
    expect(() => verifyModule(p)).not.toThrow();
    expect(text).toMatch(/conv2d\(%\d+, %\d+, %\d+\) \{pad=2, stride=1\} epilogue\{post=relu\(x\)\} : tensor<\[4,6,28,28\], f32> loc\("models\/lenet5\.ts":\d+:\d+\)/);
  });
});

/** A small valid text to break: each test edits one or two lines. */
const BASE = [
  'lpc.ir 1',
  'module "m"',
  'graph @train {',
  '  %0 = input {dtype="f32", kind="data", name="x", shape=[2,1,8,8]} : tensor<[2,1,8,8], f32>',
  '  %1 = state {bound=0.5, init="uniform", kind="param", name="w", shape=[3,1,3,3]} : tensor<[3,1,3,3], f32> loc("models/x.ts":4:9)',
  '  %2 = conv2d(%0, %1) {pad=1, stride=1} : tensor<[2,3,8,8], f32> loc("models/x.ts":5:9)',
  '  %3 = relu(%2) : tensor<[2,3,8,8], f32> loc("models/x.ts":6:9)',
  '  %4 = quantize(%3) {fmt=bfp<8,axis=0>, role="A", rounding="nearest"} : tensor<[2,3,8,8], f32, bfp<8,axis=0>>',
  '  output "y" = %4',
  '  update "w" = %1',
  '}',
];
const edit = (edits: Record<number, string>) => BASE.map((l, i) => edits[i + 1] ?? l).join('\n') + '\n';
const errs = (text: string) => parseModuleDiagnostics(text).errors.map((e) => `${e.line}:${e.col}: ${e.message}`);

describe('parse errors', () => {
  test('the base text is valid', () => {
    expect(errs(edit({}))).toEqual([]);
  });

  test('epilogues: a clean one reads; each broken field is named at its column', () => {
    const relu = (epi: string, type = 'tensor<[2,3,8,8], f32>') => edit({ 7: `  %3 = relu(%2, %2) ${epi} : ${type}` });
    const ok = 'epilogue{post=relu(add(x,scale{c=0.5}($0))), args=1}';
    const cases: [string, string, string[]][] = [
      ['valid', ok, []],
      ['a missing parenthesis', 'epilogue{post=relu(add(x,$0), args=1}', ["7:55: expected ')' but found '='"]],
      ['an unknown op', ok.replace('relu(', 'relux('), ["7:35: unknown op 'relux'; did you mean 'relu'?"]],
      ['not elementwise', ok.replace('relu(', 'conv2d('), ["7:35: 'conv2d' is not an elementwise op"]],
      ['an operand too few', ok.replace('add(x,', 'add('), ['7:40: add takes 2 operands, got 1']],
      ['a post-op attribute', ok.replace('c=0.5', 'k=0.5'), ["7:46: scale is missing attribute 'c' (a number)", "7:52: scale has no attribute 'k'; its attributes are c"]],
      ['an unknown field', ok.replace('post=', 'pots='), ["7:30: unknown epilogue field 'pots'; the fields are post, args, q, rounding, role, qpost"]],
      ['a negative args', ok.replace('args=1', 'args=-1'), ['7:8: relu expects 1 inputs, got 2', "7:71: epilogue field 'args' must be a non-negative integer, got -1"]],
      ['a duplicate field', ok.replace('args=1', 'args=1, args=1'), ["7:74: duplicate epilogue field 'args'"]],
      ['rounding without q', ok.replace('args=1', 'args=1, rounding=stochastic'), ["7:74: epilogue field 'rounding' needs a quantizer (q=…)"]],
      ['an unknown rounding', ok.replace('args=1', 'args=1, q=fixed<8,4>, rounding=up'), ["7:97: epilogue field 'rounding' must be nearest or stochastic, got up"]],
      ['q not a format', ok.replace('args=1', 'args=1, q=relu(x)'), ["7:76: epilogue field 'q' must be a format, got relu(x)"]],
      ['a name that is not x', ok.replace('x,', 'y,'), ["7:44: expected x, '$k' or an elementwise op applied to operands but found 'y'"]],
      ['qpost without q', ok.replace('args=1', 'args=1, qpost=relu(x)'), ["7:21: qpost 'relu(x)' needs a quantizer (q) to follow"]],
      ['qpost not grid-keeping', ok.replace('args=1', 'args=1, q=fixed<8,4>, qpost=add(x,$0)'), ["7:21: qpost 'add(x,$0)' may only apply relu, relu_bwd, relu6, relu6_bwd to x (other operands: $k)"]],
      ['an operand beyond args', ok.replace('$0', '$1'), ['7:21: post reads $1 but the node has 1 extra operand(s)']],
    ];
    for (const [what, epi, want] of cases)
      expect([what, errs(relu(epi, epi.includes('q=fixed') ? 'tensor<[2,3,8,8], f32, fixed<8,4>>' : undefined))]).toEqual([what, want]);
    expect(errs(edit({ 4: '  %0 = input {dtype="f32", kind="data", name="x", shape=[2,1,8,8]} epilogue{post=relu(x)} : tensor<[2,1,8,8], f32>' })))
      .toEqual(['4:68: input takes no epilogue']);
    // the thrown error names the file, line and column
    expect(() => parseModule(relu(ok.replace('relu(', 'relux(')), 'm.lpir')).toThrow("m.lpir:7:35: unknown op 'relux'; did you mean 'relu'?");
  });

  test('parsePost: the post-expression grammar alone, errors at a column', () => {
    expect(postToString(parsePost('mul_scalar(relu(sub($0,scale{c=-0}(x))),$1)'))).toBe('mul_scalar(relu(sub($0,scale{c=-0}(x))),$1)');
    expect(() => parsePost('relu(x')).toThrow("post expression 'relu(x', column 7: expected ')' but found end of line");
    expect(() => parsePost('relu(x,$0)')).toThrow("post expression 'relu(x,$0)', column 1: relu takes 1 operands, got 2");
    expect(() => parsePost('add(x, #)')).toThrow("post expression 'add(x, #)', column 8: unexpected character '#'");
  });

  test('unknown op', () => {
    expect(errs(edit({ 7: '  %3 = relux(%2) : tensor<[2,3,8,8], f32>' }))).toEqual(["7:8: unknown op 'relux'; did you mean 'relu'?"]);
    expect(errs(edit({ 7: '  %3 = frobnicate(%2) : tensor<[2,3,8,8], f32>' }))).toEqual(["7:8: unknown op 'frobnicate'"]);
  });

  test('bad attributes: unknown, wrong kind, missing, duplicate, bad format', () => {
    expect(errs(edit({ 6: '  %2 = conv2d(%0, %1) {padding=1, stride=1} : tensor<[2,3,8,8], f32>' }))).toEqual([
      "6:8: conv2d is missing attribute 'pad' (an int)",
      "6:24: conv2d has no attribute 'padding'; its attributes are groups, pad, stride",
    ]);
    expect(errs(edit({ 6: '  %2 = conv2d(%0, %1) {pad=1.5, stride="1"} : tensor<[2,3,8,8], f32>' }))).toEqual([
      "6:28: attribute 'pad' of conv2d must be an int, got 1.5",
      "6:40: attribute 'stride' of conv2d must be an int, got \"1\"",
    ]);
    expect(errs(edit({ 8: '  %4 = quantize(%3) {fmt=bfp<8,axis=0>, role=A, rounding="nearest", role="A"} : tensor<[2,3,8,8], f32, bfp<8,axis=0>>' }))).toEqual([
      "8:46: attribute 'role' of quantize must be a string, got A",
      "8:69: duplicate attribute 'role'",
    ]);
    expect(errs(edit({ 8: '  %4 = quantize(%3) {fmt=bfp<25,axis=0>, role="A", rounding="nearest"} : tensor<[2,3,8,8], f32, bfp<8,axis=0>>' }))).toEqual([
      '8:30: bfp: wl must satisfy 1 <= wl <= 23 (got 25)',
    ]);
    expect(errs(edit({ 8: '  %4 = quantize(%3) {fmt="bfp<8>", role="A", rounding="nearest"} : tensor<[2,3,8,8], f32, bfp<8,axis=0>>' }))).toEqual([
      "8:26: attribute 'fmt' of quantize must be a format, got \"bfp<8>\"",
    ]);
  });

  test('type mismatch against the op table', () => {
    expect(errs(edit({ 6: '  %2 = conv2d(%0, %1) {pad=0, stride=1} : tensor<[2,3,8,8], f32> loc("models/x.ts":5:9)' }))).toEqual([
      '6:43: type mismatch: declared tensor<[2,3,8,8], f32> but conv2d gives tensor<[2,3,6,6], f32>',
    ]);
    expect(errs(edit({ 8: '  %4 = quantize(%3) {fmt=bfp<8,axis=0>, role="A", rounding="nearest"} : tensor<[2,3,8,8], f32, bfp<8,tensor>>' }))).toEqual([
      '8:73: type mismatch: declared tensor<[2,3,8,8], f32, bfp<8,tensor>> but quantize gives tensor<[2,3,8,8], f32, bfp<8,axis=0>>',
    ]);
    // The op table's own complaint, at the op.
    expect(errs(edit({ 6: '  %2 = conv2d(%1, %0) {pad=1, stride=1} : tensor<[2,3,8,8], f32>' }))).toEqual([
      '6:8: conv2d: kernel 8×8 is larger than the padded input 3×3',
    ]);
    expect(errs(edit({ 7: '  %3 = relu(%2, %1) : tensor<[2,3,8,8], f32>' }))).toEqual(['7:8: relu expects 1 inputs, got 2']);
    expect(errs(edit({ 4: '  %0 = input {dtype="f32", kind="data", name="x", shape=[2,1,8,8]} : tensor<[2,1,8.5,8], f16>' }))).toEqual([
      '4:82: a dimension must be a non-negative integer, got 8.5',
      "4:90: unknown dtype 'f16'; expected f32, i32 or u32",
    ]);
  });

  test('references to undefined values and ids out of order', () => {
    expect(errs(edit({ 7: '  %3 = relu(%7) : tensor<[2,3,8,8], f32>' }))).toEqual(['7:13: use of undefined value %7']);
    expect(errs(edit({ 7: '  %3 = relu(%3) : tensor<[2,3,8,8], f32>' }))).toEqual(['7:13: use of undefined value %3']);
    expect(errs(edit({ 9: '  output "y" = %9' }))).toEqual(['9:16: use of undefined value %9']);
    // A deleted line: one error for the id, one for the use of the value it defined.
    expect(errs(edit({ 7: '' }))).toEqual([
      '8:3: expected %3 but found %4 (node ids count up from %0 in order)',
      '8:17: use of undefined value %3',
    ]);
    expect(errs(edit({ 10: '  output "y" = %1' }))).toEqual(['10:10: duplicate output "y"']);
  });

  test('syntax errors and truncated text', () => {
    expect(errs(edit({ 6: '  %2 = conv2d(%0, %1 {pad=1, stride=1} : tensor<[2,3,8,8], f32>' }))).toEqual(["6:22: expected ')' but found '{'"]);
    expect(errs(edit({ 6: '  %2 = conv2d(%0, %1) {pad=1 stride=1} : tensor<[2,3,8,8], f32>' }))).toEqual(["6:30: expected '}' but found 'stride'"]);
    expect(errs(edit({ 7: '  %3 = relu(%2) : tensor<[2,3,8,8], f32> $' }))).toEqual(["7:42: unexpected character '$'"]);
    expect(errs(edit({ 1: 'lpc.ir 2' }))).toEqual(['1:8: unsupported IR version 2; this lpc reads version 1']);
    const text = edit({});
    expect(errs(text.slice(0, text.indexOf(', f32> loc("models/x.ts":5:9)')))).toEqual([
      "6:59: expected ',' but found end of line",
      "6:59: unexpected end of input; graph @train is not closed (expected '}')",
    ]);
    expect(errs(text.slice(0, text.indexOf('  update')))).toEqual(["9:18: unexpected end of input; graph @train is not closed (expected '}')"]);
    expect(errs('')).toEqual(["1:1: empty input; expected the header 'lpc.ir 1'"]);
    expect(errs('module "m"\n')).toEqual(["1:1: expected the header 'lpc.ir 1' but found 'module'"]);
  });

  test('one parse reports every broken line, and a broken line does not cascade', () => {
    const text = edit({
      5: '  %1 = state {bound=0.5, init="uniform", kind="param", name="w", shape=[3,1,3,3] : tensor<[3,1,3,3], f32>',
      7: '  %3 = relux(%2) : tensor<[2,3,8,8], f32>',
      8: '  %4 = quantize(%3) {fmt=bfp<8,axis=0>, role="A", rounding="nearest"} : tensor<[2,3,8,8], f32, bfp<8,axis=1>>',
    });
    let err: unknown;
    try { parseModule(text, 'lenet5.lpc/graph.lpir'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(IrParseError);
    const e = err as IrParseError;
    expect(e.errors).toEqual([
      { line: 5, col: 82, message: "expected '}' but found ':'" },
      { line: 7, col: 8, message: "unknown op 'relux'; did you mean 'relu'?" },
      // %3's op is unknown but its declared type still serves its users, so this real mistake is found too.
      { line: 8, col: 73, message: 'type mismatch: declared tensor<[2,3,8,8], f32, bfp<8,axis=1>> but quantize gives tensor<[2,3,8,8], f32, bfp<8,axis=0>>' },
    ]);
    expect(e.message).toBe([
      "lenet5.lpc/graph.lpir:5:82: expected '}' but found ':'",
      "lenet5.lpc/graph.lpir:7:8: unknown op 'relux'; did you mean 'relu'?",
      'lenet5.lpc/graph.lpir:8:73: type mismatch: declared tensor<[2,3,8,8], f32, bfp<8,axis=1>> but quantize gives tensor<[2,3,8,8], f32, bfp<8,axis=0>>',
    ].join('\n'));
    expect(e.loc).toEqual({ file: 'lenet5.lpc/graph.lpir', line: 5, col: 82 });
  });

  test('a stray } is reported once, not once per line after it', () => {
    expect(errs(edit({ 6: '}' }))).toEqual(["7:3: expected 'graph @name {' but found '%3'"]);
  });

  test('a graph left open before the next one', () => {
    const text = edit({ 11: '' }) + 'graph @eval {\n}\n';
    expect(errs(text)).toEqual(["12:1: graph @train is not closed; expected '}' before the next graph"]);
  });
});

describe('verifier', () => {
  const verifyErr = (f: () => void): string[] => {
    try { f(); } catch (e) { expect(e).toBeInstanceOf(VerifyError); return (e as VerifyError).errors.map((x) => x.message); }
    return [];
  };
  const base = () => parseModule(edit({}), 'g.lpir');

  test('valid graphs pass', () => {
    expect(() => verifyModule(module(trainGraph(), oddGraph()))).not.toThrow();
    expect(() => verifyGraph(base().graphs[0])).not.toThrow();
  });

  test('a wrong type names the node, op, types and loc', () => {
    const m = base();
    m.graphs[0].nodes[2].attrs.pad = 0;
    expect(verifyErr(() => verifyModule(m))).toEqual([
      'models/x.ts:5:9: graph @train, %2 = conv2d(%0: tensor<[2,1,8,8], f32>, %1: tensor<[3,1,3,3], f32>) -> tensor<[2,3,8,8], f32>: ' +
      'declared type does not match the inferred tensor<[2,3,6,6], f32>',
    ]);
  });

  test('ids, inputs, arity, attributes, unknown ops', () => {
    const m = base();
    const n = m.graphs[0].nodes;
    n[3] = { ...n[3], inputs: [5] };
    n[4] = { ...n[4], id: 7, attrs: { ...n[4].attrs, rounding: 1, extra: true } };
    n[1] = { ...n[1], op: 'stat' };
    expect(verifyErr(() => verifyGraph(m.graphs[0]))).toEqual([
      "models/x.ts:4:9: graph @train, %1 = stat() -> tensor<[3,1,3,3], f32>: unknown op 'stat'; did you mean 'state'?",
      'models/x.ts:6:9: graph @train, %3 = relu(%5: undefined) -> tensor<[2,3,8,8], f32>: input %5 is not an earlier node',
      'graph @train, %4 = quantize(%3: tensor<[2,3,8,8], f32>) -> tensor<[2,3,8,8], f32, bfp<8,axis=0>>: node at index 4 has id %7 (ids must be 0..n-1 in order)',
      "graph @train, %4 = quantize(%3: tensor<[2,3,8,8], f32>) -> tensor<[2,3,8,8], f32, bfp<8,axis=0>>: quantize has no attribute 'extra'; its attributes are bwd_fmt, bwd_rounding, fmt, role, rounding",
      "graph @train, %4 = quantize(%3: tensor<[2,3,8,8], f32>) -> tensor<[2,3,8,8], f32, bfp<8,axis=0>>: attribute 'rounding' of quantize must be \"nearest\" or \"stochastic\", got 1",
      'models/x.ts:4:9: graph @train: update "w" = %1 (stat -> tensor<[3,1,3,3], f32>) names no state node of the graph',
    ]);
    const m2 = base();
    const c = m2.graphs[0].nodes[2];
    c.inputs = [0];
    delete c.attrs.stride;
    expect(verifyErr(() => verifyGraph(m2.graphs[0]))).toEqual([
      'models/x.ts:5:9: graph @train, %2 = conv2d(%0: tensor<[2,1,8,8], f32>) -> tensor<[2,3,8,8], f32>: conv2d expects 2..3 inputs, got 1',
      "models/x.ts:5:9: graph @train, %2 = conv2d(%0: tensor<[2,1,8,8], f32>) -> tensor<[2,3,8,8], f32>: conv2d is missing attribute 'stride' (an int)",
    ]);
  });

  test('outputs, updates and states', () => {
    const m = base();
    const g = m.graphs[0];
    g.outputs.push({ name: 'y', node: 2 }, { name: 'z', node: 9 });
    g.updates.push({ name: 'v', node: 3 }, { name: 'w', node: 3 });
    expect(verifyErr(() => verifyGraph(g))).toEqual([
      'graph @train: duplicate output "y"',
      'graph @train: output "z" refers to %9, but the graph has 5 nodes',
      'graph @train: duplicate update "w"',
      'models/x.ts:6:9: graph @train: update "v" = %3 (relu -> tensor<[2,3,8,8], f32>) names no state node of the graph',
      'models/x.ts:6:9: graph @train: update "w" = %3 (relu -> tensor<[2,3,8,8], f32>) does not match the shape [3,1,3,3] of state %1',
    ]);
  });

  test('states with one name agree across graphs; graph names are unique', () => {
    const m = base();
    const ev: Graph = emptyGraph('eval');
    const b = new Builder(ev);
    b.add('state', [], { name: 'w', kind: 'param', shape: [3, 1, 5, 5], init: 'uniform', bound: 0.5 }, at(4, 9));
    m.graphs.push(ev, emptyGraph('eval'));
    expect(verifyErr(() => verifyModule(m))).toEqual([
      "module 'm': duplicate graph @eval",
      'models/x.ts:4:9: state "w": graph @eval %0 has shape [3,1,5,5], init "uniform", bound 0.5, kind "param", ' +
      'but graph @train %1 has shape [3,1,3,3], init "uniform", bound 0.5, kind "param"',
    ]);
  });

  test('the error is a LocatedError whose message lists every failure', () => {
    const m = base();
    m.graphs[0].nodes[3].type = tensorType([2, 3, 8, 9]);
    m.graphs[0].nodes[4].type = tensorType([2, 3, 8, 9], 'f32', bfp(8, 0));
    m.graphs[0].outputs.push({ name: 'y', node: 0 });
    let err: VerifyError | undefined;
    try { verifyModule(m); } catch (e) { err = e as VerifyError; }
    expect(err!.loc).toEqual({ file: 'models/x.ts', line: 6, col: 9 });
    // Users are checked against the declared type, so the wrong type is reported once, not again at %4.
    expect(err!.message.split('\n')).toEqual([
      'models/x.ts:6:9: graph @train, %3 = relu(%2: tensor<[2,3,8,8], f32>) -> tensor<[2,3,8,9], f32>: declared type does not match the inferred tensor<[2,3,8,8], f32>',
      'graph @train: duplicate output "y"',
    ]);
  });
});
