/**
 * Shared settings and generators of the fuzz tests (test/unit/fuzz-*.test.ts). `npm test` runs RUNS inputs per
 * property with a fixed seed; `npm run fuzz` sets LPC_FUZZ_RUNS and LPC_FUZZ_SEED (printed, so a failure can be rerun:
 * `LPC_FUZZ_SEED=S LPC_FUZZ_RUNS=N NODE_OPTIONS=--experimental-vm-modules npx jest --runInBand test/unit/fuzz-`).
 */
import fc from 'fast-check';

export const RUNS = Number(process.env.LPC_FUZZ_RUNS ?? 200);
export const SEED = process.env.LPC_FUZZ_SEED ? Number(process.env.LPC_FUZZ_SEED) : 20240601;
if (process.env.LPC_FUZZ_SEED || process.env.LPC_FUZZ_RUNS) process.stderr.write(`fuzz: seed ${SEED}, ${RUNS} runs per property\n`);

/** fast-check's parameters: the bounded run count and the seed (`runs` scales RUNS for slow properties). */
export const params = (scale = 1): fc.Parameters<unknown> => ({ numRuns: Math.max(1, Math.round(RUNS * scale)), seed: SEED, endOnFailure: true });

/** Number spellings a near-valid input swaps in for a number. */
export const ODD_NUMBERS = ['0', '-0', '-1', '1.5', '1e309', '-1e309', '1e-400', 'NaN', 'Infinity', '-Infinity', '99999999999999999999',
  '9007199254740993', '4294967296', '0x10', '1_000', '', 'abc', '"7"', 'null', 'true', '[]', '{}', '٣', '1e', '.', '+1'];

const CHARS = ['<', '>', ',', '=', ';', ':', '(', ')', '{', '}', '[', ']', '"', '\\', '\n', '\r', ' ', '\t', '#', '%', '@', '.', '-',
  '+', '0', '1', '9', 'a', 'z', 'W', '\u0000', '\u2028', '名', '\uD800', 'e', 'x', '|', '/'];

type Mut = { k: 'del'; at: number; n: number } | { k: 'ins'; at: number; s: string } | { k: 'rep'; at: number; s: string }
  | { k: 'cut'; at: number } | { k: 'num'; which: number; s: string } | { k: 'dup'; at: number; n: number };

const piece = fc.oneof(fc.constantFrom(...CHARS), fc.string({ maxLength: 4 }), fc.constantFrom(...ODD_NUMBERS));
const mutation: fc.Arbitrary<Mut> = fc.oneof(
  fc.record({ k: fc.constant('del' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ k: fc.constant('ins' as const), at: fc.nat(), s: piece }),
  fc.record({ k: fc.constant('rep' as const), at: fc.nat(), s: piece }),
  fc.record({ k: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ k: fc.constant('num' as const), which: fc.nat(), s: fc.constantFrom(...ODD_NUMBERS) }),
  fc.record({ k: fc.constant('num' as const), which: fc.nat(), s: fc.integer().map(String) }),
  fc.record({ k: fc.constant('dup' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 12 }) }),
);

function apply(text: string, m: Mut): string {
  const len = text.length;
  switch (m.k) {
    case 'del': { const at = m.at % (len + 1); return text.slice(0, at) + text.slice(at + m.n); }
    case 'ins': { const at = m.at % (len + 1); return text.slice(0, at) + m.s + text.slice(at); }
    case 'rep': { const at = m.at % (len + 1); return text.slice(0, at) + m.s + text.slice(at + 1); }
    case 'cut': return text.slice(0, m.at % (len + 1));
    case 'dup': { const at = m.at % (len + 1); return text.slice(0, at) + text.slice(at, at + m.n) + text.slice(at); }
    case 'num': {
      const nums = [...text.matchAll(/-?\d+(\.\d+)?(e-?\d+)?/g)];
      if (!nums.length) return text + m.s;
      const x = nums[m.which % nums.length];
      return text.slice(0, x.index!) + m.s + text.slice(x.index! + x[0].length);
    }
  }
}

/** Near-valid texts: one of `valid`, edited 1–4 times (delete, insert, replace, truncate, duplicate, swap a number). */
export function mutated(valid: string[], maxEdits = 4): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom(...valid), fc.array(mutation, { minLength: 1, maxLength: maxEdits })).map(([t, ms]) => ms.reduce(apply, t));
}

/** Random text: unicode, or from the characters parsers care about. */
export const randomText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.fullUnicodeString({ maxLength: 30 }),
  fc.array(fc.oneof(fc.constantFrom(...CHARS), fc.constantFrom(...ODD_NUMBERS)), { maxLength: 30 }).map((a) => a.join('')),
);

/** Odd JSON values to put where a field should be. */
export const oddJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, -0, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, '', '\n', 'x\ny', [], {}, [1, 2], { a: 1 }, 'NaN'),
  fc.jsonValue({ maxDepth: 2 }),
);

/**
 * Calls `f`; a value passes; an error must be an instance of one of `types` (never TypeError, RangeError…) and its
 * message one line (or, where `lineOk` is given, every line accepted by it) that `place` accepts.
 */
export function returnsOrOwnError(f: () => unknown, types: (abstract new (...a: any[]) => Error)[], place: (line: string) => boolean,
  lineOk?: (line: string) => boolean): void {
  let e: unknown;
  try { f(); return; } catch (x) { e = x; }
  if (!types.some((t) => e instanceof t)) throw new Error(`unexpected ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
  const msg = (e as Error).message;
  const lines = msg.split('\n');
  if (!lineOk && lines.length !== 1) throw new Error(`message is not one line: ${JSON.stringify(msg)}`);
  if (lineOk) for (const l of lines) if (!lineOk(l)) throw new Error(`message line ${JSON.stringify(l)} lacks its place: ${JSON.stringify(msg)}`);
  if (!place(lines[0])) throw new Error(`message names no place: ${JSON.stringify(msg)}`);
}
