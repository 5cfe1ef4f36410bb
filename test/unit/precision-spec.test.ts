import { FormatParseError, formatBits, formatToString, parseFormat, validateFormat } from '../../ir/format.js';
import { parsePolicy, parsePolicyDiagnostics, PrecisionSpecError, printPolicy } from '../../ir/precision/index.js';

const errs = (text: string) => parsePolicyDiagnostics(text).errors.map((e) => `${e.line}:${e.col}: ${e.message}`);

describe('formats', () => {
  test('canonical strings and aliases', () => {
    for (const s of ['f32', 'fixed<8,6>', 'fixed<8,6,sym>', 'fixed<8,6,noclamp>', 'fixed<8,6,sym,noclamp>', 'bfp<8,tensor>', 'bfp<8,axis=0>', 'float<5,2>'])
      expect(formatToString(parseFormat(s))).toBe(s);
    expect(formatToString(parseFormat(' bfp< 8 > '))).toBe('bfp<8,tensor>');
    expect(parseFormat('fixed<8,6,noclamp,sym>')).toEqual({ kind: 'fixed', wl: 8, fl: 6, sym: true, noclamp: true });
    expect(['bf16', 'fp16', 'e4m3', 'e5m2'].map((a) => formatToString(parseFormat(a)))).toEqual(['float<8,7>', 'float<5,10>', 'float<4,3>', 'float<5,2>']);
  });
  test('errors carry a column and the allowed range', () => {
    const msg = (s: string) => { try { parseFormat(s); return 'ok'; } catch (e) { expect(e).toBeInstanceOf(FormatParseError); return (e as Error).message; } };
    expect(msg('bpf<8>')).toBe("1: unknown format 'bpf'; expected fixed, bfp, float, minmax, mx or an alias (bf16, fp16, e4m3, e5m2)");
    expect(msg('float<9,2>')).toBe('7: float: exp must satisfy 1 <= exp <= 8 (got 9)');
    expect(msg('float<5,24>')).toBe('9: float: man must satisfy 1 <= man <= 23 (got 24)');
    expect(msg('fixed<8,0>')).toBe('9: fixed: fl must satisfy 1 <= fl <= 126 (got 0)');
    expect(msg('fixed<25,4>')).toBe('7: fixed: wl must satisfy 1 <= wl <= 24 (got 25)');
    expect(msg('bfp<8,axis=-1>')).toBe("7: bfp: axis must be 'tensor' or an integer >= 0 (got -1)");
    expect(msg('fixed<8,6')).toBe("10: expected ',' or '>'");
    expect(msg('fp16<1>')).toBe("6: 'fp16' takes no parameters");
  });
  test('validate and bits', () => {
    expect(validateFormat({ kind: 'bfp', wl: 24, axis: 'tensor' })).toBe('bfp: wl must satisfy 1 <= wl <= 23 (got 24)');
    expect(validateFormat({ kind: 'float', exp: 8, man: 23 })).toBeNull();
    expect(['f32', 'fixed<8,6>', 'bfp<8,axis=0>', 'float<5,10>', 'e4m3'].map((s) => formatBits(parseFormat(s)))).toEqual([32, 8, 8, 16, 8]);
  });
});

