/**
 * The precision policy (DESIGN.md "Precision policy"): a format and rounding per tensor role, an optional precision
 * schedule (CPT) and an optional saved-activation compression (DIVISION). Parsed from text with ./parser.ts;
 * printPolicy gives the canonical text, and parsePolicy(printPolicy(p)) equals p.
 *
 * Default rounding is `nearest`. QPyTorch's Python functions default to stochastic, but its bit-exact contract and
 * lpc's CLI default are nearest, and a spec reads more plainly when randomness is asked for explicitly
 * (`G=bfp<8>:stochastic`).
 */
import type { CstNode, IToken } from '../chevrotain.js';
import { buildFormat, Format, FormatArg, FORMAT_ALIASES, formatToString, MX_ELEMS, MX_INT_BITS, Rounding } from '../format.js';
import { parseSpecCst, SpecDiagnostic } from './parser.js';

export type { SpecDiagnostic } from './parser.js';

export const ROLES = ['W', 'A', 'E', 'G', 'M', 'V', 'ACC'] as const;
/**
 * W weights (forward), A activations, E errors (activation gradients), G weight gradients, M optimizer state (SGD's
 * momentum, Adam's first moment exp_avg), V Adam's second moment (exp_avg_sq), ACC weight accumulator.
 */
export type Role = (typeof ROLES)[number];

export interface RoleSpec { fmt: Format; rounding: Rounding }

/** Bit width over training steps: CPT's cosine cycle between lo and hi, or a constant. */
export type ScheduleSpec =
  | { kind: 'cyclic'; lo: number; hi: number; periods: number }
  | { kind: 'const'; bits: number };

/** How tensors saved for backward are stored. */
export type SaveSpec =
  | { kind: 'division'; block: number; bits: number }
  | { kind: 'format'; fmt: Format }
  | { kind: 'recompute' };

export interface PrecisionPolicy {
  roles: Partial<Record<Role, RoleSpec>>;
  /**
   * Named precision classes (`low=float<3,1>:stochastic`): the formats of the model's explicit `quantize(x, 'low')`
   * sites, and of roles that name them (`W=low`), in the order the spec defines them.
   */
  classes?: Record<string, RoleSpec>;
  /** The class each role names (`W=low`): its spec is `classes[name]`, copied into `roles`; printing keeps the name. */
  roleClasses?: Partial<Record<Role, string>>;
  /** Static loss scaling: backward starts from S·∂L and the optimizer's G quantizer receives g·(1/S) (QPyTorch's
   *  OptimLP grad_scaling = 1/S). */
  lossScale?: number;
  schedule?: { fwd?: ScheduleSpec; bwd?: ScheduleSpec };
  save?: SaveSpec;
}

/** Keys a class may not take: section keywords and format names. */
const RESERVED = new Set(['save', 'schedule', 'loss_scale', 'fwd', 'bwd', 'f32', 'fixed', 'bfp', 'float', 'minmax', 'mx', 'nearest', 'stochastic']);
/** Class names are lower-case identifiers (roles are upper case, so a mistyped role is not taken for a class). */
export const CLASS_NAME = /^[a-z][a-z0-9_]*$/;

/** CPT's paper setting: 32 cycles over training. */
export const DEFAULT_PERIODS = 32;
/** DIVISION's defaults: 8×8 low-frequency blocks, 2-bit high-frequency residual. */
export const DEFAULT_DIVISION = { block: 8, bits: 2 } as const;
export const SCHEDULE_BITS = [1, 32] as const;

export class PrecisionSpecError extends Error {
  constructor(public readonly errors: SpecDiagnostic[]) {
    super(errors.map((e) => `${e.line}:${e.col}: ${e.message}`).join('\n'));
    this.name = 'PrecisionSpecError';
  }

  /**
   * The diagnostics as `where:line:col: message` lines, the first of each line only: after a syntax error the
   * parser's recovery reports follow-on errors in the same line that mislead more than they help.
   */
  lines(where: string): string {
    const first = this.errors.filter((e, i) => this.errors.findIndex((f) => f.line === e.line) === i);
    return first.map((d) => `${where}:${d.line}:${d.col}: ${d.message}`).join('\n');
  }
}

