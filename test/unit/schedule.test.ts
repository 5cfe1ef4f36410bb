/** CPT precision schedules: the transition table of research/seeds.md §2.1 and the CLI over 64,000 iterations. */
import { spawnSync } from 'node:child_process';
import { parseSchedule, rint, scheduleBits, scheduleTable } from '../../ir/precision/index.js';

/** Bits per cycle-relative iteration, from the table derived from CPT's code (seeds.md §2.1, P = 2000). */
const TABLE: Record<string, [number, number, number][]> = {
  'cyclic(3,8,periods=32)': [[3, 0, 409], [4, 410, 738], [5, 739, 999], [6, 1000, 1261], [7, 1262, 1590], [8, 1591, 1999]],
  'cyclic(4,8,periods=32)': [[4, 0, 460], [5, 461, 839], [6, 840, 1160], [7, 1161, 1539], [8, 1540, 1999]],
  'cyclic(2,8,periods=32)': [[2, 0, 372], [3, 373, 666], [4, 667, 893], [5, 894, 1106], [6, 1107, 1333], [7, 1334, 1627], [8, 1628, 1999]],
};

describe('CPT schedule', () => {
  test('rint rounds half to even, like numpy', () => {
    expect([0.5, 1.5, 2.5, 3.5, -1.5, 2.4999, 2.5001].map(rint)).toEqual([0, 2, 2, 4, -2, 2, 3]);
  });

  for (const [spec, runs] of Object.entries(TABLE))
    test(`${spec} over 64,000 iterations follows the derived transition table in every cycle`, () => {
      const bits = scheduleTable(parseSchedule(spec), 64000);
      for (let t = 0; t < 64000; t++) {
        const r = t % 2000;
        const want = runs.find(([, a, b]) => r >= a && r <= b)![0];
        if (bits[t] !== want) throw new Error(`t=${t}: ${bits[t]} ≠ ${want}`);
      }
      // seeds.md: mean 5.499 bits for 3→8 and 5.999 for 4→8
      const mean = bits.slice(0, 2000).reduce((a, b) => a + b) / 2000;
      if (spec.startsWith('cyclic(3')) expect(mean).toBe(5.499);
      if (spec.startsWith('cyclic(4')) expect(mean).toBe(5.999);
    });

  test('const, short runs and the spot values of seeds.md §2.4', () => {
    const s = parseSchedule('cyclic(3,8,periods=32)');
    expect([0, 409, 410, 1000, 1999, 2000, 63999].map((t) => scheduleBits(s, t, 64000))).toEqual([3, 3, 4, 6, 8, 3, 8]);
    expect(scheduleTable(parseSchedule('const(8)'), 5)).toEqual([8, 8, 8, 8, 8]);
    expect(scheduleTable(s, 10)).toEqual(Array(10).fill(3)); // fewer iterations than periods: P = 1, every t starts a cycle
  });

  test('lpc schedule --json prints every iteration; errors name the column', () => {
    const r = spawnSync(process.execPath, ['bin/lpc.js', 'schedule', 'cyclic(3,8,periods=32)', '--iters', '64000', '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const bits = JSON.parse(r.stdout) as number[];
    expect(bits.length).toBe(64000);
    expect(bits).toEqual(scheduleTable(parseSchedule('cyclic(3,8,periods=32)'), 64000));
    const bad = spawnSync(process.execPath, ['bin/lpc.js', 'schedule', 'cyclic(3,40)', '--iters', '10'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe('lpc: schedule:1:10: hi must satisfy 1 <= hi <= 32 (got 40)');
    // trailing text is named in a schedule's terms, not as a section of a precision spec
    const trail = spawnSync(process.execPath, ['bin/lpc.js', 'schedule', 'const(8)x', '--iters', '4'], { encoding: 'utf8' });
    expect([trail.status, trail.stderr.trim()]).toEqual([2, 'lpc: schedule:1:9: unexpected text after the schedule']);
  });
});
