/**
 * Number formats: part of a tensor's type. `f32` means unquantized.
 * Canonical text (MLIR-like, stable for print ∘ parse): f32, fixed<8,6>, fixed<8,6,sym>, fixed<8,6,noclamp>,
 * bfp<8,tensor>, bfp<8,axis=0>, float<5,2>, mx<e4m3>, mx<e2m1,block=16,axis=0>,
 * mx<e4m3,scale=rceil>, mx<int6,fwd> (options in that order; scale=floor omitted).
 * Semantics (bit-exact with QPyTorch, differences listed in docs/numerics.md) live in ir/quant/quantize.ts.
 */
export type Format =
  | { kind: 'f32' }
  | { kind: 'fixed'; wl: number; fl: number; sym?: boolean; noclamp?: boolean }
  | { kind: 'bfp'; wl: number; axis: number | 'tensor' }
  | { kind: 'float'; exp: number; man: number }
  /**
   * CPT's quantizer (research/seeds.md §2.2): 2^bits − 1 levels spanning [min, max] of each block (the whole
   * tensor, or each index of axis 0: per output channel), always de-quantized; bits = 0 is the identity. `sched`
   * (fwd | bwd) takes the width from the precision schedule at run time instead (a uniform: no recompilation).
   */
  | { kind: 'minmax'; bits: number; per: 'tensor' | 'channel'; sched?: 'fwd' | 'bwd' }
  /**
   * OCP Microscaling (ir/quant/mx.ts, docs/numerics.md): blocks of `block` consecutive elements along `axis` share
   * one E8M0 scale; elements are `elem`. `axis` absent: the channel axis (1) of a 4-D tensor, else the last axis.
   * `scale` picks the shared exponent as torchao's modes do (absent: floor, the OCP spec's). `sched` (fwd | bwd, an
   * integer `elem` only) takes the element width from the precision schedule at run time, at most elem's (CPT).
   */
  | { kind: 'mx'; elem: MxElem; block: number; axis?: number; scale?: MxScale; sched?: 'fwd' | 'bwd' };

/** MX element formats (microxcaling's names fp8_e4m3, …, int8; intB for every width 2…8). */
export type MxElem = 'e4m3' | 'e5m2' | 'e3m2' | 'e2m3' | 'e2m1' | 'int8' | 'int7' | 'int6' | 'int5' | 'int4' | 'int3' | 'int2';

/** How a block's shared exponent is chosen (torchao's ScaleCalculationMode; docs/numerics.md "MX scale modes"). */
export type MxScale = 'floor' | 'ceil' | 'even' | 'rceil';
export const MX_SCALES: readonly MxScale[] = ['floor', 'ceil', 'even', 'rceil'];

/**
 * MX element parameters as the reference library defines them (golden/MX.md §3): exponent bits (0: integer), fraction
 * bits f, emax (exponent of the largest normal; 0 for integers) and maxK, the largest magnitude in steps of
 * 2^(emax − f) (max_norm = maxK·2^(emax−f): 448 = 14·2^5 for E4M3, 127·2^−6 for INT8), and the code width.
 */
export const MX_ELEMS: Readonly<Record<MxElem, { ebits: number; f: number; emax: number; maxK: number; bits: number }>> = {
  e4m3: { ebits: 4, f: 3, emax: 8, maxK: 14, bits: 8 },
  e5m2: { ebits: 5, f: 2, emax: 15, maxK: 7, bits: 8 },
  e3m2: { ebits: 3, f: 2, emax: 4, maxK: 7, bits: 6 },
  e2m3: { ebits: 2, f: 3, emax: 2, maxK: 15, bits: 6 },
  e2m1: { ebits: 2, f: 1, emax: 2, maxK: 3, bits: 4 },
  int8: { ebits: 0, f: 6, emax: 0, maxK: 127, bits: 8 },
  int7: mxInt(7), int6: mxInt(6), int5: mxInt(5),
  int4: { ebits: 0, f: 2, emax: 0, maxK: 7, bits: 4 },
  int3: mxInt(3), int2: mxInt(2),
};
/** MX_ELEMS's integer widths. */
export const MX_INT_BITS = [2, 8] as const;

