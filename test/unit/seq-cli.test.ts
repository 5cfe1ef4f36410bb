/**
 * Sequence models through the CLI (bin/lpc.js, needs `npm run build`): bad input is refused with one line naming the
 * place — attention heads that do not divide the width, an embedding smaller than the data's vocabulary, a sequence
 * longer than the model's position embedding, a token model given images, an unknown text spec — and the sotu data's
 * fixed split and vocabularies.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadDataset, parseDataSpec } from '../../runtime/data/index.js';
import { charId, charTokens, wordVocabulary, words, windows } from '../../runtime/data/sotu.js';
import { epochBatches, evalBatches } from '../../runtime/data/batches.js';

const lpc = (args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
  return { code: r.status, err: r.stderr.split('\n').filter((l) => l && !l.startsWith('Warning: maxDynamic')) };
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-seq-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('heads that do not divide the width: one line at the selfAttention call', () => {
  const r = lpc(['compile', 'test/fixtures/bad_heads.ts', '-o', path.join(tmp, 'bh.lpc')]);
  expect(r.code).toBe(1);
  expect(r.err).toEqual(['lpc: test/fixtures/bad_heads.ts:6:17: selfAttention: 3 heads do not divide the width 16']);
});

test('token ids beyond the embedding, images for a token model, an unknown text spec: one line each, before training', () => {
  const art = path.join(tmp, 'sv.lpc');
  expect(lpc(['compile', 'test/fixtures/small_vocab_lm.ts', '-o', art, '--batch', '4']).code).toBe(0);
  const run = (data: string) => lpc(['run', art, '--data', data, '--backend', 'cpu', '--max-steps', '1']);
  expect(run('sotu:chars')).toEqual({ code: 2, err: ['lpc: test/fixtures/small_vocab_lm.ts:4:53: the embedding has 50 rows but sotu:chars has token ids 0..96; use a vocabulary of 97 (--classes 97)'] });
  expect(run('mnist')).toEqual({ code: 2, err: ["lpc: model 'small_vocab_lm' takes token ids but mnist holds images"] });
  expect(run('sotu:bytes')).toEqual({ code: 2, err: ["lpc: 'sotu:bytes': expected sotu:chars, sotu:words or sotu:words=N"] });
});

test('a sequence longer than the model\'s (more positions than its position embedding has rows): one line at the embedding', () => {
  const art = path.join(tmp, 'fp.lpc');
  expect(lpc(['compile', 'test/fixtures/fixed_positions_lm.ts', '-o', art, '--seq-len', '16', '--batch', '2']).code).toBe(0);
  expect(lpc(['compile', 'test/fixtures/fixed_positions_lm.ts', '-o', art, '--seq-len', '20', '--batch', '2'])).toEqual({ code: 1, err: [
    'lpc: test/fixtures/fixed_positions_lm.ts:7:42: embedding: a sequence of 20 tokens is longer than this position embedding\'s 16 rows ' +
    '(positions 0..19); compile with --seq-len 16 or less, or give it as many rows as the sequence (embedding(positions(x), x.shape[1], dim))'] });
});

test('lpc run --test-limit N evaluates the first N validation windows (the figures differ with N; N ≥ 1)', () => {
  const art = path.join(tmp, 'tl.lpc');
  expect(lpc(['compile', 'test/fixtures/tiny_lm.ts', '-o', art, '--seq-len', '8', '--batch', '2']).code).toBe(0);
  const loss = (n: string) => {
    const metrics = path.join(tmp, `tl-${n}.jsonl`);
    expect(lpc(['run', art, '--data', 'sotu:chars', '--backend', 'cpu', '--epochs', '1', '--max-steps', '1', '--test-limit', n, '--metrics', metrics]).code).toBe(0);
    return JSON.parse(fs.readFileSync(metrics, 'utf8').trim().split('\n').at(-1)!).test_loss as number;
  };
  const [a, b] = [loss('2'), loss('6')];
  expect(Number.isFinite(a) && Number.isFinite(b) && a !== b).toBe(true);
  expect(lpc(['run', art, '--data', 'sotu:chars', '--test-limit', '0'])).toEqual({ code: 2, err: [expect.stringMatching(/^lpc: --test-limit .*1/)] });
});

test('--seq-len T is the model\'s --input T (refused together with --input)', () => {
  const art = path.join(tmp, 'sl.lpc');
  expect(lpc(['compile', 'test/fixtures/tiny_lm.ts', '-o', art, '--seq-len', '24', '--batch', '2']).code).toBe(0);
  expect(fs.readFileSync(path.join(art, 'graph.lpir'), 'utf8')).toContain('%0 = input {dtype="i32", kind="data", name="x", shape=[2,24]}');
  expect(lpc(['compile', 'test/fixtures/tiny_lm.ts', '-o', art, '--seq-len', '24', '--input', '3'])).toEqual({ code: 2, err: ['lpc: --seq-len T is --input T: give one of them'] });
});

describe('sotu data', () => {
  test('the split: the latest 10% of the addresses (24 of 233, 1998 on) validate; windows of T with next-token targets', () => {
    const s = loadDataset('sotu:chars', { sampleShape: [64] });
    expect(parseDataSpec('sotu:words=500')).toEqual({ name: 'sotu', dir: 'words=500' });
    expect([s.train.classes, s.train.tokens, s.train.shape]).toEqual([97, true, [64, 1, 1]]);
    // the first training window starts the 1790 address; the first validation window the 1998 one
    const text = (d: typeof s.train, k: number) => String.fromCharCode(...Array.from(d.images.subarray(k * 64, k * 64 + 24), (i) => i - 2 + 32));
    expect(text(s.train, 0)).toBe('Fellow-Citizens of the S');
    expect(text(s.test, 0)).toBe('The President. Mr. Speak');
    expect(s.test.n).toBeLessThan(s.train.n / 5);
    for (const d of [s.train, s.test]) {
      expect(Array.from(d.labels.subarray(0, 63))).toEqual(Array.from(d.images.subarray(1, 64)));
      expect(Math.max(...d.labels.subarray(0, 10000))).toBeLessThan(97);
    }
  });

  test('sotu:words=500: 500 classes, every id below, <unk> a minority of the tokens', () => {
    const s = loadDataset('sotu:words=500', { sampleShape: [32] });
    for (const d of [s.train, s.test]) {
      expect([d.classes, d.tokens]).toEqual([500, true]);
      let unk = 0, max = 0;
      for (const v of d.labels) { if (v === 0) unk++; max = Math.max(max, v); }
      expect(max).toBe(499);
      expect(unk / d.labels.length).toBeGreaterThan(0.05);
      expect(unk / d.labels.length).toBeLessThan(0.5); // 499 words cover about two thirds of the tokens
    }
  });

  test('char ids: printable ASCII, newline, typographic quotes and dashes folded, the rest <unk>', () => {
    expect(Array.from(charTokens('A a\n’—°'))).toEqual([2 + 65 - 32, 2, 2 + 97 - 32, 1, charId("'"), charId('-'), 0]);
  });

  test('words: top-N by training frequency (ties in code-point order), <unk> = 0; batches of ids with T targets each', () => {
    expect(words("The nation's 2021 budget, isn't it?")).toEqual(['the', "nation's", '2021', 'budget', ',', "isn't", 'it', '?']);
    const v = wordVocabulary(['b', 'a', 'c', 'a', 'b', 'd'], 3);
    expect([...v]).toEqual([['a', 1], ['b', 2]]);
    const d = windows('t', Int32Array.from([5, 6, 7, 8, 9, 10, 11]), 3, 12);
    expect([d.n, Array.from(d.images), Array.from(d.labels)]).toEqual([2, [5, 6, 7, 8, 9, 10], [6, 7, 8, 9, 10, 11]]);
    const b = epochBatches(d, 2, 0, 1).get(0);
    expect(b.x).toBeInstanceOf(Int32Array);
    expect([b.x.length, b.y.length]).toEqual([6, 6]);
    const e = evalBatches(d, 4).get(0);
    expect([e.valid, Array.from(e.y.subarray(6))]).toEqual([2, [-1, -1, -1, -1, -1, -1]]);
  });
});