type Children = Record<string, (CstNode | IToken)[]>;
const kids = (n: CstNode): Children => n.children as Children;
const tok = (n: CstNode, k: string, i = 0) => kids(n)[k]?.[i] as IToken | undefined;
const node = (n: CstNode, k: string, i = 0) => kids(n)[k]?.[i] as CstNode | undefined;
const nodes = (n: CstNode | undefined, k: string) => (n ? ((kids(n)[k] ?? []) as CstNode[]) : []);
/** True if chevrotain recovered inside this subtree (a syntax error was already reported there). */
function damaged(n: CstNode): boolean {
  if (n.recoveredNode) return true;
  return Object.values(n.children).some((v) =>
    (v as (CstNode | IToken)[]).some((c) => ('children' in c ? damaged(c) : !!c.isInsertedInRecovery || !Number.isFinite(c.startLine))));
}

interface Arg { a: FormatArg; t: IToken }

/** Parses a spec; returns the policy built from the valid parts and every diagnostic (syntax and meaning). */
export function parsePolicyDiagnostics(text: string): { policy: PrecisionPolicy; errors: SpecDiagnostic[] } {
  const { cst, errors: syntax } = parseSpecCst(text);
  const errors = [...syntax];
  const policy: PrecisionPolicy = { roles: {} };
  const err = (t: IToken, message: string) => errors.push({ line: t.startLine!, col: t.startColumn!, message });
  const seen = new Map<string, IToken>();
  const once = (key: string, t: IToken, what: string): boolean => {
    const prev = seen.get(key);
    if (prev) err(t, `duplicate ${what} (first set at ${prev.startLine}:${prev.startColumn})`);
    else seen.set(key, t);
    return !prev;
  };

  const argsOf = (v: CstNode, which: 'angle' | 'paren'): Arg[] | undefined => {
    const a = node(v, which);
    if (!a && !tok(v, which === 'angle' ? 'LAngle' : 'LParen')) return undefined;
    return nodes(a, 'arg').map((n) => {
      const int = tok(n, 'Int');
      const id = tok(n, 'Ident');
      const val = tok(n, 'value'), nval = tok(n, 'nameValue');
      if (int) return { a: { kind: 'int', value: Number(int.image) }, t: int };
      if (val) return { a: { kind: 'kv', key: id!.image, value: Number(val.image) }, t: id! };
      if (nval) return { a: { kind: 'kvname', key: id!.image, name: nval.image }, t: id! };
      return { a: { kind: 'ident', name: id!.image }, t: id! };
    });
  };

  const formatOf = (v0: CstNode): Format | undefined => {
    const v = node(v0, 'named');
    if (!v) { err(tok(v0, 'number')!, 'expected a format, e.g. fixed<8,6> or float<5,2>'); return undefined; }
    const name = tok(v, 'name')!;
    const paren = argsOf(v, 'paren');
    if (paren) {
      const r = buildFormat(name.image, undefined);
      if ('error' in r && r.error.startsWith('unknown format')) err(name, r.error);
      else err(tok(v, 'LParen')!, `format parameters go in <…>, e.g. fixed<8,6>`);
      return undefined;
    }
    const args = argsOf(v, 'angle');
    const r = buildFormat(name.image, args?.map((x) => x.a));
    if ('error' in r) { err(r.arg !== undefined && args?.[r.arg] ? args[r.arg].t : name, r.error); return undefined; }
    return r.fmt;
  };

  const bits = (t: IToken, v: number, what: string): boolean => {
    const [lo, hi] = SCHEDULE_BITS;
    if (Number.isInteger(v) && v >= lo && v <= hi) return true;
    err(t, `${what} must satisfy ${lo} <= ${what} <= ${hi} (got ${v})`);
    return false;
  };

  const scheduleOf = (v0: CstNode): ScheduleSpec | undefined => {
    const v = node(v0, 'named');
    if (!v) { err(tok(v0, 'number')!, 'expected cyclic(lo,hi[,periods=N]) or const(bits)'); return undefined; }
    const name = tok(v, 'name')!;
    const args = argsOf(v, 'paren');
    const usage = name.image === 'const' ? 'const(bits)' : 'cyclic(lo,hi[,periods=N])';
    if ((name.image !== 'cyclic' && name.image !== 'const') || !args) {
      err(name, `unknown schedule '${name.image}${args ? '(…)' : ''}'; expected cyclic(lo,hi[,periods=N]) or const(bits)`);
      return undefined;
    }
    const ints = args.filter((x) => x.a.kind === 'int');
    const bad = args.find((x, i) => (i < (name.image === 'const' ? 1 : 2) ? x.a.kind !== 'int' : x.a.kind !== 'kv' || x.a.key !== 'periods'));
    if (bad || ints.length !== (name.image === 'const' ? 1 : 2) || args.length > (name.image === 'const' ? 1 : 3)) {
      err(bad?.t ?? name, `expected ${usage}`);
      return undefined;
    }
    const iv = (i: number) => (args[i].a as { value: number }).value;
    if (name.image === 'const') return bits(args[0].t, iv(0), 'bits') ? { kind: 'const', bits: iv(0) } : undefined;
    if (!bits(args[0].t, iv(0), 'lo') || !bits(args[1].t, iv(1), 'hi')) return undefined;
    if (iv(0) > iv(1)) { err(args[0].t, `cyclic needs lo <= hi (got ${iv(0)} > ${iv(1)})`); return undefined; }
    const periods = args[2] ? iv(2) : DEFAULT_PERIODS;
    if (!Number.isInteger(periods) || periods < 1) { err(args[2].t, `periods must be >= 1 (got ${periods})`); return undefined; }
    return { kind: 'cyclic', lo: iv(0), hi: iv(1), periods };
  };

  const saveOf = (v0: CstNode): SaveSpec | undefined => {
    const v = node(v0, 'named');
    if (!v) { err(tok(v0, 'number')!, 'expected division(block=K,bits=B), recompute, or a format'); return undefined; }
    const name = tok(v, 'name')!;
    if (name.image === 'recompute' && !argsOf(v, 'paren') && !argsOf(v, 'angle')) return { kind: 'recompute' };
    if (name.image === 'division') {
      const args = argsOf(v, 'paren') ?? [];
      const out: Extract<SaveSpec, { kind: 'division' }> = { kind: 'division', ...DEFAULT_DIVISION };
      for (const { a, t } of args) {
        if (a.kind !== 'kv' || (a.key !== 'block' && a.key !== 'bits')) { err(t, 'expected division(block=K,bits=B)'); return undefined; }
        const [lo, hi] = a.key === 'block' ? [1, 64] : [1, 8];
        if (!Number.isInteger(a.value) || a.value < lo || a.value > hi) { err(t, `${a.key} must satisfy ${lo} <= ${a.key} <= ${hi} (got ${a.value})`); return undefined; }
        // DIVISION packs 8/Q codes per byte (its kernel asserts Q | 8); lpc packs 32/Q per u32 word.
        if (a.key === 'bits' && 8 % a.value !== 0) { err(t, `bits must be 1, 2, 4 or 8 (the codes are packed 8/bits per byte), got ${a.value}`); return undefined; }
        out[a.key] = a.value;
      }
      return out;
    }
    const r = buildFormat(name.image, undefined);
    if ('error' in r && r.error.startsWith('unknown format')) {
      err(name, `unknown save mode '${name.image}'; expected division(block=K,bits=B), recompute, or a format (fp16, bf16, fixed<…>, …)`);
      return undefined;
    }
    const fmt = formatOf(v0);
    if (fmt?.kind === 'mx' && fmt.sched) { err(name, `save=${formatToString(fmt)}: a saved tensor keeps one width (no ,${fmt.sched})`); return undefined; }
    return fmt && { kind: 'format', fmt };
  };

  // A role's value that is a bare lower-case name may be a class defined anywhere in the spec: resolved at the end.
  const refs: { role: Role; name: IToken; rounding?: IToken }[] = [];
  const classRef = (v: CstNode): IToken | undefined => {
    const nv = node(v, 'named');
    const name = nv && tok(nv, 'name');
    return name && !node(nv, 'angle') && !tok(nv, 'LAngle') && !tok(nv, 'LParen') && CLASS_NAME.test(name.image)
      && !FORMAT_ALIASES[name.image] && !RESERVED.has(name.image) ? name : undefined;
  };

  nodes(cst, 'segment').forEach((seg) => {
    const items = nodes(seg, 'item');
    const head = items[0] && !tok(items[0], 'Eq') && tok(items[0], 'key')?.image === 'schedule' ? items[0] : undefined;
    if (head && once('schedule', tok(head, 'key')!, 'schedule section')) policy.schedule = {};
    for (const it of items) {
      if (it === head || damaged(it)) continue;
      const key = tok(it, 'key')!;
      const k = key.image;
      const v = node(it, 'value');
      if (!v) {
        if (k === 'schedule') err(key, "'schedule' starts its own section: '… ; schedule fwd=cyclic(3,8) bwd=const(8)'");
        else if ((ROLES as readonly string[]).includes(k) || k === 'save') err(key, `expected '=' after '${k}'`);
        else err(key, `unknown section '${k}'; expected 'schedule', 'save=…' or ROLE=format with ROLE one of ${ROLES.join(', ')}`);
        continue;
      }
      const rt = tok(it, 'rounding');
      if (head) {
        if (rt) err(rt, 'a rounding applies to roles only');
        if (k !== 'fwd' && k !== 'bwd') { err(key, `unknown schedule target '${k}'; expected fwd or bwd`); continue; }
        const s = scheduleOf(v);
        if (s && once(`sched.${k}`, key, `schedule '${k}'`) && policy.schedule) policy.schedule[k] = s;
        continue;
      }
      if (k === 'save') {
        if (rt) err(rt, 'a rounding applies to roles only');
        const s = saveOf(v);
        if (s && once('save', key, "'save'")) policy.save = s;
        continue;
      }
      if (k === 'loss_scale') {
        if (rt) err(rt, 'a rounding applies to roles and classes only');
        const num = tok(v, 'number');
        const S = num ? Number(num.image) : NaN;
        if (!num || !Number.isFinite(S) || S <= 0) { err(num ?? key, 'loss_scale must be a positive number, e.g. loss_scale=1000'); continue; }
        if (once('loss_scale', key, "'loss_scale'")) policy.lossScale = S;
        continue;
      }
      const isRole = (ROLES as readonly string[]).includes(k);
      if (!isRole && !CLASS_NAME.test(k)) {
        err(key, `unknown role '${k}'; expected ${ROLES.join(', ')}, a lower-case class name (low=float<3,1>), save=… or loss_scale=…`);
        continue;
      }
      if (!isRole && (RESERVED.has(k) || FORMAT_ALIASES[k])) { err(key, `'${k}' cannot name a precision class: it is a keyword or a format name`); continue; }
      let rounding: Rounding = 'nearest';
      if (rt) {
        if (rt.image !== 'nearest' && rt.image !== 'stochastic') { err(rt, `unknown rounding '${rt.image}'; expected nearest or stochastic`); continue; }
        rounding = rt.image;
      }
      const ref = classRef(v);
      if (isRole && ref) {
        if (once(`role.${k}`, key, `role '${k}'`)) refs.push({ role: k as Role, name: ref, rounding: rt });
        continue;
      }
      if (!isRole && ref) { err(ref, `a class is defined by a format, not by another class ('${k}=${ref.image}')`); continue; }
      const fmt = formatOf(v);
      if (!fmt) continue;
      if (isRole) { if (once(`role.${k}`, key, `role '${k}'`)) policy.roles[k as Role] = { fmt, rounding }; }
      else if (once(`class.${k}`, key, `class '${k}'`)) (policy.classes ??= {})[k] = { fmt, rounding };
    }
  });
  for (const r of refs) {
    const cls = policy.classes?.[r.name.image];
    if (!cls) {
      const known = Object.keys(policy.classes ?? {});
      const asFormat = buildFormat(r.name.image, undefined);
      if (!known.length) err(r.name, 'error' in asFormat ? asFormat.error : `unknown format '${r.name.image}'`);
      else err(r.name, `unknown format or class '${r.name.image}'; classes defined here: ${known.join(', ')}`);
      continue;
    }
    if (r.rounding) { err(r.rounding, `'${r.role}=${r.name.image}' takes the class's rounding; set it on the class (${r.name.image}=…:${r.rounding.image})`); continue; }
    policy.roles[r.role] = { ...cls };
    (policy.roleClasses ??= {})[r.role] = r.name.image;
  }
  checkMxSchedule(policy, (k) => seen.get(k), err);
  errors.sort((a, b) => a.line - b.line || a.col - b.col);
  return { policy, errors };
}

