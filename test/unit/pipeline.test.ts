import { frontEnd } from '../../dsl/frontend.js';
import { runPasses, PASS_NAMES } from '../../passes/pipeline.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';
import { parsePolicy } from '../../ir/precision/index.js';

const optimizer = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };

describe('pass pipeline', () => {
  for (const file of ['models/lenet5.ts', 'test/fixtures/helpers_loop.ts']) {
    test(`${file}: verifies after every pass, and print ∘ parse is the identity`, () => {
      const m = runPasses(frontEnd(file, 4), { batch: 4, optimizer, verifyEach: true });
      const text = printModule(m);
      expect(printModule(parseModule(text, 'x.lpir'))).toBe(text);
      const train = m.graphs.find((g) => g.name === 'train')!;
      // Every parameter gets an SGD update and a momentum buffer; no gradient outputs are left behind.
      const params = train.nodes.filter((n) => n.op === 'state' && n.attrs.kind === 'param').map((n) => n.attrs.name);
      const updated = new Set(train.updates.map((u) => u.name));
      for (const p of params) { expect(updated.has(p as string)).toBe(true); expect(updated.has(`${p}.momentum`)).toBe(true); }
      expect(train.outputs.map((o) => o.name)).toEqual(['loss', 'correct']);
    });
  }

  test('--print-after and --time-passes', () => {
    const lines: string[] = [];
    runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer, printAfter: ['autodiff'], timePasses: true, log: (s) => lines.push(s) });
    const all = lines.join('\n');
    expect(all).toContain('// ----- IR after autodiff -----');
    expect(all).toContain('conv2d_bwd_weight');
    for (const p of PASS_NAMES) expect(all).toMatch(new RegExp(`^${p}\\s+\\d`, 'm'));
    expect(() => runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer, printAfter: ['autodif'] }))
      .toThrow(`--print-after: unknown pass 'autodif'; passes are ${PASS_NAMES.join(', ')} (or 'all')`);
    expect(PASS_NAMES).toEqual(['frontend', 'check-modes', 'quantize', 'autodiff', 'optimizer', 'compress', 'pack-state',
      'fold-elementwise', 'drop-identity-quantizer', 'recompute-shared-elementwise', 'fold-quantizer', 'fold-qpost-relu',
      'refold-elementwise', 'fuse-compress', 'dce']);
  });

  test('each fusion rule is a pass of its own: --print-after fold-quantizer shows the folded quantizers', () => {
    const lines: string[] = [];
    const precision = parsePolicy('A=fixed<8,4> E=float<5,2>');
    runPasses(frontEnd('models/lenet5.ts', 2), { batch: 2, optimizer, precision, printAfter: ['recompute-shared-elementwise', 'fold-quantizer'], log: (s) => lines.push(s) });
    expect(lines.map((l) => l.split('\n')[0])).toEqual(['// ----- IR after recompute-shared-elementwise -----', '// ----- IR after fold-quantizer -----']);
    const quantizers = (s: string) => (s.match(/= quantize\(/g) ?? []).length;
    expect(quantizers(lines[0])).toBeGreaterThan(0);
    expect(quantizers(lines[1])).toBeLessThan(quantizers(lines[0]));
    expect(lines[1]).toMatch(/ epilogue\{(post=\S+, )?(args=\d, )?q=fixed<8,4>, rounding=nearest, role="A"/);
  });
});
