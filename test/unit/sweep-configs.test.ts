/** Sweep configurations as data (runtime/sweep/configs.ts): PEPPP's 99, grids, JSON files, and their errors. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfigs, pepppConfigs, precisionProblem } from '../../runtime/sweep/configs.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-sweepcfg-'));
const fixture = JSON.parse(fs.readFileSync('test/fixtures/peppp/configs.json', 'utf8')) as { column: number; name: string; precision: string }[];

describe('sweep configurations', () => {
  test("--configs peppp: the pack's 99 configurations, names and precisions in column order", () => {
    const c = pepppConfigs();
    expect(c).toHaveLength(99);
    expect(c).toEqual(fixture.map(({ name, precision }) => ({ name, precision })));
    expect(fixture.map((f) => f.column)).toEqual(c.map((_, i) => i));
    expect(loadConfigs('peppp')).toEqual(c);
  });

  test('a grid reproduces PEPPP (ranges, lists, + unions; first slot outermost) and the JSON grid form agrees', () => {
    const g = loadConfigs('grid:low=float<3..4,1..4>+float<5,1..3>,high=float<6..8,7|9|11>');
    expect(g).toEqual(pepppConfigs());
    const small = loadConfigs('grid:low=float<3..5,1..3>,high=float<6,7..9>');
    expect(small).toHaveLength(27);
    expect(small.slice(0, 4).map((c) => c.name)).toEqual(['l_5_1_h_14_7', 'l_5_1_h_15_8', 'l_5_1_h_16_9', 'l_6_2_h_14_7']);
    const f = path.join(tmp, 'grid.json');
    fs.writeFileSync(f, JSON.stringify({ grid: { w: 'float<4,3>', g: 'float<5,2|3>' }, template: '' }));
    expect(loadConfigs(f)).toEqual([
      { name: 'w_8_3_g_8_2', precision: 'w=float<4,3>:stochastic g=float<5,2>:stochastic' },
      { name: 'w_8_3_g_9_3', precision: 'w=float<4,3>:stochastic g=float<5,3>:stochastic' },
    ]);
  });

  test('a JSON list is read as given; precision validation is the precision parser', () => {
    const f = path.join(tmp, 'list.json');
    const list = [{ name: 'fp32', precision: '' }, { name: 'e5m2', precision: 'A=e5m2 E=e5m2' }];
    fs.writeFileSync(f, JSON.stringify(list));
    expect(loadConfigs(f)).toEqual(list);
    expect(precisionProblem('A=e5m2')).toBeUndefined();
    expect(precisionProblem('W=bpf<8>')).toMatch(/^1:3: unknown format 'bpf'/);
  });

  test('bad configurations: one line naming the place', () => {
    const bad = (content: string) => { const f = path.join(tmp, `b${Math.random()}.json`); fs.writeFileSync(f, content); return f; };
    const err = (arg: string) => { try { loadConfigs(arg); return ''; } catch (e) { expect(e).toBeInstanceOf(ConfigError); return (e as Error).message; } };
    let f = bad('[{"name": "a", "precision": ""}, {"name": "a", "precision": "A=e5m2"}]');
    expect(err(f)).toBe(`${f}: configuration name 'a' appears twice`);
    f = bad('[{"name": "a,b", "precision": ""}]');
    expect(err(f)).toBe(`${f}: configuration 0: name "a,b" must be letters, digits and _ . + - (it is a CSV column)`);
    f = bad('[{"name": "a", "precision": 3}]');
    expect(err(f)).toBe(`${f}: configuration 'a': precision must be a string`);
    f = bad('{"name": ');
    expect(err(f)).toMatch(new RegExp(`^${f}: not valid JSON`));
    expect(err('[]')).toMatch(/^--configs \[\]: cannot read it \(ENOENT\); expected peppp, grid:… or a JSON file$/);
    expect(err('grid:low=float<5..3,1>')).toBe("--configs: slot low: empty range '5..3'");
    expect(err('grid:low=fixed<8,4>')).toBe("--configs: slot low: 'fixed<8,4>' is not float<E,M> (E, M: an integer, a..b or a|b|c) or mx<ELEM|ELEM…[,block=B][,scale=S]>");
    expect(err('grid:low')).toBe("--configs: 'low' is not SLOT=FORMATS");
  });
});
