/**
 * Learning-rate schedules for `lpc run --lr-schedule` (the artifact's `lr` is a runtime scalar, so none recompiles).
 *
 * Every schedule is a function of the 0-based epoch index e, constant within an epoch, as PyTorch's epoch-stepped
 * schedulers (`scheduler.step()` once per epoch) give it:
 *   const                              lr(e) = base
 *   step(milestones=[m1,m2],gamma=g)   lr(e) = base · g^#{mi ≤ e}                      (MultiStepLR)
 *   cosine(t_max=T,eta_min=m)          lr(e) = m + (base − m)(1 + cos(π·min(e,T)/T))/2  (CosineAnnealingLR; T = epochs)
 *   cosine(…,per=step)                 the same over the global step s instead of e (CosineAnnealingLR stepped every
 *                                      iteration; T = all steps of the run): anneals within an epoch, for short runs
 *   swalp(start=S,swa_lr=L)            SWALP's schedule (stevenygd/SWALP train.py): t = e/S,
 *                                      base for t ≤ 0.5, linear to 0.01·base at t = 0.9, 0.01·base for t < 1, L for t ≥ 1
 * `--swa start=S,lr=L` makes lr(e) = L for e ≥ S (after S epochs) under any schedule (`swalp` already does).
 * `--warmup N` multiplies the lr of global step s (0-based) by min(1, (s+1)/N): linear warm-up over the first N
 * optimizer steps (per iteration, as in Goyal et al.); `--warmup Nep` means N epochs' worth of steps.
 */
export type LrSchedule =
  | { kind: 'const' }
  | { kind: 'step'; milestones: number[]; gamma: number }
  | { kind: 'cosine'; tMax?: number; etaMin: number; per: 'epoch' | 'step' }
  | { kind: 'swalp'; start?: number; swaLr?: number };

export interface LrConfig {
  base: number;
  schedule: LrSchedule;
  /** Total epochs of the run (cosine's default T). */
  epochs: number;
  /** Optimizer steps per epoch (per-step cosine's default T is epochs × this). */
  stepsPerEpoch?: number;
  /** Warm-up steps (0: none). */
  warmupSteps?: number;
  /** From `--swa`: lr = swaLr for 0-based epochs ≥ start. */
  swa?: { start: number; lr?: number };
}

export class LrError extends Error {}

function num(key: string, v: string, what: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new LrError(`${what}: ${key} must be a number, got '${v}'`);
  return n;
}

/** Splits `a=1,b=[2,3]` at the commas outside brackets into key/value pairs. */
function kvs(body: string, what: string): Map<string, string> {
  const parts: string[] = [];
  let depth = 0, cur = '';
  for (const ch of body) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  if (cur.trim()) parts.push(cur);
  const out = new Map<string, string>();
  for (const p of parts) {
    const m = /^\s*([a-z_]+)\s*=\s*(.+?)\s*$/.exec(p);
    if (!m) throw new LrError(`${what}: bad argument '${p.trim()}'; expected key=value`);
    if (out.has(m[1])) throw new LrError(`${what}: '${m[1]}' given twice`);
    out.set(m[1], m[2]);
  }
  return out;
}

function only(args: Map<string, string>, allowed: string[], what: string): void {
  for (const k of args.keys())
    if (!allowed.includes(k)) throw new LrError(`${what}: unknown argument '${k}'${allowed.length ? `; expected ${allowed.join(', ')}` : ' (takes none)'}`);
}

