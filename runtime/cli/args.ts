/** A strict little argv parser: every flag is declared; unknown flags and missing values are errors. */
export class UsageError extends Error {
  constructor(message: string) { super(message); this.name = 'UsageError'; }
}

export interface FlagSpec { name: string; alias?: string; value?: string; help: string; repeat?: boolean }

export interface Parsed { positional: string[]; flags: Map<string, string[]> }

export function parseArgs(cmd: string, argv: string[], specs: FlagSpec[]): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) { byName.set(`--${s.name}`, s); if (s.alias) byName.set(s.alias, s); }
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-') { positional.push(a); continue; }
    const [key, inline] = a.includes('=') && a.startsWith('--') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const spec = byName.get(key);
    if (!spec) throw new UsageError(`unknown option '${key}' for 'lpc ${cmd}'; see 'lpc ${cmd} --help'`);
    let v = 'true';
    if (spec.value) {
      v = inline ?? argv[++i];
      // `-o --batch 8` would otherwise write an artifact named '--batch'; no value of ours starts with '--'
      if (v === undefined || (inline === undefined && v.startsWith('--'))) throw new UsageError(`option --${spec.name} needs a value (${spec.value})`);
    } else if (inline !== undefined) throw new UsageError(`option --${spec.name} takes no value`);
    const prev = flags.get(spec.name);
    if (prev && !spec.repeat) throw new UsageError(`option --${spec.name} given twice`);
    flags.set(spec.name, [...(prev ?? []), v]);
  }
  return { positional, flags };
}

/** `f()`, its errors turned into usage errors (exit 2): for parsers of flag values that live outside the CLI. */
export function asUsage<T>(f: () => T): T {
  try { return f(); } catch (e) { throw e instanceof Error && !(e instanceof UsageError) ? new UsageError(e.message) : e; }
}

export function flag(p: Parsed, name: string): string | undefined { return p.flags.get(name)?.[0]; }

/** An integer written as an optional '-' and decimal digits, else NaN: Number() would also take '1e3', '0x10', ' 7'. */
export const decimalInt = (v: string): number => (/^-?\d+$/.test(v) ? Number(v) : NaN);

export function intFlag(p: Parsed, name: string, def: number, min = 1): number {
  const v = flag(p, name);
  if (v === undefined) return def;
  const n = decimalInt(v);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

export function helpText(usage: string, summary: string, specs: FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = `${s.alias ? `${s.alias}, ` : ''}--${s.name}${s.value ? ` ${s.value}` : ''}`;
    return `  ${left.padEnd(34)} ${s.help}`;
  });
  return `usage: ${usage}\n\n${summary}\n\noptions:\n${rows.join('\n')}\n  ${'-h, --help'.padEnd(34)} show this help\n`;
}