/**
 * A schedule over MX (docs: README "CPT"): it varies the element width of MXINT roles, B in 2 … the written width
 * (the storage width), scale floor or ceil (even and rceil depend on the width). An FP element is not a one-parameter
 * family (E2M1 → E3M2 → E4M3 changes range and resolution together, and the scale's emax with them), so W/A under
 * `fwd` or E under `bwd` in an MX float format is refused.
 */
function checkMxSchedule(p: PrecisionPolicy, at: (key: string) => IToken | undefined, err: (t: IToken, m: string) => void): void {
  const drives = { fwd: ['W', 'A'], bwd: ['E'] } as const;
  for (const which of ['fwd', 'bwd'] as const) {
    const s = p.schedule?.[which], st = at(`sched.${which}`);
    if (!s || !st) continue;
    const [lo, hi] = s.kind === 'const' ? [s.bits, s.bits] : [s.lo, s.hi];
    for (const role of drives[which]) {
      const f = p.roles[role]?.fmt, rt = at(`role.${role}`);
      if (f?.kind !== 'mx' || !rt) continue;
      const written = `${role}=${formatToString(f)}`;
      if (MX_ELEMS[f.elem].ebits !== 0) {
        err(rt, `'schedule ${which}=…' varies MXINT element widths; ${written} has floating-point elements, which have no width to vary (use mx<int8>)`);
        continue;
      }
      const B = MX_ELEMS[f.elem].bits;
      if (lo < MX_INT_BITS[0] || hi > B)
        err(st, `'${which}=${scheduleToString(s)}' sets ${written}'s element width: it must satisfy ${MX_INT_BITS[0]} <= bits <= ${B} (got ${lo < MX_INT_BITS[0] ? lo : hi})`);
      else if (f.scale === 'even' || f.scale === 'rceil')
        err(rt, `${written}: a scheduled MXINT width takes scale=floor or ceil (scale=${f.scale} depends on the element width)`);
    }
  }
}

