#!/usr/bin/env node
/**
 * Reports import cycles among lpc's source folders (ir, dsl, passes, codegen, runtime by default): the value imports
 * and re-exports of each .ts file (`import type`, `export type` and imports whose every name is `type X` are left out:
 * they vanish at compile time; dynamic `import()` is left out too: it runs after every module has loaded). Prints
 * each cycle as a chain of files and exits 1 when there is one. Usage: node scripts/import-cycles.mjs [folder …]
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const folders = process.argv.slice(2).length ? process.argv.slice(2) : ['ir', 'dsl', 'passes', 'codegen', 'runtime'];

function files(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The value imports of one file, as absolute .ts paths inside the repository. */
function valueImports(file) {
  const src = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, false);
  const out = [];
  for (const s of src.statements) {
    let spec, typeOnly = false;
    if (ts.isImportDeclaration(s)) {
      spec = s.moduleSpecifier.text;
      const c = s.importClause;
      if (c) {
        const named = c.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : [];
        typeOnly = c.isTypeOnly || (!c.name && c.namedBindings && ts.isNamedImports(c.namedBindings) && named.length > 0 && named.every((e) => e.isTypeOnly));
      }
    } else if (ts.isExportDeclaration(s) && s.moduleSpecifier) {
      spec = s.moduleSpecifier.text;
      const named = s.exportClause && ts.isNamedExports(s.exportClause) ? s.exportClause.elements : undefined;
      typeOnly = s.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly));
    } else continue;
    if (typeOnly || !spec.startsWith('.')) continue;
    const base = path.resolve(path.dirname(file), spec);
    const hit = [base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')].find((p) => fs.existsSync(p));
    if (hit) out.push(hit);
  }
  return out;
}

const all = folders.flatMap((f) => files(path.join(root, f)));
const inScope = new Set(all);
const graph = new Map(all.map((f) => [f, valueImports(f).filter((g) => inScope.has(g))]));

// Tarjan's strongly connected components; every component with more than one file (or a self-import) holds a cycle.
let index = 0;
const idx = new Map(), low = new Map(), onStack = new Set(), stack = [], components = [];
function strong(v) {
  idx.set(v, index); low.set(v, index); index++;
  stack.push(v); onStack.add(v);
  for (const w of graph.get(v)) {
    if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))); }
    else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const c = [];
    let w;
    do { w = stack.pop(); onStack.delete(w); c.push(w); } while (w !== v);
    if (c.length > 1 || graph.get(v).includes(v)) components.push(c);
  }
}
for (const f of all) if (!idx.has(f)) strong(f);

/** One cycle through `start` inside component `c` (breadth-first, so the shortest). */
function cycleThrough(start, c) {
  const inC = new Set(c), prev = new Map([[start, null]]), queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (w === start) {
        const chain = [v];
        for (let p = prev.get(v); p; p = prev.get(p)) chain.unshift(p);
        return [...chain, start];
      }
      if (inC.has(w) && !prev.has(w)) { prev.set(w, v); queue.push(w); }
    }
  }
  return [start];
}

const rel = (f) => path.relative(root, f);
const edges = [...graph.values()].reduce((n, l) => n + l.length, 0);
console.log(`${all.length} files in ${folders.join(', ')}, ${edges} value imports among them`);
if (!components.length) { console.log('no import cycles'); process.exit(0); }
for (const c of components) {
  const start = c.map(rel).sort()[0];
  console.log(`cycle (${c.length} files): ${cycleThrough(path.join(root, start), c).map(rel).join(' → ')}`);
}
process.exit(1);