describe('precision spec', () => {
  const design = 'W=bfp<8,axis=0>:stochastic  A=bfp<8,tensor>  E=bfp<8,tensor>:stochastic  G=bfp<8>:stochastic\n' +
    'M=bfp<8>  ACC=fixed<16,12>  ; schedule fwd=cyclic(3,8,periods=32) bwd=const(8) ; save=division(block=8,bits=2)';
  test('the DESIGN.md example', () => {
    const p = parsePolicy(design);
    expect(p.roles.W).toEqual({ fmt: { kind: 'bfp', wl: 8, axis: 0 }, rounding: 'stochastic' });
    expect(p.roles.A).toEqual({ fmt: { kind: 'bfp', wl: 8, axis: 'tensor' }, rounding: 'nearest' });
    expect(p.roles.ACC).toEqual({ fmt: { kind: 'fixed', wl: 16, fl: 12 }, rounding: 'nearest' });
    expect(p.schedule).toEqual({ fwd: { kind: 'cyclic', lo: 3, hi: 8, periods: 32 }, bwd: { kind: 'const', bits: 8 } });
    expect(p.save).toEqual({ kind: 'division', block: 8, bits: 2 });
    expect(printPolicy(p)).toBe('W=bfp<8,axis=0>:stochastic A=bfp<8,tensor> E=bfp<8,tensor>:stochastic G=bfp<8,tensor>:stochastic ' +
      'M=bfp<8,tensor> ACC=fixed<16,12> ; schedule fwd=cyclic(3,8,periods=32) bwd=const(8) ; save=division(block=8,bits=2)');
  });

  test.each([
    '',
    'W=f32',
    'A=float<5,2>',
    'W=fixed<8,6,sym>:stochastic E=fixed<8,7,noclamp> G=float<8,7>:stochastic',
    '; schedule fwd=cyclic(2,8,periods=4)',
    'W=float<4,3> ; save=recompute',
    'A=bfp<6,axis=1> ; save=float<5,10>',
    '; save=fixed<8,4,sym>',
    '; schedule bwd=const(6) ; save=division(block=4,bits=4)',
  ])('print ∘ parse is the identity: %p', (s) => {
    expect(printPolicy(parsePolicy(s))).toBe(s);
    expect(parsePolicy(printPolicy(parsePolicy(s)))).toEqual(parsePolicy(s));
  });

  test('aliases, defaults, comments and layout', () => {
    const p = parsePolicy('# the IBM8 recipe\nW=e5m2 G=e5m2\n  M=float<6,9>:stochastic  # momentum\n;save=bf16 ; schedule fwd=cyclic(3,8)');
    expect(printPolicy(p)).toBe('W=float<5,2> G=float<5,2> M=float<6,9>:stochastic ; schedule fwd=cyclic(3,8,periods=32) ; save=float<8,7>');
    expect(parsePolicy('; save=division()').save).toEqual({ kind: 'division', block: 8, bits: 2 });
    expect(parsePolicy('A=fp16:nearest').roles.A?.rounding).toBe('nearest');
  });

  test('unknown format, with position and hint', () => {
    expect(errs('W=bfp<8,axis=0> A=bpf<8>')).toEqual([
      "1:19: unknown format 'bpf'; expected fixed, bfp, float, minmax, mx or an alias (bf16, fp16, e4m3, e5m2)"]);
  });

  test('several errors in one pass, over lines', () => {
    expect(errs('W=float<9,2>\n  A=fixed<8,0>:stoch\nG=bfp<8')).toEqual([
      '1:9: float: exp must satisfy 1 <= exp <= 8 (got 9)',
      "2:16: unknown rounding 'stoch'; expected nearest or stochastic",
      "3:8: expected '>' but found end of input",
    ]);
    expect(errs('A=fixed<8,0> E=fixed<30,2>')).toEqual([
      '1:11: fixed: fl must satisfy 1 <= fl <= 126 (got 0)',
      '1:22: fixed: wl must satisfy 1 <= wl <= 24 (got 30)',
    ]);
  });

  test('syntax errors recover and later items are still checked', () => {
    expect(errs('W=bfp<8 A=fp16 E=e4m3 X=fp16')).toEqual([
      "1:9: expected '>' but found 'A'",
      "1:23: unknown role 'X'; expected W, A, E, G, M, V, ACC, a lower-case class name (low=float<3,1>), save=… or loss_scale=…",
    ]);
    expect(errs('W=fp16 $ A=fp16')).toEqual(["1:8: unexpected character '$'"]);
    expect(errs('W=')).toEqual(['1:3: expected a name or a number but found end of input']);
  });

  test('meaning errors', () => {
    expect(errs('W=fp16 W=bf16')).toEqual(["1:8: duplicate role 'W' (first set at 1:1)"]);
    expect(errs('W=fixed(8,6)')).toEqual(['1:8: format parameters go in <…>, e.g. fixed<8,6>']);
    expect(errs('W=fixed<8,6,sym,sym>')).toEqual(["1:17: fixed: unexpected option 'sym'; expected sym or noclamp (each at most once)"]);
    expect(errs('A=bfp<8,axis=-1>')).toEqual(["1:9: bfp: axis must be 'tensor' or an integer >= 0 (got -1)"]);
    expect(errs('W schedule')).toEqual([
      "1:1: expected '=' after 'W'",
      "1:3: 'schedule' starts its own section: '… ; schedule fwd=cyclic(3,8) bwd=const(8)'",
    ]);
    expect(errs('; schedule fwd=cyclic(8,3) bwd=foo(2) mid=const(4); save=division(block=0)')).toEqual([
      '1:23: cyclic needs lo <= hi (got 8 > 3)',
      "1:32: unknown schedule 'foo(…)'; expected cyclic(lo,hi[,periods=N]) or const(bits)",
      "1:39: unknown schedule target 'mid'; expected fwd or bwd",
      '1:67: block must satisfy 1 <= block <= 64 (got 0)',
    ]);
    expect(errs('; schedule fwd=const(40) ; schedule bwd=const(8)')).toEqual([
      '1:22: bits must satisfy 1 <= bits <= 32 (got 40)',
      '1:28: duplicate schedule section (first set at 1:3)',
    ]);
    expect(errs('; save=fp32 ; save=recompute:stochastic')).toEqual([
      "1:8: unknown save mode 'fp32'; expected division(block=K,bits=B), recompute, or a format (fp16, bf16, fixed<…>, …)",
      '1:30: a rounding applies to roles only',
    ]);
    expect(errs('A=fp16\n; save=division(bits=3, block=65)')).toEqual([
      '2:17: bits must be 1, 2, 4 or 8 (the codes are packed 8/bits per byte), got 3',
    ]);
    expect(errs('; save=division(block=4,bits=16)')).toEqual(['1:25: bits must satisfy 1 <= bits <= 8 (got 16)']);
  });

  test('parsePolicy throws all diagnostics as line:col lines', () => {
    expect(() => parsePolicy('W=bpf<8> A=fixed<8,0>')).toThrow(PrecisionSpecError);
    try { parsePolicy('W=bpf<8> A=fixed<8,0>'); } catch (e) {
      expect((e as PrecisionSpecError).errors.length).toBe(2);
      expect((e as Error).message).toBe("1:3: unknown format 'bpf'; expected fixed, bfp, float, minmax, mx or an alias (bf16, fp16, e4m3, e5m2)\n" +
        '1:20: fixed: fl must satisfy 1 <= fl <= 126 (got 0)');
    }
  });
});

