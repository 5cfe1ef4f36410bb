/**
 * Task families (runtime/data): class subsets of the bundled sets as data sets of their own, PEPPP's CIFAR-100
 * superclass partitions read from generated binary files, and --tasks files.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadDataset, parseDataSpec } from '../../runtime/data/index.js';
import { CIFAR_MEAN, CIFAR_STD } from '../../runtime/data/cifar.js';
import { classesProblem, readTasksFile } from '../../runtime/data/tasks.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-tasks-'));

/** CIFAR-100 records [coarse, fine, 3072 pixels], pixel bytes = (i·7) mod 256 for record i. */
function records(labels: [number, number][]): Buffer {
  const b = Buffer.alloc(labels.length * 3074);
  labels.forEach(([c, f], i) => { b[i * 3074] = c; b[i * 3074 + 1] = f; b.fill((i * 7) % 256, i * 3074 + 2, (i + 1) * 3074); });
  return b;
}

describe('class-subset tasks', () => {
  test('mnist:classes=7,2,4: a filter of the full split, labels 0..k−1 in the listed order', () => {
    const full = loadDataset('mnist'), t = loadDataset('mnist:classes=7,2,4');
    for (const part of ['train', 'test'] as const) {
      const f = full[part], s = t[part];
      const idx = [...f.labels.keys()].filter((i) => [7, 2, 4].includes(f.labels[i]));
      expect(s.n).toBe(idx.length);
      expect(s.classes).toBe(3);
      expect(Array.from(s.labels)).toEqual(idx.map((i) => [7, 2, 4].indexOf(f.labels[i])));
      expect(new Set(s.labels)).toEqual(new Set([0, 1, 2]));
      const size = 784, k = s.n - 1;
      expect(s.images.subarray(k * size, (k + 1) * size)).toEqual(f.images.subarray(idx[k] * size, (idx[k] + 1) * size));
    }
  });

  test('specs: parsed, and bad ones refused with one line', () => {
    expect(parseDataSpec('fashion-mnist:classes=0,2,4,6,8')).toEqual({ name: 'fashion-mnist', dir: undefined, classes: [0, 2, 4, 6, 8] });
    expect(parseDataSpec('cifar100:/d:x:superclass=19')).toEqual({ name: 'cifar100', dir: '/d:x', superclass: 19 });
    expect(() => parseDataSpec('mnist:classes=0,10')).toThrow("'mnist:classes=0,10': unknown class 10 (mnist has classes 0..9)");
    expect(() => parseDataSpec('mnist:classes=1,2,1')).toThrow("'mnist:classes=1,2,1': class 1 is listed twice");
    expect(() => parseDataSpec('mnist:classes=1,,2')).toThrow("'mnist:classes=1,,2': classes= must be a comma-separated list of class indices like 0,2,4");
    expect(() => parseDataSpec('mnist:classes=3')).toThrow("'mnist:classes=3': a task needs at least 2 classes");
    expect(() => parseDataSpec('cifar100:/d:superclass=20')).toThrow("'cifar100:/d:superclass=20': superclass must be an integer in 0..19, got '20'");
    expect(() => parseDataSpec('mnist:superclass=2')).toThrow("'mnist:superclass=2': superclass= is for cifar100:<dir> only");
    expect(() => parseDataSpec('synthetic:classes=1,2')).toThrow("data set 'synthetic' takes no :classes= option (got 'synthetic:classes=1,2')");
  });

  test('cifar100:<dir>:superclass=K: the records of coarse label K, fine labels → 0..m−1 in ascending order', () => {
    const d = path.join(tmp, 'c100');
    fs.mkdirSync(d);
    // superclass 3 holds fine labels 40, 12, 77 (out of order); superclass 5 holds 1
    const train: [number, number][] = [[3, 40], [5, 1], [3, 12], [3, 77], [3, 12], [0, 0]];
    const test: [number, number][] = [[3, 77], [5, 1], [3, 40]];
    fs.writeFileSync(path.join(d, 'train.bin'), records(train));
    fs.writeFileSync(path.join(d, 'test.bin'), records(test));
    const t = loadDataset(`cifar100:${d}:superclass=3`);
    expect([t.train.n, t.test.n, t.train.classes, t.test.classes]).toEqual([4, 2, 3, 3]);
    expect(Array.from(t.train.labels)).toEqual([1, 0, 2, 0]);   // 40→1, 12→0, 77→2
    expect(Array.from(t.test.labels)).toEqual([2, 1]);
    expect(t.train.shape).toEqual([3, 32, 32]);
    // train record 2 (the first 12) has pixel bytes 14; sample 1 of the task, channel 1
    expect(t.train.images[1 * 3072 + 1024 + 5]).toBeCloseTo((14 / 255 - CIFAR_MEAN[1]) / CIFAR_STD[1], 5);
    expect(() => loadDataset(`cifar100:${d}:superclass=7`)).toThrow(/superclass 7 has no training records/);
    fs.writeFileSync(path.join(d, 'test.bin'), records([[3, 99]]));
    expect(() => loadDataset(`cifar100:${d}:superclass=3`)).toThrow(/test record 0 has fine label 99 in superclass 3, which no training record of it has/);
  });

  test('--tasks FILE: comments, blank lines; bad lines named file:line', () => {
    const f = path.join(tmp, 'tasks.txt');
    fs.writeFileSync(f, '# PEPPP-style tasks\nmnist:classes=0,2,4   # three digits\n\n  fashion-mnist:classes=0,2\n');
    expect(readTasksFile(f)).toEqual([{ spec: 'mnist:classes=0,2,4', line: 2 }, { spec: 'fashion-mnist:classes=0,2', line: 4 }]);
    fs.writeFileSync(f, 'mnist\nmnist:classes=0,12\n');
    expect(() => readTasksFile(f)).toThrow(`${f}:2: 'mnist:classes=0,12': unknown class 12 (mnist has classes 0..9)`);
    fs.writeFileSync(f, 'mnist\n\nmnist\n');
    expect(() => readTasksFile(f)).toThrow(`${f}:3: task 'mnist' is already listed on line 1`);
    fs.writeFileSync(f, '# nothing\n');
    expect(() => readTasksFile(f)).toThrow(`${f}: lists no tasks (one --data spec per line)`);
  });

  test("the model's logits width must match a task's classes", () => {
    expect(classesProblem('lenet5', 10, 'mnist:classes=0,1', 2)).toBe("model 'lenet5' has 10 outputs but mnist:classes=0,1 has 2 classes (compile it with --classes 2)");
    expect(classesProblem('lenet5', 2, 'mnist:classes=0,1', 2)).toBeUndefined();
    expect(classesProblem('lenet5', 10, 'mnist', 10)).toBeUndefined();
  });
});
