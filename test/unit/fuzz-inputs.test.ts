/**
 * Fuzzing the small input languages: `--configs` (grid: strings and JSON files), `--tasks` files, --data specs and
 * `lpc quant`'s stdin array. Each gives a value or its own error, one line, naming its place.
 */
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfigs } from '../../runtime/sweep/configs.js';
import { readTasksFile, TaskError } from '../../runtime/data/tasks.js';
import { parseDataSpec } from '../../runtime/data/index.js';
import { readValues } from '../../runtime/cli/quant.js';
import { UsageError } from '../../runtime/cli/args.js';
import { mutated, oddJson, params, randomText, returnsOrOwnError } from './fuzz-runs.js';

let tmp = '';
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-fuzz-in-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const GRIDS = ['grid:low=float<3..5,1..3>', 'grid:low=float<3|4,1>+float<5,2>,high=float<6..8,7|9>', 'grid:a=float<4,3>'];
const JSONS = ['[{"name":"a","precision":"W=fp16"},{"name":"b.2","precision":"W=float<4,3>:stochastic loss_scale=1000"}]',
  '{"grid":{"low":"float<3..4,1..2>","high":"float<6,7>"},"template":"W=low G=low M=high"}'];

function configs(arg: string, where: string): void {
  returnsOrOwnError(() => loadConfigs(arg), [ConfigError], (l) => l.startsWith(where));
}
function configFile(text: string): void {
  const f = path.join(tmp, 'c.json');
  fs.writeFileSync(f, text);
  configs(f, f);
}

describe('fuzz: sweep configs', () => {
  test('grid: strings', () => {
    fc.assert(fc.property(fc.oneof(mutated(GRIDS), randomText.map((t) => `grid:${t}`)), (g) => configs(g, '--configs')), params());
  });
  test('JSON files: edited text and odd values', () => {
    const odd = fc.tuple(fc.constantFrom('name', 'precision', 'grid', 'template', 'low', '*'), oddJson).map(([k, v]) => {
      if (k === '*') return JSON.stringify(v);
      if (k === 'name' || k === 'precision') return JSON.stringify([{ name: 'a', precision: 'W=fp16', [k]: v }]);
      if (k === 'low') return JSON.stringify({ grid: { low: v } });
      return JSON.stringify({ grid: { low: 'float<3,1>' }, [k]: v });
    });
    fc.assert(fc.property(fc.oneof(mutated(JSONS), odd), configFile), params());
  });
  test('regressions', () => {
    configs('grid:/<\n', '--configs');
    configFile('{"grid":{"low":"x\\ny"}}');
    configFile('[{"name":"a",\n,}]'); // JSON.parse's message quotes the text, newlines too
    configs('grid:low=float<0..99999999999,1>', '--configs'); // a range of 1e11 formats
    configs('grid:a=float<1..60,1..60>,b=float<1..60,1..60>,c=float<1..60,1..60>', '--configs'); // a product of 4.7e10
  });
});

const SPECS = ['mnist', 'mnist:classes=0,2,4', 'fashion-mnist:classes=1,3', 'cifar10:/data/c10', 'cifar100:/d:superclass=3', 'cifar100:/d:classes=0,99', 'synthetic'];
describe('fuzz: data specs and tasks files', () => {
  test('parseDataSpec: a spec or a one-line Error naming the spec or the data set', () => {
    fc.assert(fc.property(fc.oneof(mutated(SPECS), randomText).filter((s) => !/[\n\r\u2028\u2029]/.test(s)), (s) => {
      const name = s.split(':')[0];
      returnsOrOwnError(() => parseDataSpec(s), [Error], (l) => l.includes(s) || l.includes(`'${name}'`));
    }), params());
  });
  test('tasks files: tasks or a one-line TaskError naming file:line', () => {
    const f = path.join(tmp, 'tasks.txt');
    fc.assert(fc.property(fc.oneof(mutated([SPECS.join('\n'), '# tasks\nmnist:classes=0,1\n\nmnist:classes=2,3 # two\r\n']), randomText), (t) => {
      fs.writeFileSync(f, t);
      returnsOrOwnError(() => readTasksFile(f), [TaskError], (l) => l.startsWith(`${f}:`));
    }), params());
  });
});

describe('fuzz: lpc quant stdin', () => {
  const VALID = ['[1, -2.5, 0.1, "NaN", "Infinity", "-Infinity", 1e-40, 3.4e38]', '[]', '["3f800000", "7fc00000", "ff800000"]'];
  test('a Float32Array or a one-line UsageError naming stdin or the element', () => {
    fc.assert(fc.property(fc.oneof(mutated(VALID), randomText, fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v))), fc.boolean(), (t, hex) => {
      returnsOrOwnError(() => readValues(t, hex), [UsageError], (l) => /^(stdin|element \d+:)/.test(l));
    }), params());
  });
  test('regressions', () => {
    returnsOrOwnError(() => readValues('[1,\n,2]', false), [UsageError], (l) => l.startsWith('stdin'));
  });
});