describe('named precision classes and loss scaling (PEPPP)', () => {
  const PEPPP0 = 'low=float<3,1>:stochastic high=float<6,7>:stochastic W=low G=low M=high ACC=high loss_scale=1000';
  test("a PEPPP configuration: classes, roles naming them, loss_scale; print ∘ parse is the identity", () => {
    const p = parsePolicy(PEPPP0);
    const low = { fmt: { kind: 'float', exp: 3, man: 1 }, rounding: 'stochastic' };
    const high = { fmt: { kind: 'float', exp: 6, man: 7 }, rounding: 'stochastic' };
    expect(p.classes).toEqual({ low, high });
    expect(p.roles).toEqual({ W: low, G: low, M: high, ACC: high });
    expect(p.roleClasses).toEqual({ W: 'low', G: 'low', M: 'high', ACC: 'high' });
    expect(p.lossScale).toBe(1000);
    expect(printPolicy(p)).toBe(PEPPP0);
    expect(parsePolicy(printPolicy(p))).toEqual(p);
  });
  test('a class may be used before it is defined; loss_scale takes decimals and exponents; f32 is a class format', () => {
    const p = parsePolicy('A=mid E=mid mid=fp16 loss_scale=1.5e2 ; save=bf16');
    expect(p.roles.A).toEqual({ fmt: { kind: 'float', exp: 5, man: 10 }, rounding: 'nearest' });
    expect(printPolicy(p)).toBe('mid=float<5,10> A=mid E=mid loss_scale=150 ; save=float<8,7>');
    expect(parsePolicy('hi=f32 low=fixed<8,6> W=low').classes!.hi.fmt).toEqual({ kind: 'f32' });
  });
  test('bad classes and scales: one line each, at the place', () => {
    expect(errs('W=lo low=fixed<8,6>')).toEqual(["1:3: unknown format or class 'lo'; classes defined here: low"]);
    expect(errs('W=low:nearest low=fixed<8,6>')).toEqual(["1:7: 'W=low' takes the class's rounding; set it on the class (low=…:nearest)"]);
    expect(errs('mid=low low=bf16')).toEqual(["1:5: a class is defined by a format, not by another class ('mid=low')"]);
    expect(errs('bf16=fixed<8,6>')).toEqual(["1:1: 'bf16' cannot name a precision class: it is a keyword or a format name"]);
    expect(errs('low=float<3,1> low=fp16')).toEqual(["1:16: duplicate class 'low' (first set at 1:1)"]);
    expect(errs('loss_scale=0')).toEqual(['1:12: loss_scale must be a positive number, e.g. loss_scale=1000']);
    expect(errs('loss_scale=fp16')).toEqual(['1:1: loss_scale must be a positive number, e.g. loss_scale=1000']);
    expect(errs('A=1000')).toEqual(['1:3: expected a format, e.g. fixed<8,6> or float<5,2>']);
    expect(errs('loss_scale=8 loss_scale=9')).toEqual(["1:14: duplicate 'loss_scale' (first set at 1:1)"]);
  });
});
