/** Data loaders: the fixed MNIST/Fashion-MNIST splits, the CIFAR binary reader, --data specs, batching. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadMnist, MNIST_MEAN, MNIST_STD } from '../../runtime/data/mnist.js';
import { loadFashionMnist } from '../../runtime/data/fashion.js';
import { CIFAR_MEAN, CIFAR_STD, loadCifar10, loadCifar100 } from '../../runtime/data/cifar.js';
import { loadSynthetic } from '../../runtime/data/synthetic.js';
import { loadDataset } from '../../runtime/data/index.js';
import { epochBatches, evalBatches } from '../../runtime/data/batches.js';
import { mixSeed, permutation, splitmix32 } from '../../runtime/data/random.js';
import type { Dataset } from '../../runtime/data/types.js';

function stats(a: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0, s2 = 0, min = Infinity, max = -Infinity;
  for (const v of a) { s += v; s2 += v * v; if (v < min) min = v; if (v > max) max = v; }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), min, max };
}
/** Byte equality of two typed arrays (jest's toEqual walks millions of elements slowly). */
const same = (a: ArrayBufferView, b: ArrayBufferView) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const counts = (d: Dataset) => { const c = new Array(d.classes).fill(0); for (const l of d.labels) c[l]++; return c; };

describe('random', () => {
  test('splitmix32 and permutation are deterministic and pinned', () => {
    const r = splitmix32(mixSeed(0));
    const first = [r(), r(), r()];
    const r2 = splitmix32(mixSeed(0));
    expect([r2(), r2(), r2()]).toEqual(first);
    expect(first).toEqual([657185748, 1520699165, 1365194790]);
    expect(Array.from(permutation(10, splitmix32(mixSeed(7))))).toEqual([0, 8, 9, 5, 2, 6, 1, 7, 4, 3]);
    const p = permutation(1000, splitmix32(mixSeed(7)));
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(mixSeed(1, 2)).not.toBe(mixSeed(2, 1));
  });
});

describe('mnist', () => {
  const { train, test: testSet } = loadMnist();

  test('fixed 8000/2000 split of the 10,000 digits, normalised', () => {
    expect([train.n, testSet.n]).toEqual([8000, 2000]);
    expect(train.shape).toEqual([1, 28, 28]);
    expect(train.images.length).toBe(8000 * 784);
    expect(testSet.labels.length).toBe(2000);
    // the package's per-class counts (it is MNIST's test set): the split loses and repeats nothing
    const all = counts(train).map((c, i) => c + counts(testSet)[i]);
    expect(all).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    for (const c of counts(train)) expect(c / 8000).toBeGreaterThan(0.07);
    const s = stats(train.images);
    expect(s.min).toBeCloseTo((0 - MNIST_MEAN) / MNIST_STD, 5);
    expect(s.max).toBeCloseTo((1 - MNIST_MEAN) / MNIST_STD, 5);
    expect(Math.abs(s.mean)).toBeLessThan(0.02);
    expect(Math.abs(s.std - 1)).toBeLessThan(0.02);
  });

  test('the split never changes (pinned) and is deterministic', () => {
    // pinned: changing the PRNG, the file order or the split silently would change every published number
    expect(Array.from(train.labels.slice(0, 12))).toEqual([2, 3, 2, 6, 1, 5, 9, 1, 3, 6, 1, 3]);
    expect(Array.from(testSet.labels.slice(0, 12))).toEqual([0, 3, 7, 7, 0, 4, 1, 5, 1, 6, 6, 9]);
    const again = loadMnist();
    expect(same(again.train.images, train.images)).toBe(true);
    expect(same(again.test.labels, testSet.labels)).toBe(true);
    expect(same(loadMnist({ seed: 1 }).train.labels, train.labels)).toBe(false);
  });
});

describe('fashion-mnist', () => {
  test('fixed 60000/10000 split, normalised with the training split\'s own mean/std', () => {
    const { train, test: testSet } = loadFashionMnist();
    expect([train.n, testSet.n]).toEqual([60000, 10000]);
    expect(counts(train).map((c, i) => c + counts(testSet)[i])).toEqual(new Array(10).fill(7000));
    const s = stats(train.images);
    expect(Math.abs(s.mean)).toBeLessThan(1e-3); // FASHION_MEAN/STD are this split's statistics to 4 decimals
    expect(Math.abs(s.std - 1)).toBeLessThan(1e-3);
    expect(Array.from(train.labels.slice(0, 12))).toEqual([2, 8, 6, 3, 6, 3, 3, 7, 1, 8, 0, 5]);
  });
});

