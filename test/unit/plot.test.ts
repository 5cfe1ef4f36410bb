/** lpc plot: which panels and series a metrics file yields, where points go, and that the SVG is well formed. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { panels, renderSvg, ticks } from '../../runtime/cli/plot.js';

const steps = Array.from({ length: 20 }, (_, i) => ({ step: i + 1, epoch: 1 + Math.floor(i / 10), loss: 2 - i / 20, lr: 0.1, bits: { fwd: 3 + (i % 5), bwd: 8 } }));
const epochs = [1, 2].map((e) => ({ epoch: e, train_loss: 2 - e / 2, test_loss: 2.1 - e / 2, test_accuracy: 0.5 + e / 10, lr: 0.1, steps: 10, global_step: 10 * e, ...(e === 2 ? { swa_test_accuracy: 0.8, swa_test_loss: 1 } : {}) }));

describe('lpc plot', () => {
  test('panels and series: step records put epoch points at their global step; bits objects give one series per key', () => {
    const { xLabel, panels: ps } = panels([...steps, ...epochs]);
    expect(xLabel).toBe('step');
    expect(ps.map((p) => p.title)).toEqual(['loss', 'accuracy', 'bit width', 'learning rate']);
    const loss = Object.fromEntries(ps[0].series.map((s) => [s.name, s.points]));
    expect(loss['loss (step)']).toHaveLength(20);
    expect(loss['train loss']).toEqual([[10, 1.5], [20, 1]]);
    expect(loss['SWA test loss']).toEqual([[20, 1]]);
    expect(ps[1].series.map((s) => s.name)).toEqual(['test accuracy', 'SWA test accuracy']);
    expect(ps[1].series[0].points).toEqual([[10, 60], [20, 70]]);
    expect(ps[2].series.map((s) => s.name)).toEqual(['bits fwd', 'bits bwd']);
    expect(ps[2].series[0].points[4]).toEqual([5, 7]);
  });

  test('bits_<k> fields (bits_fwd, bits_bwd) are bit-width series too', () => {
    const recs = [1, 2, 3].map((k) => ({ step: k, epoch: 1, loss: 1, lr: 0.1, bits_fwd: 2 + k, bits_bwd: 8 }));
    const p = panels(recs).panels.find((x) => x.title === 'bit width')!;
    expect(p.series.map((x) => [x.name, x.points])).toEqual([['bits fwd', [[1, 3], [2, 4], [3, 5]]], ['bits bwd', [[1, 8], [2, 8], [3, 8]]]]);
  });

  test('epoch-only files use the epoch axis; no bits panel without bits', () => {
    const { xLabel, panels: ps } = panels(epochs);
    expect(xLabel).toBe('epoch');
    expect(ps.map((p) => p.title)).toEqual(['loss', 'accuracy', 'learning rate']);
    expect(ps[0].series.find((s) => s.name === 'test loss')!.points).toEqual([[1, 1.6], [2, 1.1]]);
  });

  test('ticks are round numbers covering the range', () => {
    expect(ticks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(ticks(3, 8, 5)).toEqual([3, 4, 5, 6, 7, 8]);
    const t = ticks(5, 5);
    expect(t[0]).toBeLessThan(5);
    expect(t[t.length - 1]).toBeGreaterThan(5);
  });

  test('the SVG is well formed, with one path per series', () => {
    const svg = renderSvg([...steps, ...epochs], 'a <title> & more');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('a &lt;title&gt; &amp; more');
    const open = (svg.match(/<g[ >]/g) ?? []).length, close = (svg.match(/<\/g>/g) ?? []).length;
    expect(open).toBe(4);
    expect(close).toBe(4);
    expect((svg.match(/class="series"/g) ?? []).length).toBe(4 + 2 + 2 + 1);
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  });

  test('CLI: writes the file; a bad line is named by file:line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-plot-'));
    const f = path.join(dir, 'm.jsonl');
    fs.writeFileSync(f, [...steps, ...epochs].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const ok = spawnSync(process.execPath, ['bin/lpc.js', 'plot', f], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'm.svg'), 'utf8')).toContain('</svg>');
    fs.appendFileSync(f, '{"step": 21, \n');
    const bad = spawnSync(process.execPath, ['bin/lpc.js', 'plot', f, '-o', path.join(dir, 'x.svg')], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe(`lpc: ${f}:23: not a JSON object`);
    expect(fs.existsSync(path.join(dir, 'x.svg'))).toBe(false);
  });
});
