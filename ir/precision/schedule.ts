/**
 * Precision schedules (CPT, research/seeds.md §2.1): the bit width at training iteration t (0-based, evaluated
 * before the step). cyclic: P = floor(total / periods); bits = rint(lo + ½(hi − lo)(1 + cos(π·(t mod P)/P + π))),
 * written as CPT writes it so float64 results match numpy's; rint is numpy's round-half-to-even.
 */
import { Format, MX_ELEMS } from '../format.js';
import { parsePolicy, PrecisionPolicy, PrecisionSpecError, RoleSpec, ScheduleSpec } from './policy.js';
import { SpecDiagnostic } from './parser.js';

/** A format whose width a schedule can set: CPT's minmax, and MXINT (mx<intB>: the element width, B at most its own). */
export function schedulable(f: Format | undefined): boolean {
  return f?.kind === 'minmax' || (f?.kind === 'mx' && MX_ELEMS[f.elem].ebits === 0);
}

/**
 * The roles a schedule drives, their formats marked with the width they read at run time (a uniform: one compiled
 * artifact for every width): W and A follow `fwd`, E `bwd`. Other roles, and roles without a schedule, as written.
 */
export function scheduledRoles(p: PrecisionPolicy): { W?: RoleSpec; A?: RoleSpec; E?: RoleSpec } {
  const sched = (r: RoleSpec | undefined, which: 'fwd' | 'bwd'): RoleSpec | undefined => {
    if (!r || !schedulable(r.fmt) || !p.schedule?.[which]) return r;
    return { ...r, fmt: { ...r.fmt, sched: which } as Format };
  };
  return { W: sched(p.roles.W, 'fwd'), A: sched(p.roles.A, 'fwd'), E: sched(p.roles.E, 'bwd') };
}

/** numpy.rint: round to nearest, ties to even. */
export function rint(x: number): number {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Iterations per cycle; at least 1 so that a run shorter than `periods` iterations still has a schedule. */
export function cyclePeriod(s: Extract<ScheduleSpec, { kind: 'cyclic' }>, totalIters: number): number {
  return Math.max(1, Math.floor(totalIters / s.periods));
}

export function scheduleBits(s: ScheduleSpec, t: number, totalIters: number): number {
  if (s.kind === 'const') return s.bits;
  const P = cyclePeriod(s, totalIters);
  return rint(s.lo + 0.5 * (s.hi - s.lo) * (1 + Math.cos(Math.PI * ((t % P) / P) + Math.PI)));
}

/** Bits at every iteration 0 … totalIters−1. */
export function scheduleTable(s: ScheduleSpec, totalIters: number): number[] {
  return Array.from({ length: totalIters }, (_, t) => scheduleBits(s, t, totalIters));
}

/**
 * Parses one schedule, `cyclic(3,8,periods=32)` or `const(8)`, with the precision-spec parser (same messages);
 * diagnostics' columns point into `text`.
 */
export function parseSchedule(text: string): ScheduleSpec {
  const prefix = 'schedule fwd=';
  if (text.includes('\n') || text.includes(';')) throw new PrecisionSpecError([{ line: 1, col: 1, message: 'expected one schedule: cyclic(lo,hi[,periods=N]) or const(bits)' }]);
  try {
    const s = parsePolicy(prefix + text).schedule?.fwd;
    if (!s) throw new PrecisionSpecError([{ line: 1, col: 1, message: 'expected cyclic(lo,hi[,periods=N]) or const(bits)' }]);
    return s;
  } catch (e) {
    if (!(e instanceof PrecisionSpecError)) throw e;
    // text after the schedule parses as another section of a precision spec: say so in a schedule's terms
    throw new PrecisionSpecError(e.errors.map((d: SpecDiagnostic) => ({
      ...d, col: Math.max(1, d.col - prefix.length),
      message: d.message.startsWith('unknown section') ? 'unexpected text after the schedule' : d.message,
    })));
  }
}