describe('cifar binary reader', () => {
  let dir: string;
  beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-cifar-')); });
  afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  /** n records; sample i has label(s) from `labelsOf(i)` and every pixel of channel c equal to (i + 10c) % 256. */
  function records(n: number, labelsOf: (i: number) => number[]): Buffer {
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const px = Buffer.alloc(3072);
      for (let c = 0; c < 3; c++) px.fill((i + 10 * c) % 256, c * 1024, (c + 1) * 1024);
      parts.push(Buffer.concat([Buffer.from(labelsOf(i)), px]));
    }
    return Buffer.concat(parts);
  }
  function writeCifar10(d: string): void {
    fs.mkdirSync(d, { recursive: true });
    for (let b = 1; b <= 5; b++) fs.writeFileSync(path.join(d, `data_batch_${b}.bin`), records(3, (i) => [(b + i) % 10]));
    fs.writeFileSync(path.join(d, 'test_batch.bin'), records(2, (i) => [9 - i]));
  }

  test('cifar10: reads the batches in order, C×H×W, normalised per channel', () => {
    const d = path.join(dir, 'c10');
    writeCifar10(d);
    const { train, test: testSet } = loadCifar10(d);
    expect([train.n, testSet.n, train.classes]).toEqual([15, 2, 10]);
    expect(train.shape).toEqual([3, 32, 32]);
    expect(Array.from(train.labels)).toEqual([1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6, 5, 6, 7]);
    expect(Array.from(testSet.labels)).toEqual([9, 8]);
    // sample 4 (batch 2, record 1), channel 2: byte 21 everywhere
    const x = train.images[4 * 3072 + 2 * 1024 + 517];
    expect(x).toBeCloseTo((21 / 255 - CIFAR_MEAN[2]) / CIFAR_STD[2], 5);
    expect(train.images[4 * 3072 + 5]).toBeCloseTo((1 / 255 - CIFAR_MEAN[0]) / CIFAR_STD[0], 5);
    // the folder that holds the extracted archive works too
    writeCifar10(path.join(dir, 'outer', 'cifar-10-batches-bin'));
    expect(loadCifar10(path.join(dir, 'outer')).train.n).toBe(15);
  });

  test('cifar10: clear errors for a missing directory, a missing file and a truncated file', () => {
    expect(() => loadCifar10(path.join(dir, 'nope'))).toThrow(/cifar10: '.*nope' is not a directory/);
    const d = path.join(dir, 'broken');
    writeCifar10(d);
    fs.rmSync(path.join(d, 'data_batch_4.bin'));
    expect(() => loadCifar10(d)).toThrow(/cifar10: missing file .*data_batch_4\.bin/);
    writeCifar10(d);
    const f = path.join(d, 'data_batch_2.bin');
    fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 3073 * 2 + 100));
    expect(() => loadCifar10(d)).toThrow(/data_batch_2\.bin has 6246 bytes, not a whole number of 3073-byte records.*truncated/);
  });

  test('cifar100: coarse + fine label bytes; fine by default', () => {
    const d = path.join(dir, 'c100');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'train.bin'), records(4, (i) => [i, 50 + i]));
    fs.writeFileSync(path.join(d, 'test.bin'), records(1, () => [19, 99]));
    const fine = loadCifar100(d);
    expect(Array.from(fine.train.labels)).toEqual([50, 51, 52, 53]);
    expect([fine.train.classes, fine.test.labels[0]]).toEqual([100, 99]);
    const coarse = loadCifar100(d, { label: 'coarse' });
    expect(Array.from(coarse.train.labels)).toEqual([0, 1, 2, 3]);
    expect(coarse.train.classes).toBe(20);
    // a CIFAR-10 file is not a whole number of CIFAR-100 records
    fs.writeFileSync(path.join(d, 'test.bin'), records(3, () => [1]));
    expect(() => loadCifar100(d)).toThrow(/test\.bin has 9219 bytes, not a whole number of 3074-byte records/);
  });
});

