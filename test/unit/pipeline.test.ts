import { frontEnd } from '../../dsl/frontend.js';
import { runPasses, PASS_NAMES } from '../../passes/pipeline.js';
import { printModule } from '../../ir/print.js';
import { parseModule } from '../../ir/parse.js';

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
    expect(PASS_NAMES.slice(0, 5)).toEqual(['frontend', 'check-modes', 'quantize', 'autodiff', 'optimizer']);
  });
});
