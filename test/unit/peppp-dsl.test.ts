/**
 * The DSL pieces PEPPP's models need: explicit quantizer sites resolved by the spec's named classes, named scopes
 * (state_dict names of submodules), per-layer initialisation, and the module-call records PEPPP's memory accounting
 * counts.
 */
import { traceModel, frontEnd } from '../../dsl/frontend.js';
import { withTrace } from '../../dsl/trace.js';
import { model, input, conv2d, linear, relu, batchNorm, add, flatten, quantize, scope, kaimingNormal, kaimingUniform, normal, uniform } from '../../dsl/index.js';
import { quantizePass } from '../../passes/quantize.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { initState } from '../../runtime/train/init.js';
import { stateNodes } from '../../ir/graph.js';

const net = model('t', () => {
  const x = quantize(input([2, 6, 6]), { forward: 'high' });
  const h = scope('layer1.0', () => {
    const a = quantize(relu(batchNorm(conv2d(x, { out: 64, kernel: 3, pad: 1, bias: false, init: kaimingNormal('fan_out') }))), 'low');
    const b = conv2d(a, { out: 64, kernel: 3, pad: 1, bias: false, name: 'conv1', init: normal(0.5) });
    return quantize(add(a, b), 'low');
  });
  return quantize(linear(flatten(h), 10, { init: uniform(0.25) }), { forward: 'high', backward: 'low' });
});

describe('scopes and per-layer initialisation', () => {
  const m = traceModel(net, 2);
  const states = stateNodes(m.graphs[0]);
  test('layers inside a scope are named <scope>.<layer>; automatic names count from 0 per scope', () => {
    expect([...states.keys()].filter((k) => k.endsWith('weight'))).toEqual(['layer1.0.conv0.weight', 'layer1.0.bn0.weight', 'layer1.0.conv1.weight', 'linear0.weight']);
  });
  test("kaimingNormal('fan_out') is N(0, 2/(k·k·out)); normal(s) and uniform(b) as given", () => {
    expect(states.get('layer1.0.conv0.weight')!.attrs.init).toBe('normal');
    expect(states.get('layer1.0.conv0.weight')!.attrs.std).toBeCloseTo(Math.sqrt(2 / (3 * 3 * 64)), 15);
    expect(states.get('layer1.0.conv1.weight')!.attrs).toMatchObject({ init: 'normal', std: 0.5 });
    expect(states.get('linear0.weight')!.attrs).toMatchObject({ init: 'uniform', bound: 0.25 });
    // the drawn values: 64·2·9 = 1152 and 64·64·9 = 36864 samples; mean and std within a few standard errors
    const st = initState(m, 3);
    for (const [name, sd] of [['layer1.0.conv0.weight', Math.sqrt(2 / 576)], ['layer1.0.conv1.weight', 0.5]] as const) {
      const v = st.get(name)!, n = v.length;
      const mean = v.reduce((s, x) => s + x, 0) / n, sdev = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / n);
      expect(Math.abs(mean)).toBeLessThan(4 * sd / Math.sqrt(n));
      expect(Math.abs(sdev / sd - 1)).toBeLessThan(4 / Math.sqrt(2 * n));
    }
    expect(Math.max(...st.get('linear0.weight')!.map(Math.abs))).toBeLessThanOrEqual(0.25);
    expect(kaimingUniform('fan_in').scale(9, 36)).toBeCloseTo(Math.SQRT2 * Math.sqrt(3 / 9), 15);
  });
  test('bad init and site arguments are one clear error', () => {
    expect(() => kaimingNormal('fan' as 'fan_in')).toThrow("init mode must be 'fan_in' or 'fan_out', got fan");
    expect(() => normal(-1)).toThrow('normal std must be a positive number, got -1');
    const bad = (cls: unknown) => () => traceModel(model('b', () => linear(quantize(flatten(input([4])), cls as string), 2)), 1);
    expect(bad('Low')).toThrow('quantize: a precision class is a lower-case name like \'low\', got "Low"');
    expect(bad({})).toThrow('quantize needs a forward or a backward class');
  });
  test('two layers with one name, and bad batchNorm options, are one clear error at the call', () => {
    const twice = model('t2', () => linear(scope('b', () => linear(flatten(input([4])), 3, { name: 'fc' })), 2, { name: 'b.fc' }));
    expect(() => traceModel(twice, 1)).toThrow("layer name 'b.fc' is used twice (its 'b.fc.weight' exists already); give each layer its own name");
    const bn = (o: object) => () => traceModel(model('t3', () => linear(flatten(batchNorm(input([2, 3, 3]), o)), 2)), 2);
    expect(bn({ eps: NaN })).toThrow('batchNorm eps must be a positive number, got NaN');
    expect(bn({ eps: -1 })).toThrow('batchNorm eps must be a positive number, got -1');
    expect(bn({ momentum: Infinity })).toThrow('batchNorm momentum must be in [0, 1], got Infinity');
  });
  test('module-call records: every layer, site and scope output, in call order (not flatten or add)', () => {
    const { ctx, graph } = withTrace({ batch: 2, training: true, name: 'train' }, () => net.build({}));
    expect(ctx.records.map((id) => graph.nodes[id].op)).toEqual([
      'quantize_site', 'conv2d', 'bn_apply', 'relu', 'quantize_site', 'conv2d', 'quantize_site', 'quantize_site' /* scope */, 'linear', 'quantize_site']);
  });
});

describe('explicit quantizer sites take the formats of the named classes', () => {
  const m = traceModel(net, 2);
  const quantizers = (spec?: string) => quantizePass(m, spec === undefined ? undefined : parsePolicy(spec)).graphs
    .map((g) => g.nodes.filter((n) => n.op === 'quantize' || n.op === 'quantize_site').map((n) => `${n.attrs.role}:${n.attrs.fmt && (n.attrs.fmt as { kind: string }).kind}`));
  test('a spec without classes leaves every site the identity; the eval graph gets its sites too', () => {
    expect(quantizers()).toEqual([[], []]);
    const q = quantizers('low=fixed<8,6> high=fp16');
    expect(q[0]).toEqual(['site:high/-:float', 'site:low/low:fixed', 'site:low/low:fixed', 'site:high/low:float']);
    expect(q[1]).toEqual(q[0]);
  });
  test('a class given as f32 leaves its direction unquantized; A/E placement still skips the logits', () => {
    const g = quantizePass(m, parsePolicy('low=f32 high=fp16 A=fixed<8,6>')).graphs[0];
    const roles = g.nodes.filter((n) => n.op === 'quantize').map((n) => n.attrs.role);
    expect(roles).toEqual(['site:high/-', 'A', 'A', 'A', 'A', 'A', 'site:high/low']);
    expect(g.nodes.find((n) => n.attrs.role === 'site:high/low')!.attrs.bwd_fmt).toBeUndefined();
  });
  test('an undefined class names the site; a class nothing uses is an error', () => {
    expect(() => quantizePass(frontEnd('test/fixtures/peppp_net.ts', 2), parsePolicy('low=fp16 W=low')))
      .toThrow(/^test\/fixtures\/peppp_net\.ts:8:13: quantize\(…, 'high'\): the precision spec defines no class 'high' \(it defines low\); add high=<format>, or high=f32 to leave it unquantized$/);
    expect(() => quantizePass(m, parsePolicy('low=fp16 high=fp16 mid=bf16'))).toThrow("precision spec: class 'mid' is used by no role and by no quantize() site of model 't'");
  });
});