describe('loadDataset', () => {
  test('parses specs and names the valid ones on error', () => {
    expect(() => loadDataset('imagenet')).toThrow(
      "unknown data set 'imagenet'; expected one of: mnist, fashion-mnist, cifar10:<dir>, cifar100:<dir>, synthetic, sotu:chars, sotu:words[=N]");
    expect(() => loadDataset('cifar10')).toThrow(/needs a directory: --data cifar10:<dir>/);
    expect(() => loadDataset('mnist:x')).toThrow(/takes no ':' argument/);
    expect(loadDataset('mnist').train.n).toBe(8000);
    const s = loadDataset('synthetic', { sampleShape: [3, 8, 8], seed: 5 });
    expect(s.train.shape).toEqual([3, 8, 8]);
    expect(s.train.images.length).toBe(s.train.n * 192);
    expect(same(loadDataset('synthetic', { sampleShape: [3, 8, 8], seed: 5 }).train.images, s.train.images)).toBe(true);
    expect(same(loadDataset('synthetic', { sampleShape: [3, 8, 8], seed: 6 }).train.images, s.train.images)).toBe(false);
  });

  test('synthetic data is roughly normalised and has every class', () => {
    const { train } = loadSynthetic({ shape: [1, 28, 28], train: 2000 });
    const s = stats(train.images);
    expect(Math.abs(s.mean)).toBeLessThan(0.1);
    expect(Math.abs(s.std - 1)).toBeLessThan(0.1);
    expect(counts(train).every((c) => c > 100)).toBe(true);
  });
});

describe('batches', () => {
  /** n samples of shape [1,1,2]; sample i's pixels are (i, −i), its label i % 10. */
  function indexed(n: number): Dataset {
    const images = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) { images[2 * i] = i; images[2 * i + 1] = -i; }
    return { name: 'idx', images, labels: Int32Array.from({ length: n }, (_, i) => i % 10), n, shape: [1, 1, 2], classes: 10 };
  }
  const ids = (x: Float32Array | Int32Array) => Array.from({ length: x.length / 2 }, (_, k) => x[2 * k]);

  test('training: fixed size, drop last, a permutation per epoch, seeded', () => {
    const ds = indexed(103);
    const e1 = epochBatches(ds, 10, 42, 1);
    expect(e1.length).toBe(10);
    const seen: number[] = [];
    for (const b of e1) {
      expect(b.x.length).toBe(20);
      expect(b.valid).toBe(10);
      const i = ids(b.x);
      expect(Array.from(b.x.filter((_, k) => k % 2 === 1))).toEqual(i.map((v) => -v));
      expect(Array.from(b.y)).toEqual(i.map((v) => v % 10));
      seen.push(...i);
    }
    expect(new Set(seen).size).toBe(100); // 100 distinct samples, 3 dropped
    expect(seen).not.toEqual([...seen].sort((a, b) => a - b)); // shuffled
    expect(ids(epochBatches(ds, 10, 42, 1).get(3).x)).toEqual(ids(e1.get(3).x)); // deterministic
    expect(ids(epochBatches(ds, 10, 42, 2).get(0).x)).not.toEqual(ids(e1.get(0).x)); // new order each epoch
    expect(ids(epochBatches(ds, 10, 43, 1).get(0).x)).not.toEqual(ids(e1.get(0).x)); // and each seed
    expect(() => e1.get(10)).toThrow(/out of range/);
    expect(() => epochBatches(ds, 200, 0, 1)).toThrow(/batch size 200 is larger than idx \(103 samples\)/);
  });

  test('evaluation: every sample once in order, last batch padded with label -1', () => {
    const ds = indexed(23);
    const ev = evalBatches(ds, 10);
    expect(ev.length).toBe(3);
    const all = [...ev];
    expect(all.map((b) => b.valid)).toEqual([10, 10, 3]);
    expect(ids(all[0].x)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const last = all[2];
    expect(last.x.length).toBe(20);
    expect(Array.from(last.y)).toEqual([0, 1, 2, -1, -1, -1, -1, -1, -1, -1]);
    expect(ids(last.x)).toEqual([20, 21, 22, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(last.x.subarray(6))).toEqual(new Array(14).fill(0));
    expect([...evalBatches(indexed(20), 10)].map((b) => b.valid)).toEqual([10, 10]);
  });
});