/** Parses a `--lr-schedule` spec. */
export function parseLrSchedule(text: string): LrSchedule {
  const what = '--lr-schedule';
  const m = /^\s*([a-z]+)\s*(?:\((.*)\))?\s*$/s.exec(text);
  if (!m) throw new LrError(`${what}: expected const, step(milestones=[…],gamma=…), cosine(t_max=…,eta_min=…[,per=step]) or swalp(start=…,swa_lr=…), got '${text}'`);
  const args = kvs(m[2] ?? '', what);
  switch (m[1]) {
    case 'const':
      only(args, [], `${what} const`);
      return { kind: 'const' };
    case 'step': {
      only(args, ['milestones', 'gamma'], `${what} step`);
      const ms = args.get('milestones');
      if (!ms) throw new LrError(`${what} step: needs milestones=E or milestones=[E1,E2,…] (0-based epochs)`);
      const list = /^\[(.*)\]$/.exec(ms)?.[1] ?? ms;
      const milestones = list.split(',').map((s) => num('milestones', s, `${what} step`));
      for (let i = 0; i < milestones.length; i++)
        if (!Number.isInteger(milestones[i]) || milestones[i] < 1 || (i > 0 && milestones[i] <= milestones[i - 1]))
          throw new LrError(`${what} step: milestones must be increasing integers ≥ 1, got [${milestones.join(',')}]`);
      const gamma = args.has('gamma') ? num('gamma', args.get('gamma')!, `${what} step`) : 0.1;
      if (!(gamma > 0)) throw new LrError(`${what} step: gamma must be > 0, got ${gamma}`);
      return { kind: 'step', milestones, gamma };
    }
    case 'cosine': {
      only(args, ['t_max', 'eta_min', 'per'], `${what} cosine`);
      const per = args.get('per') ?? 'epoch';
      if (per !== 'epoch' && per !== 'step') throw new LrError(`${what} cosine: per must be epoch or step, got '${per}'`);
      const tMax = args.has('t_max') ? num('t_max', args.get('t_max')!, `${what} cosine`) : undefined;
      if (tMax !== undefined && (!Number.isInteger(tMax) || tMax < 1)) throw new LrError(`${what} cosine: t_max must be an integer ≥ 1, got ${tMax}`);
      const etaMin = args.has('eta_min') ? num('eta_min', args.get('eta_min')!, `${what} cosine`) : 0;
      if (etaMin < 0) throw new LrError(`${what} cosine: eta_min must be ≥ 0, got ${etaMin}`);
      return { kind: 'cosine', tMax, etaMin, per };
    }
    case 'swalp': {
      only(args, ['start', 'swa_lr'], `${what} swalp`);
      const start = args.has('start') ? num('start', args.get('start')!, `${what} swalp`) : undefined;
      if (start !== undefined && (!Number.isInteger(start) || start < 1)) throw new LrError(`${what} swalp: start must be an integer ≥ 1, got ${start}`);
      const swaLr = args.has('swa_lr') ? num('swa_lr', args.get('swa_lr')!, `${what} swalp`) : undefined;
      if (swaLr !== undefined && !(swaLr > 0)) throw new LrError(`${what} swalp: swa_lr must be > 0, got ${swaLr}`);
      return { kind: 'swalp', start, swaLr };
    }
    default:
      throw new LrError(`${what}: unknown schedule '${m[1]}'; expected const, step, cosine or swalp`);
  }
}

/** Parses `--warmup N` (steps) or `--warmup Nep` (epochs) into steps. */
export function parseWarmup(text: string, stepsPerEpoch: number): number {
  const m = /^\s*(\d+)\s*(ep)?\s*$/.exec(text);
  if (!m) throw new LrError(`--warmup: expected N (optimizer steps) or Nep (epochs), got '${text}'`);
  return Number(m[1]) * (m[2] ? stepsPerEpoch : 1);
}

/** Parses `--swa start=E[,lr=LR]`. */
export function parseSwa(text: string): { start: number; lr?: number } {
  const what = '--swa';
  const args = kvs(text, what);
  only(args, ['start', 'lr'], what);
  if (!args.has('start')) throw new LrError(`${what}: needs start=EPOCH (average after every epoch ≥ EPOCH, 1-based)`);
  const start = num('start', args.get('start')!, what);
  if (!Number.isInteger(start) || start < 1) throw new LrError(`${what}: start must be an integer ≥ 1, got ${start}`);
  const lr = args.has('lr') ? num('lr', args.get('lr')!, what) : undefined;
  if (lr !== undefined && !(lr > 0)) throw new LrError(`${what}: lr must be > 0, got ${lr}`);
  return { start, lr };
}