/** MXINT with B-bit elements: k·2^−(B−2), |k| ≤ 2^(B−1) − 1 (the library's int8, int4 and int2 follow this rule). */
export function mxInt(B: number): { ebits: 0; f: number; emax: 0; maxK: number; bits: number } {
  return { ebits: 0, f: B - 2, emax: 0, maxK: 2 ** (B - 1) - 1, bits: B };
}
export const MX_DEFAULT_BLOCK = 32;
/** The E8M0 scale: one byte per block. */
export const MX_SCALE_BITS = 8;

export type Rounding = 'nearest' | 'stochastic';

export const F32: Format = { kind: 'f32' };

export function formatToString(f: Format): string {
  switch (f.kind) {
    case 'f32': return 'f32';
    case 'fixed': return `fixed<${f.wl},${f.fl}${f.sym ? ',sym' : ''}${f.noclamp ? ',noclamp' : ''}>`;
    case 'bfp': return `bfp<${f.wl},${f.axis === 'tensor' ? 'tensor' : `axis=${f.axis}`}>`;
    case 'float': return `float<${f.exp},${f.man}>`;
    case 'minmax': return `minmax<${f.bits},${f.per}${f.sched ? `,${f.sched}` : ''}>`;
    case 'mx': return `mx<${f.elem}${f.block !== MX_DEFAULT_BLOCK ? `,block=${f.block}` : ''}${f.axis !== undefined ? `,axis=${f.axis}` : ''}${
      f.scale && f.scale !== 'floor' ? `,scale=${f.scale}` : ''}${f.sched ? `,${f.sched}` : ''}>`;
  }
}

export function formatEquals(a: Format, b: Format): boolean {
  return formatToString(a) === formatToString(b);
}

/** Named formats; they print as their canonical `float<e,m>` (QPyTorch semantics, not IEEE: see docs/numerics.md). */
export const FORMAT_ALIASES: Readonly<Record<string, Format>> = {
  bf16: { kind: 'float', exp: 8, man: 7 },
  fp16: { kind: 'float', exp: 5, man: 10 },
  e4m3: { kind: 'float', exp: 4, man: 3 },
  e5m2: { kind: 'float', exp: 5, man: 2 },
};

/**
 * Allowed ranges. QPyTorch's number classes assert wl > 0, fl > 0, 0 < exp <= 8, 0 < man <= 23; lpc adds upper
 * bounds where f32 simulation stops being meaningful: fixed wl <= 24 (f32 holds 24-bit integers exactly),
 * fl <= 126 (the grid step stays a normal f32), bfp wl <= 23 (the rebased value keeps 23 mantissa bits).
 */
export const FORMAT_LIMITS = {
  fixedWl: [1, 24], fixedFl: [1, 126], bfpWl: [1, 23], floatExp: [1, 8], floatMan: [1, 23], minmaxBits: [0, 16],
  mxBlock: [1, 1 << 16],
} as const;

function rangeErr(what: string, v: number, [lo, hi]: readonly [number, number]): string | null {
  if (!Number.isInteger(v) || v < lo || v > hi) return `${what} must satisfy ${lo} <= ${what} <= ${hi} (got ${v})`;
  return null;
}

