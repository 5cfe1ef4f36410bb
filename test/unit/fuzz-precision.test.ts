/**
 * Fuzzing the precision-spec parser: generated valid specs round-trip (printPolicy ∘ parsePolicy is the identity on
 * the canonical text); random and mutated texts either parse (and then round-trip) or throw PrecisionSpecError whose
 * lines all have the `line:col: message` form, and parsePolicyDiagnostics never throws.
 */
import fc from 'fast-check';
import { parsePolicy, parsePolicyDiagnostics, PrecisionSpecError, printPolicy } from '../../ir/precision/index.js';
import { mutated, params, randomText, returnsOrOwnError } from './fuzz-runs.js';

const fmt = fc.oneof(
  fc.constantFrom('f32', 'bf16', 'fp16', 'e4m3', 'e5m2'),
  fc.tuple(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 126 }), fc.boolean(), fc.boolean())
    .map(([wl, fl, sym, nc]) => `fixed<${wl},${fl}${sym ? ',sym' : ''}${nc ? ',noclamp' : ''}>`),
  fc.tuple(fc.integer({ min: 1, max: 23 }), fc.oneof(fc.constant('tensor'), fc.integer({ min: 0, max: 3 }).map((a) => `axis=${a}`)))
    .map(([wl, ax]) => `bfp<${wl},${ax}>`),
  fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 23 })).map(([e, m]) => `float<${e},${m}>`),
  fc.tuple(fc.constantFrom('e4m3', 'e5m2', 'e3m2', 'e2m3', 'e2m1', 'int8', 'int5', 'int4', 'int2'), fc.option(fc.constantFrom(1, 2, 16, 32, 64)),
    fc.option(fc.integer({ min: 0, max: 3 })), fc.option(fc.constantFrom('floor', 'ceil', 'even', 'rceil')))
    .map(([e, b, a, sc]) => `mx<${e}${b === null ? '' : `,block=${b}`}${a === null ? '' : `,axis=${a}`}${sc === null ? '' : `,scale=${sc}`}>`),
);
const rounding = fc.constantFrom('', ':nearest', ':stochastic');
const ROLES = ['W', 'A', 'E', 'G', 'M', 'V', 'ACC'];
const sched = fc.oneof(
  fc.integer({ min: 1, max: 32 }).map((b) => `const(${b})`),
  fc.tuple(fc.integer({ min: 1, max: 32 }), fc.integer({ min: 0, max: 31 }), fc.option(fc.integer({ min: 1, max: 64 })))
    .map(([lo, d, p]) => `cyclic(${lo},${Math.min(32, lo + d)}${p === null ? '' : `,periods=${p}`})`),
);

/** Valid specs as a user might write them (aliases, defaults, :nearest, classes, comments, newlines). */
const validSpec = fc.record({
  classes: fc.uniqueArray(fc.constantFrom('low', 'high', 'mid_1', 'x'), { maxLength: 3 }),
  roles: fc.subarray(ROLES),
  roleClass: fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
  fmts: fc.array(fc.tuple(fmt, rounding), { minLength: 10, maxLength: 10 }),
  loss: fc.option(fc.constantFrom('1000', '1', '65536', '0.5')),
  fwd: fc.option(sched), bwd: fc.option(sched),
  save: fc.option(fc.oneof(fmt, fc.constant('recompute'), fc.constant('division()'),
    fc.tuple(fc.constantFrom(2, 4, 8, 16), fc.constantFrom(1, 2, 4, 8)).map(([b, n]) => `division(block=${b},bits=${n})`))),
  sep: fc.constantFrom(' ', '  ', '\n', ' # note\n'),
}).map((r) => {
  const parts = [
    ...r.classes.map((c, i) => `${c}=${r.fmts[i][0]}${r.fmts[i][1]}`),
    ...r.roles.map((role, i) => (r.classes.length && r.roleClass[i] ? `${role}=${r.classes[i % r.classes.length]}` : `${role}=${r.fmts[3 + i][0]}${r.fmts[3 + i][1]}`)),
    ...(r.loss ? [`loss_scale=${r.loss}`] : []),
  ];
  let s = parts.join(r.sep);
  // a schedule drives MX roles only within their integer widths (mx-cpt.test.ts): keep MX out of scheduled specs
  if (r.fwd || r.bwd) s = s.replace(/mx<[^>]*>/g, 'fp16');
  if (r.fwd || r.bwd) s += ` ; schedule${r.fwd ? ` fwd=${r.fwd}` : ''}${r.bwd ? ` bwd=${r.bwd}` : ''}`;
  if (r.save) s += ` ; save=${r.save}`;
  return s;
});

const SEEDS = [
  'W=bfp<8,axis=0>:stochastic  A=bfp<8,tensor>  E=bfp<8,tensor>:stochastic  G=bfp<8>:stochastic\nM=bfp<8>  ACC=fixed<16,12>  ; schedule fwd=cyclic(3,8,periods=32) bwd=const(8) ; save=division(block=8,bits=2)',
  'low=float<3,1>:stochastic high=float<6,9> W=low G=low M=high ACC=high loss_scale=1000',
  '# the IBM8 recipe\nW=e5m2 G=e5m2\n  M=float<6,9>:stochastic  # momentum\n;save=bf16 ; schedule fwd=cyclic(3,8)',
  'W=fixed<8,6,sym>:stochastic E=fixed<8,7,noclamp> G=float<8,7>:stochastic ; save=recompute',
  '; schedule bwd=const(6) ; save=division(block=4,bits=4)',
];

const LINE = /^\d+:\d+: \S/;
function check(text: string): void {
  expect(() => parsePolicyDiagnostics(text)).not.toThrow();
  returnsOrOwnError(() => {
    const canon = printPolicy(parsePolicy(text));
    expect(printPolicy(parsePolicy(canon))).toBe(canon);
  }, [PrecisionSpecError], (l) => LINE.test(l), (l) => LINE.test(l));
}

describe('fuzz: precision spec', () => {
  test('valid specs round-trip through the canonical text', () => {
    fc.assert(fc.property(validSpec, (s) => {
      const p = parsePolicy(s);
      const canon = printPolicy(p);
      expect(parsePolicy(canon)).toEqual(p);
      expect(printPolicy(parsePolicy(canon))).toBe(canon);
    }), params());
  });
  test('random text: a policy or PrecisionSpecError with line:col lines', () => {
    fc.assert(fc.property(randomText, check), params());
  });
  test('mutated valid specs: a policy or PrecisionSpecError with line:col lines', () => {
    fc.assert(fc.property(fc.oneof(mutated(SEEDS), validSpec.chain((s) => mutated([s]))), check), params(2));
  });
});
