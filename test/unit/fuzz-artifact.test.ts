/**
 * Fuzzing readArtifact's manifest checks: a compiled artifact's manifest.json with fields replaced by odd values or
 * removed, or its text edited, gives the artifact or a one-line ArtifactError naming the artifact directory.
 */
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArtifactError, readArtifact } from '../../runtime/artifact.js';
import { mutated, oddJson, params, returnsOrOwnError } from './fuzz-runs.js';

let tmp = '', dir = '', manifest: Record<string, any> = {}, text = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-fuzz-art-'));
  dir = path.join(tmp, 'a.lpc');
  execFileSync('node', ['bin/lpc.js', 'compile', 'test/fixtures/sweep_tiny.ts', '-o', dir, '--batch', '2'], { stdio: 'pipe' });
  text = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8');
  manifest = JSON.parse(text);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function read(m: unknown): void {
  fs.writeFileSync(path.join(dir, 'manifest.json'), typeof m === 'string' ? m : JSON.stringify(m) ?? '');
  returnsOrOwnError(() => readArtifact(dir), [ArtifactError], (l) => l.startsWith(`${dir}: `));
}

const FIELDS = ['format', 'version', 'files', 'options', 'options.model', 'options.batch', 'options.optimizer', 'options.precision',
  'files.graph.lpir', 'files.plan.json', 'files.*', '*'];
/** Sets or removes `field` (`files.*` adds an entry with an odd name). */
function edit(m: any, field: string, v: unknown, name: string): any {
  if (field === '*') return v;
  const dot = field.indexOf('.');
  const [a, b] = dot < 0 ? [field, undefined] : [field.slice(0, dot), field.slice(dot + 1)];
  const o = b === undefined ? m : m?.[a];
  if (!o || typeof o !== 'object') return m;
  const k = b === '*' ? name : b ?? a;
  if (v === undefined) delete o[k]; else o[k] = v;
  return m;
}

describe('fuzz: artifact manifest', () => {
  test('the compiled artifact reads', () => {
    read(text);
    expect(readArtifact(dir).manifest.options.batch).toBe(2);
  });
  test('fields replaced by odd values or removed: an artifact or a one-line ArtifactError', () => {
    const name = fc.constantFrom('../x', '/etc/passwd', '', '.', 'kernels', 'a\nb', 'graph.lpir/..', 'nope', '\u0000', 'manifest.json');
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...FIELDS), fc.option(oddJson, { nil: undefined }), name), { minLength: 1, maxLength: 3 }),
      (edits) => read(edits.reduce((m, [f, v, n]) => edit(m, f, v, n), structuredClone(manifest)))), params(0.5));
  });
  test('edited manifest text: an artifact or a one-line ArtifactError', () => {
    fc.assert(fc.property(mutated([text]), read), params(0.5));
  });
  test('regressions', () => {
    read({ ...manifest, version: 'x\ny' });
    read('{\n "format": "lpc-artifact",\n  "",\n "version": 2\n}\n'); // JSON.parse quotes the text around the error, newlines too
    read({ ...manifest, files: { ...manifest.files, 'a\nb': 'h' } });
    read({ ...manifest, files: { ...manifest.files, '\u0000': 'h' } });
  });
});