/** Null if `f` is a valid format, else a message stating the allowed range. */
export function validateFormat(f: Format): string | null {
  const L = FORMAT_LIMITS;
  switch (f.kind) {
    case 'f32': return null;
    case 'fixed': {
      const e = rangeErr('wl', f.wl, L.fixedWl);
      if (e) return `fixed: ${e}`;
      const g = rangeErr('fl', f.fl, L.fixedFl);
      return g ? `fixed: ${g}` : null;
    }
    case 'bfp': {
      const e = rangeErr('wl', f.wl, L.bfpWl);
      if (e) return `bfp: ${e}`;
      if (f.axis !== 'tensor' && (!Number.isInteger(f.axis) || f.axis < 0))
        return `bfp: axis must be 'tensor' or an integer >= 0 (got ${f.axis})`;
      return null;
    }
    case 'float': {
      const e = rangeErr('exp', f.exp, L.floatExp) ?? rangeErr('man', f.man, L.floatMan);
      return e ? `float: ${e}` : null;
    }
    case 'minmax': {
      const e = rangeErr('bits', f.bits, L.minmaxBits);
      return e ? `minmax: ${e}` : null;
    }
    case 'mx': {
      if (/^int\d+$/.test(f.elem) && !Object.hasOwn(MX_ELEMS, f.elem))
        return `mx: unknown element format '${f.elem}': integer elements take ${MX_INT_BITS[0]} to ${MX_INT_BITS[1]} bits (int2 … int8)`;
      if (!Object.hasOwn(MX_ELEMS, f.elem)) return `mx: unknown element format '${f.elem}'; expected ${MX_ELEM_HINT}`;
      const e = rangeErr('block', f.block, L.mxBlock);
      if (e) return `mx: ${e}`;
      if ((f.block & (f.block - 1)) !== 0) return `mx: block must be a power of two (got ${f.block})`;
      if (f.axis !== undefined && (!Number.isInteger(f.axis) || f.axis < 0)) return `mx: axis must be an integer >= 0 (got ${f.axis})`;
      if (f.scale !== undefined && !MX_SCALES.includes(f.scale)) return `mx: scale: unknown scale mode '${f.scale}'; expected ${MX_SCALES.join(', ')}`;
      if (f.sched && MX_ELEMS[f.elem].ebits !== 0)
        return `mx: unknown option '${f.sched}': a scheduled width needs integer elements (mx<int8,${f.sched}>), not ${f.elem}`;
      return null;
    }
  }
}

/** Storage bits per element (bfp: the per-block shared exponent, BFP_EXPONENT_BITS, is extra; mx: its scale byte). */
export function formatBits(f: Format): number {
  switch (f.kind) {
    case 'f32': return 32;
    case 'fixed': return f.wl;
    case 'bfp': return f.wl;
    case 'float': return 1 + f.exp + f.man;
    case 'minmax': return f.bits || 32;
    case 'mx': return MX_ELEMS[f.elem].bits;
  }
}

/** Bits per element with a block scale's share: mx adds its E8M0 byte over the block (8.25 for mx<e4m3>). */
export function formatBitsWithScale(f: Format): number {
  return formatBits(f) + (f.kind === 'mx' ? MX_SCALE_BITS / f.block : 0);
}

/** A bfp block stores one fp32-range exponent (QPyTorch's BFP has no exponent-width parameter). */
export const BFP_EXPONENT_BITS = 8;

/** One argument inside `<…>`: `8`, `sym`, `axis=0`. `pos` is an opaque position the caller maps back to text. */
export type FormatArg =
  | { kind: 'int'; value: number; pos?: number }
  | { kind: 'ident'; name: string; pos?: number }
  | { kind: 'kv'; key: string; value: number; pos?: number }
  /** `scale=ceil`: an option whose value is a name. */
  | { kind: 'kvname'; key: string; name: string; pos?: number };

export type BuildResult = { fmt: Format } | { error: string; arg?: number };

const MX_ELEM_HINT = 'e4m3, e5m2, e3m2, e2m3, e2m1, int2 … int8';

const KINDS_HINT = 'expected fixed, bfp, float, minmax, mx or an alias (bf16, fp16, e4m3, e5m2)';

function argText(a: FormatArg): string {
  return a.kind === 'int' ? String(a.value) : a.kind === 'ident' ? a.name : a.kind === 'kv' ? `${a.key}=${a.value}` : `${a.key}=${a.name}`;
}

/**
 * Builds a format from its name and `<…>` arguments (undefined when there are none), validating ranges.
 * Shared by parseFormat and the precision-spec parser so both give the same messages; `arg` indexes the
 * offending argument when there is one.
 */
