/**
 * Imports run one way (ir ← dsl/passes/codegen ← runtime) with no cycles: scripts/import-cycles.mjs walks the value
 * imports of every source file and reports any cycle; here it must find none. The script itself is checked on a
 * two-file cycle written to a temporary folder (and a type-only import back, which is no cycle).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const run = (...args: string[]) => spawnSync(process.execPath, ['scripts/import-cycles.mjs', ...args], { encoding: 'utf8' });

test('no import cycles among ir, dsl, passes, codegen and runtime', () => {
  const r = run();
  expect([r.status, r.stdout.trim().split('\n').pop()]).toEqual([0, 'no import cycles']);
});

test('the script finds a cycle, and ignores type-only imports', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-cycles-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.ts'), "import { b } from './b.js';\nimport type { T } from './c.js';\nexport const a = b;\n");
    fs.writeFileSync(path.join(dir, 'b.ts'), "import { a } from './a.js';\nexport const b = 2;\nexport const c = () => a;\n");
    fs.writeFileSync(path.join(dir, 'c.ts'), "import { a } from './a.js';\nexport type T = typeof a;\n");
    const r = run(path.relative(process.cwd(), dir));
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/cycle \(2 files\): \S*a\.ts → \S*b\.ts → \S*a\.ts\n/);
    expect(r.stdout).not.toMatch(/c\.ts/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