/** Parses a precision spec; throws PrecisionSpecError listing every problem as `line:col: message`. */
export function parsePolicy(text: string): PrecisionPolicy {
  const { policy, errors } = parsePolicyDiagnostics(text);
  if (errors.length) throw new PrecisionSpecError(errors);
  return policy;
}

function scheduleToString(s: ScheduleSpec): string {
  return s.kind === 'const' ? `const(${s.bits})` : `cyclic(${s.lo},${s.hi},periods=${s.periods})`;
}

/** Canonical text: classes in their order, then roles in W A E G M ACC order (a role naming a class prints the name),
 *  loss_scale, `:nearest` omitted, sections separated by ` ; `. */
export function printPolicy(p: PrecisionPolicy): string {
  const parts: string[] = [];
  const spec = (s: RoleSpec) => `${formatToString(s.fmt)}${s.rounding === 'stochastic' ? ':stochastic' : ''}`;
  parts.push([
    ...Object.entries(p.classes ?? {}).map(([k, s]) => `${k}=${spec(s)}`),
    ...ROLES.filter((r) => p.roles[r]).map((r) => `${r}=${p.roleClasses?.[r] ?? spec(p.roles[r]!)}`),
    ...(p.lossScale !== undefined ? [`loss_scale=${p.lossScale}`] : []),
  ].join(' '));
  if (p.schedule) {
    const s = ['schedule'];
    if (p.schedule.fwd) s.push(`fwd=${scheduleToString(p.schedule.fwd)}`);
    if (p.schedule.bwd) s.push(`bwd=${scheduleToString(p.schedule.bwd)}`);
    parts.push(s.join(' '));
  }
  if (p.save) {
    const s = p.save;
    parts.push(`save=${s.kind === 'division' ? `division(block=${s.block},bits=${s.bits})` : s.kind === 'recompute' ? 'recompute' : formatToString(s.fmt)}`);
  }
  return parts.join(' ; ').trim();
}