export function buildFormat(name: string, args: FormatArg[] | undefined): BuildResult {
  const alias = FORMAT_ALIASES[name];
  if (alias || name === 'f32') {
    if (args) return { error: `'${name}' takes no parameters`, arg: 0 };
    return { fmt: alias ?? F32 };
  }
  const ints = (n: number, usage: string): BuildResult | null => {
    if (!args || args.length < n) return { error: `${name} expects ${usage}` };
    for (let i = 0; i < n; i++)
      if (args[i].kind !== 'int') return { error: `${name} expects ${usage}; got '${argText(args[i])}'`, arg: i };
    return null;
  };
  const iv = (i: number) => (args![i] as { value: number }).value;
  const check = (fmt: Format, argOf: Record<string, number>): BuildResult => {
    const err = validateFormat(fmt);
    if (!err) return { fmt };
    const field = /^\w+: (\w+)/.exec(err)?.[1] ?? '';
    return { error: err, arg: argOf[field] };
  };
  switch (name) {
    case 'fixed': {
      const e = ints(2, 'fixed<wl,fl[,sym][,noclamp]>');
      if (e) return e;
      const f: Format = { kind: 'fixed', wl: iv(0), fl: iv(1) };
      for (let i = 2; i < args!.length; i++) {
        const a = args![i];
        if (a.kind === 'ident' && a.name === 'sym' && !f.sym) f.sym = true;
        else if (a.kind === 'ident' && a.name === 'noclamp' && !f.noclamp) f.noclamp = true;
        else return { error: `fixed: unexpected option '${argText(a)}'; expected sym or noclamp (each at most once)`, arg: i };
      }
      return check(f, { wl: 0, fl: 1 });
    }
    case 'bfp': {
      const e = ints(1, 'bfp<wl[,tensor|axis=k]>');
      if (e) return e;
      if (args!.length > 2) return { error: 'bfp expects bfp<wl[,tensor|axis=k]>', arg: 2 };
      let axis: number | 'tensor' = 'tensor'; // QPyTorch's default dim=-1: one exponent for the whole tensor
      if (args!.length === 2) {
        const a = args![1];
        if (a.kind === 'ident' && a.name === 'tensor') axis = 'tensor';
        else if (a.kind === 'kv' && a.key === 'axis') axis = a.value;
        else return { error: `bfp: expected 'tensor' or 'axis=k', got '${argText(a)}'`, arg: 1 };
      }
      return check({ kind: 'bfp', wl: iv(0), axis }, { wl: 0, axis: 1 });
    }
    case 'float': {
      const e = ints(2, 'float<exp,man>');
      if (e) return e;
      if (args!.length > 2) return { error: 'float expects float<exp,man>', arg: 2 };
      return check({ kind: 'float', exp: iv(0), man: iv(1) }, { exp: 0, man: 1 });
    }
    case 'minmax': {
      const e = ints(1, 'minmax<bits,tensor|channel[,fwd|bwd]>');
      if (e) return e;
      const f: Format = { kind: 'minmax', bits: iv(0), per: 'tensor' };
      if (args!.length > 3) return { error: 'minmax expects minmax<bits,tensor|channel[,fwd|bwd]>', arg: 3 };
      for (let i = 1; i < args!.length; i++) {
        const a = args![i];
        if (i === 1 && a.kind === 'ident' && (a.name === 'tensor' || a.name === 'channel')) f.per = a.name;
        else if (i === 2 && a.kind === 'ident' && (a.name === 'fwd' || a.name === 'bwd')) f.sched = a.name;
        else return { error: `minmax: unexpected '${argText(a)}'; expected ${i === 1 ? "'tensor' or 'channel'" : "'fwd' or 'bwd' (a scheduled width)"}`, arg: i };
      }
      return check(f, { bits: 0 });
    }
    case 'mx': {
      const usage = `mx<elem[,block=B][,axis=k][,scale=S][,fwd|bwd]> (elem: ${MX_ELEM_HINT}; S: ${MX_SCALES.join(', ')})`;
      if (!args || args.length === 0 || args[0].kind !== 'ident') return { error: `mx expects ${usage}`, arg: args?.length ? 0 : undefined };
      const f: Extract<Format, { kind: 'mx' }> = { kind: 'mx', elem: args[0].name as MxElem, block: MX_DEFAULT_BLOCK };
      const seen = new Set<string>();
      const argOf: Record<string, number> = { unknown: 0 };
      for (let i = 1; i < args.length; i++) {
        const a = args[i];
        const key = a.kind === 'kv' || a.kind === 'kvname' ? a.key : a.kind === 'ident' && (a.name === 'fwd' || a.name === 'bwd') ? 'sched' : '';
        const ok = (a.kind === 'kv' && (key === 'block' || key === 'axis')) || (a.kind === 'kvname' && key === 'scale') || key === 'sched';
        if (!ok || seen.has(key))
          return { error: `mx: unexpected option '${argText(a)}'; expected block=B, axis=k, scale=S or fwd|bwd (each at most once)`, arg: i };
        seen.add(key);
        argOf[key] = i;
        if (a.kind === 'kv') { if (key === 'block') f.block = a.value; else f.axis = a.value; }
        else if (a.kind === 'kvname') f.scale = a.name as MxScale;
        else if (a.kind === 'ident') f.sched = a.name as 'fwd' | 'bwd';
      }
      if (f.scale === 'floor') delete f.scale; // the default, printed by omission
      const err = validateFormat(f);
      if (!err) return { fmt: f };
      const field = /^mx: (unknown option|unknown|block|axis|scale)/.exec(err)?.[1] ?? '';
      return { error: err, arg: argOf[field === 'unknown option' ? 'sched' : field] };
    }
    default:
      return { error: `unknown format '${name}'; ${KINDS_HINT}` };
  }
}

