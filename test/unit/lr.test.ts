/** Learning-rate schedules against their formulas (PyTorch's schedulers, SWALP's train.py) and seeds.md §3.5's values. */
import { LrConfig, LrError, epochLr, lrAt, parseLrSchedule, parseSwa, parseWarmup, resolveLr } from '../../runtime/train/lr.js';

const cfg = (spec: string, base: number, epochs = 100, extra: Partial<LrConfig> = {}) =>
  resolveLr({ base, schedule: parseLrSchedule(spec), epochs, ...extra });

describe('swalp schedule', () => {
  // SWALP train.py's schedule(), written out again here independently.
  const ref = (epoch: number, lrInit: number, swaStart: number, swaLr: number) => {
    const t = epoch / swaStart;
    const f = t <= 0.5 ? 1 : t <= 0.9 ? 1 - 0.99 * (t - 0.5) / 0.4 : t < 1 ? 0.01 : swaLr / lrInit;
    return lrInit * f;
  };

  test('VGG16 (lr 0.05, swa_start 200, swa_lr 0.01): the values of seeds.md §3.5', () => {
    const c = cfg('swalp(start=200,swa_lr=0.01)', 0.05, 300);
    const want: [number, number][] = [[0, 0.05], [100, 0.05], [101, 0.049381], [150, 0.019063], [179, 0.001119], [180, 0.0005], [199, 0.0005], [200, 0.01], [299, 0.01]];
    for (const [e, v] of want) expect(epochLr(c, e)).toBeCloseTo(v, 6);
    for (let e = 0; e < 300; e++) expect(epochLr(c, e)).toBe(ref(e, 0.05, 200, 0.01));
  });

  test('PreResNet (lr 0.1, swa_start 150): the values of seeds.md §3.5', () => {
    const c = cfg('swalp', 0.1, 225, { swa: { start: 150, lr: 0.01 } });
    const want: [number, number][] = [[75, 0.1], [76, 0.09835], [120, 0.02575], [134, 0.00265], [135, 0.001], [149, 0.001], [150, 0.01], [224, 0.01]];
    for (const [e, v] of want) expect(epochLr(c, e)).toBeCloseTo(v, 6);
  });

  test('lr is constant within an epoch; swalp needs start and swa_lr and must agree with --swa', () => {
    const c = cfg('swalp(start=10,swa_lr=0.01)', 0.1);
    expect(lrAt(c, 7, 0)).toBe(lrAt(c, 7, 999));
    expect(() => cfg('swalp', 0.1)).toThrow(LrError);
    expect(() => cfg('swalp(start=10,swa_lr=0.01)', 0.1, 20, { swa: { start: 12 } })).toThrow(/disagrees with --swa start=12/);
  });
});

describe('PyTorch-style schedules', () => {
  test('step = MultiStepLR stepped once per epoch: base·γ^#{milestones ≤ e}', () => {
    const c = cfg('step(milestones=[3,6],gamma=0.5)', 0.2);
    expect([0, 2, 3, 5, 6, 9].map((e) => epochLr(c, e))).toEqual([0.2, 0.2, 0.2 * 0.5, 0.2 * 0.5, 0.2 * 0.25, 0.2 * 0.25]);
    expect(epochLr(cfg('step(milestones=4)', 1), 4)).toBeCloseTo(0.1, 15);
  });

  test('cosine = CosineAnnealingLR closed form, T = epochs by default', () => {
    const c = cfg('cosine', 0.1, 10);
    for (let e = 0; e <= 10; e++) expect(epochLr(c, e)).toBeCloseTo(0.05 * (1 + Math.cos(Math.PI * e / 10)), 15);
    const d = cfg('cosine(t_max=4,eta_min=0.001)', 0.1, 10);
    expect(epochLr(d, 2)).toBeCloseTo(0.001 + 0.099 * 0.5, 15);
    expect(epochLr(d, 7)).toBeCloseTo(0.001, 15);
  });

  test('cosine(per=step) anneals over the global step, T = epochs × steps per epoch, to eta_min at the last step', () => {
    const c = cfg('cosine(per=step)', 0.05, 2, { stepsPerEpoch: 100 });
    // PyTorch: CosineAnnealingLR(opt, T_max=200) with scheduler.step() after every iteration
    for (const s of [0, 1, 57, 100, 150, 199, 200, 250]) expect(lrAt(c, Math.floor(s / 100), s)).toBeCloseTo(0.025 * (1 + Math.cos(Math.PI * Math.min(s, 200) / 200)), 15);
    expect(lrAt(c, 0, 99)).toBeLessThan(lrAt(c, 0, 98));
    expect(lrAt(c, 1, 200)).toBe(0);
    const d = cfg('cosine(t_max=10,eta_min=0.01,per=step)', 0.05, 1);
    expect(lrAt(d, 0, 5)).toBeCloseTo(0.01 + 0.04 * 0.5, 15);
    expect(lrAt(d, 0, 10)).toBeCloseTo(0.01, 15);
    expect(() => cfg('cosine(per=step)', 0.05, 2)).toThrow('needs t_max');
    expect(() => parseLrSchedule('cosine(per=iter)')).toThrow("per must be epoch or step, got 'iter'");
  });

  test('--swa lr= replaces any schedule after `start` epochs', () => {
    const c = cfg('cosine', 0.1, 10, { swa: { start: 6, lr: 0.02 } });
    expect(epochLr(c, 5)).toBeCloseTo(0.05 * (1 + Math.cos(Math.PI / 2)), 15);
    expect(epochLr(c, 6)).toBe(0.02);
  });

  test('warm-up scales step s by (s+1)/N over the first N global steps; Nep counts epochs', () => {
    const c = cfg('const', 0.1, 10, { warmupSteps: 4 });
    expect([0, 1, 2, 3, 4, 100].map((s) => lrAt(c, 0, s))).toEqual([0.025, 0.05, 0.1 * 3 / 4, 0.1, 0.1, 0.1]);
    expect(parseWarmup('3ep', 50)).toBe(150);
    expect(parseWarmup('7', 50)).toBe(7);
    expect(() => parseWarmup('3 epochs', 50)).toThrow(/expected N/);
  });
});

describe('parse errors are precise', () => {
  test.each([
    ['stp', "unknown schedule 'stp'"],
    ['step', 'needs milestones'],
    ['step(milestones=[5,3])', 'increasing'],
    ['step(milestones=3,gama=0.1)', "unknown argument 'gama'"],
    ['cosine(t_max=0)', 't_max must be an integer ≥ 1'],
    ['const(x=1)', 'takes none'],
  ])('%s', (spec, msg) => {
    expect(() => parseLrSchedule(spec)).toThrow(msg);
  });
  test('--swa', () => {
    expect(parseSwa('start=3,lr=0.01')).toEqual({ start: 3, lr: 0.01 });
    expect(parseSwa('start=3')).toEqual({ start: 3, lr: undefined });
    expect(() => parseSwa('lr=0.1')).toThrow('needs start=EPOCH');
    expect(() => parseSwa('start=0')).toThrow('start must be an integer ≥ 1');
  });
});
