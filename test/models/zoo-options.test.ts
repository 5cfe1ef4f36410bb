/**
 * The compile options --depth and --width (issue 28): models/wrn.ts takes a Wide ResNet's depth and widen factor from
 * them (CIFAR WRN-depth-K at depth 6n + 4, torchvision's ImageNet-style wide_resnet50_2 / 101_2 at depth 50 / 101).
 * Every variant's parameters equal the PyTorch definition's by name and shape (test/fixtures/zoo/torch_params.json,
 * `variants`, made by torch_models.py; WRN-50-2 and WRN-101-2 checked there against torchvision's published counts).
 * A model that never reads a given size option is an error naming it; bad values are one line.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd } from '../../dsl/frontend.js';
import { count, params, trainGraph } from './zoo-params.js';
import type { ModelOptions } from '../../dsl/index.js';

interface Variant { file: string; options: { depth: number; width: number }; params: number; params_100: number; shapes: Record<string, number[]> }
const FIXTURE = JSON.parse(fs.readFileSync('test/fixtures/zoo/torch_params.json', 'utf8'));
const VARIANTS: Variant[] = FIXTURE.variants;

/** ImageNet-style variants trace at 3×64×64 (parameters do not depend on the input size). */
const inputFor = (o: { depth: number }): Pick<ModelOptions, 'input'> => (o.depth === 50 || o.depth === 101 ? { input: [3, 64, 64] } : {});

describe('models/wrn.ts under --depth and --width', () => {
  test('the fixture holds WRN-16-4, WRN-40-2, WRN-50-2 and WRN-101-2', () => {
    expect(VARIANTS.map((v) => `${v.file} ${v.options.depth}-${v.options.width}`))
      .toEqual(['models/wrn.ts 16-4', 'models/wrn.ts 40-2', 'models/wrn.ts 50-2', 'models/wrn.ts 101-2']);
  });
  for (const v of VARIANTS) {
    test(`WRN-${v.options.depth}-${v.options.width}: ${v.params.toLocaleString('en')} parameters with PyTorch's names and shapes; ${v.params_100.toLocaleString('en')} at 100 classes`, () => {
      const ps = params(trainGraph(frontEnd(v.file, 2, { ...v.options, ...inputFor(v.options) })));
      expect(ps).toEqual(v.shapes);
      expect(count(ps)).toBe(v.params);
      expect(count(params(trainGraph(frontEnd(v.file, 2, { ...v.options, classes: 100, ...inputFor(v.options) }))))).toBe(v.params_100);
    });
  }
  test('the defaults are WRN-28-10: --depth 28 --width 10 gives the same parameters as no options', () => {
    const given = params(trainGraph(frontEnd('models/wrn.ts', 2, { depth: 28, width: 10 })));
    expect(given).toEqual(FIXTURE.models['models/wrn.ts'].shapes);
    // one option alone keeps the other's default: WRN-16-10 has WRN-28-10's widths, fewer blocks
    const d16 = params(trainGraph(frontEnd('models/wrn.ts', 2, { depth: 16 })));
    expect(d16['fc.weight']).toEqual([10, 640]);
    expect(Object.keys(d16).filter((k) => /^block1\.layer\.\d+\.conv1\.weight$/.test(k))).toHaveLength(2);
  });
});

describe('bad size options', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-zoo-opts-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const lpc = (args: string[]) => spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });

  test('a model that never reads --depth or --width: an error naming the model and the option', () => {
    expect(() => frontEnd('models/resnet20.ts', 2, { depth: 32 })).toThrow(/^model 'resnet20' does not use --depth 32: it never reads o\.depth$/);
    expect(() => frontEnd('models/lenet5.ts', 2, { width: 2 })).toThrow(/^model 'lenet5' does not use --width 2: it never reads o\.width$/);
    const r = lpc(['compile', 'models/lenet5.ts', '-o', path.join(tmp, 'l.lpc'), '--width', '2']);
    expect([r.status, r.stderr]).toEqual([1, "lpc: model 'lenet5' does not use --width 2: it never reads o.width\n"]);
  });

  test('a depth WRN cannot have: one line at models/wrn.ts:line:col, from the API and the CLI', () => {
    const msg = /^models\/wrn\.ts:\d+:\d+: --depth 27: a Wide ResNet's depth is 6n \+ 4 \(10, 16, 22, 28, 40, …; CIFAR\) or 50, 101 \(ImageNet-style\)$/;
    expect(() => frontEnd('models/wrn.ts', 2, { depth: 27 })).toThrow(msg);
    const r = lpc(['compile', 'models/wrn.ts', '-o', path.join(tmp, 'w.lpc'), '--depth', '27', '--width', '1']);
    expect(r.status).toBe(1);
    expect(r.stderr.replace(/^lpc: /, '')).toMatch(new RegExp(msg.source.replace('$', '\n$')));
  });

  test('non-positive or non-integer values: one line', () => {
    expect(() => frontEnd('models/wrn.ts', 2, { width: 0 })).toThrow(/^the width must be a positive integer, got 0$/);
    expect(() => frontEnd('models/wrn.ts', 2, { depth: 2.5 })).toThrow(/^the depth must be a positive integer, got 2\.5$/);
    for (const [f, v] of [['--depth', '0'], ['--width', 'ten']]) {
      const r = lpc(['compile', 'models/wrn.ts', '-o', path.join(tmp, 'x.lpc'), f, v]);
      expect([r.status, r.stderr]).toEqual([2, `lpc: ${f} must be an integer ≥ 1, got '${v}'\n`]);
    }
  });
});