/** Thrown by parseFormat; `col` is 1-based. */
export class FormatParseError extends Error {
  constructor(public readonly col: number, public readonly detail: string) {
    super(`${col}: ${detail}`);
    this.name = 'FormatParseError';
  }
}

/** Parses a canonical format string or an alias (`fixed<8,6,sym>`, `bfp<8>`, `bfp<8,axis=0>`, `e4m3`, `f32`). */
export function parseFormat(text: string): Format {
  const re = /\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(-?\d+)|(\S))/gy;
  const toks: { t: 'id' | 'int' | 'p'; s: string; col: number }[] = [];
  for (let m; (m = re.exec(text)) && m[0].length > 0;) {
    const col = m.index + m[0].length - (m[1] ?? m[2] ?? m[3] ?? '').length + 1;
    if (m[1]) toks.push({ t: 'id', s: m[1], col });
    else if (m[2]) toks.push({ t: 'int', s: m[2], col });
    else if (m[3]) toks.push({ t: 'p', s: m[3], col });
  }
  const end = text.length + 1;
  let i = 0;
  const peek = () => toks[i];
  const fail = (col: number, msg: string): never => { throw new FormatParseError(col, msg); };
  const name = peek();
  if (!name || name.t !== 'id') return fail(name?.col ?? end, `expected a format name; ${KINDS_HINT}`);
  i++;
  let args: FormatArg[] | undefined;
  const cols: number[] = [];
  if (peek()?.s === '<') {
    i++;
    args = [];
    for (;;) {
      const t = peek();
      if (!t) return fail(end, "expected '>'");
      if (t.t === 'int') { args.push({ kind: 'int', value: Number(t.s) }); cols.push(t.col); i++; }
      else if (t.t === 'id') {
        i++;
        if (peek()?.s === '=') {
          i++;
          const v = peek();
          if (!v || (v.t !== 'int' && v.t !== 'id')) return fail(v?.col ?? end, `expected an integer or a name after '${t.s}='`);
          i++;
          args.push(v.t === 'int' ? { kind: 'kv', key: t.s, value: Number(v.s) } : { kind: 'kvname', key: t.s, name: v.s });
        } else args.push({ kind: 'ident', name: t.s });
        cols.push(t.col);
      } else return fail(t.col, `unexpected '${t.s}' in format parameters`);
      const sep = peek();
      if (sep?.s === ',') { i++; continue; }
      if (sep?.s === '>') { i++; break; }
      return fail(sep?.col ?? end, "expected ',' or '>'");
    }
  }
  if (i < toks.length) fail(toks[i].col, `unexpected '${toks[i].s}' after format`);
  const r = buildFormat(name.s, args);
  if ('error' in r) fail(r.arg !== undefined && cols[r.arg] !== undefined ? cols[r.arg] : name.col, r.error);
  return (r as { fmt: Format }).fmt;
}