/** Fills swalp's start/swa_lr from `--swa` and checks they agree; returns the completed config. */
export function resolveLr(c: LrConfig): LrConfig {
  const s = c.schedule;
  if (s.kind === 'cosine' && s.per === 'step' && s.tMax === undefined && !c.stepsPerEpoch)
    throw new LrError('--lr-schedule cosine(per=step) needs t_max=STEPS when the steps per epoch are unknown');
  if (s.kind !== 'swalp') return c;
  const start = s.start ?? c.swa?.start, swaLr = s.swaLr ?? c.swa?.lr;
  if (start === undefined || swaLr === undefined)
    throw new LrError('--lr-schedule swalp needs start and swa_lr: swalp(start=E,swa_lr=LR) or --swa start=E,lr=LR');
  if (c.swa && (c.swa.start !== start || (c.swa.lr !== undefined && c.swa.lr !== swaLr)))
    throw new LrError(`--lr-schedule swalp(start=${start},swa_lr=${swaLr}) disagrees with --swa start=${c.swa.start}${c.swa.lr !== undefined ? `,lr=${c.swa.lr}` : ''}`);
  return { ...c, schedule: { kind: 'swalp', start, swaLr } };
}

const cosine = (base: number, etaMin: number, t: number, T: number) => etaMin + (base - etaMin) * (1 + Math.cos(Math.PI * Math.min(t, T) / T)) / 2;

/** The schedule's lr for 0-based epoch `e` (and 0-based global step `step`, which only per-step schedules read), before warm-up. */
export function epochLr(c: LrConfig, e: number, step = 0): number {
  const s = c.schedule, base = c.base;
  // swalp computes its own t ≥ 1 branch as base·(swa_lr/base), exactly as SWALP's train.py does.
  if (s.kind !== 'swalp' && c.swa?.lr !== undefined && e >= c.swa.start) return c.swa.lr;
  switch (s.kind) {
    case 'const': return base;
    case 'step': return base * Math.pow(s.gamma, s.milestones.filter((m) => m <= e).length);
    case 'cosine':
      return s.per === 'step' ? cosine(base, s.etaMin, step, s.tMax ?? c.epochs * c.stepsPerEpoch!) : cosine(base, s.etaMin, e, s.tMax ?? c.epochs);
    case 'swalp': {
      const t = e / s.start!;
      const factor = t <= 0.5 ? 1 : t <= 0.9 ? 1 - (1 - 0.01) * (t - 0.5) / 0.4 : t < 1 ? 0.01 : s.swaLr! / base;
      return base * factor;
    }
  }
}

/** The lr of global step `step` (0-based) in 0-based epoch `e`. */
export function lrAt(c: LrConfig, e: number, step: number): number {
  const lr = epochLr(c, e, step), w = c.warmupSteps ?? 0;
  return w > 0 && step < w ? lr * (step + 1) / w : lr;
}

/** A canonical one-line description (checkpoint sidecars, logs). */
export function describeLr(c: LrConfig): string {
  const s = c.schedule;
  const body = s.kind === 'const' ? 'const'
    : s.kind === 'step' ? `step(milestones=[${s.milestones.join(',')}],gamma=${s.gamma})`
    : s.kind === 'cosine' ? `cosine(t_max=${s.tMax ?? (s.per === 'step' ? c.epochs * c.stepsPerEpoch! : c.epochs)},eta_min=${s.etaMin}${s.per === 'step' ? ',per=step' : ''})`
    : `swalp(start=${s.start},swa_lr=${s.swaLr})`;
  return `base=${c.base} ${body}${c.warmupSteps ? ` warmup=${c.warmupSteps}` : ''}${c.swa?.lr !== undefined && s.kind !== 'swalp' ? ` swa_lr=${c.swa.lr}@${c.swa.start}` : ''}`;
}
