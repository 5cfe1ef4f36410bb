/**
 * The front end: type-check a model file with the TypeScript compiler API, then run it and trace it into IR.
 * Every DSL call in the file is wrapped with its call site (a small AST transform), so every IR node has a loc.
 */
import type TS from 'typescript';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type * as dsl from './index.js';
import { Module } from '../ir/graph.js';
import { checkModelOptions, evalModel, ModelProject, traceModel, TranspiledModel } from './model-run.js';

export { checkModelOptions, traceModel } from './model-run.js';
export type { ModelProject, TranspiledModel } from './model-run.js';

// The TypeScript compiler is one 9 MB CommonJS file. Loaded with require() it is compiled once; imported from ESM,
// Node 20 first scans all of it to detect its module format and lex its named exports (≈0.5 s per compile).
const ts = createRequire(import.meta.url)('typescript') as typeof TS;

export class DiagnosticsError extends Error {
  constructor(message: string, public readonly count: number) { super(message); this.name = 'DiagnosticsError'; }
}

/** The repo root (where package.json names "lpc"), found from this file so it works from dist/ and from sources. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'lpc') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the lpc package root');
    dir = up;
  }
}

function dslTypesPath(): string {
  const root = repoRoot();
  const dts = path.join(root, 'dist', 'dsl', 'index.d.ts');
  return fs.existsSync(dts) ? dts : path.join(root, 'dsl', 'index.ts');
}

const compilerOptions: TS.CompilerOptions = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2022.d.ts'],
  types: [],
  skipLibCheck: true,
};

/** `file:line:col: message` plus a code frame with a caret, for each diagnostic. */
function formatDiagnostic(d: TS.Diagnostic, displayName: (f: string) => string): string {
  const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return `error TS${d.code}: ${msg}`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  const text = d.file.text.split(/\r?\n/)[line] ?? '';
  const gutter = String(line + 1).padStart(4);
  const caret = ' '.repeat(character) + '^'.repeat(Math.max(1, Math.min(d.length ?? 1, text.length - character)));
  return `${displayName(d.file.fileName)}:${line + 1}:${character + 1}: error TS${d.code}: ${msg}\n${gutter} | ${text}\n     | ${caret}`;
}

/**
 * Where passed type-checks are remembered. A model file whose only import is 'lpc/dsl' type-checks the same way for
 * the same source text, DSL declarations (dist/dsl/index.d.ts, which imports nothing), compiler options and
 * TypeScript version (which fixes the lib files): a hash of those names an empty marker file here. Only passes are
 * recorded; diagnostics are always recomputed. Recompiling a model (another --batch or --precision) skips the
 * ≈0.8 s check.
 */
export function typeCheckCacheDir(): string {
  const nm = path.join(repoRoot(), 'node_modules');
  return fs.existsSync(nm) ? path.join(nm, '.cache', 'lpc', 'typecheck') : path.join(os.tmpdir(), `lpc-typecheck-${process.getuid?.() ?? 'user'}`);
}

/** The marker file that records a passed type-check of `file` (and its local modules) as they are now, or undefined
 *  if it is not cacheable. */
export function typeCheckMarker(file: string): string | undefined {
  const key = typeCheckKey(gatherProject(file), dslTypesPath());
  return key && path.join(typeCheckCacheDir(), key);
}

function typeCheckKey(p: ProjectSources, dslPath: string): string | undefined {
  if (!dslPath.endsWith('.d.ts')) return undefined; // the DSL sources import more files: no cache
  for (const f of p.files) {
    const pre = ts.preProcessFile(f.text, true, true);
    if (pre.referencedFiles.length || pre.typeReferenceDirectives.length || pre.libReferenceDirectives.length) return undefined;
  }
  const h = createHash('sha256');
  for (const part of [ts.version, JSON.stringify(compilerOptions), fs.readFileSync(dslPath, 'utf8')]) h.update(part).update('\0');
  for (const f of p.files) h.update(f.key).update('\0').update(f.text).update('\0');
  return h.digest('hex');
}

/** A model file and the local modules it imports (transitively), each with its text; the entry first. */
export interface ProjectSources { root: string; files: { key: string; abs: string; display: string; text: string }[] }

/**
 * The files of a model project: the entry and every module it imports by a relative path, which must lie in the
 * entry's folder tree. Any other import but 'lpc/dsl' is refused at its place, before TypeScript (whose diagnostic
 * would advise installing type definitions).
 */
export function gatherProject(file: string): ProjectSources {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new Error(`${file}: no such model file`);
  if (fs.statSync(abs).isDirectory()) throw new Error(`${file}: is a directory, not a model file`);
  const root = fs.realpathSync(path.dirname(abs));
  const files: ProjectSources['files'] = [];
  const seen = new Set<string>();
  const visit = (real: string, display: string) => {
    if (seen.has(real)) return;
    seen.add(real);
    const text = fs.readFileSync(real, 'utf8');
    files.push({ key: path.relative(root, real).split(path.sep).join('/'), abs: real, display, text });
    const sf = ts.createSourceFile(display, text, ts.ScriptTarget.ES2022, true);
    for (const { fileName: spec, pos } of ts.preProcessFile(text, true, true).importedFiles) {
      if (spec === 'lpc/dsl') continue;
      const { line, character } = sf.getLineAndCharacterOfPosition(pos);
      const here = `${display}:${line + 1}:${character + 1}`;
      if (!spec.startsWith('./') && !spec.startsWith('../'))
        throw new Error(`${here}: a model may import only 'lpc/dsl' and its own files (./…), not '${spec}'`);
      const found = localModule(path.dirname(real), spec);
      if (!found) throw new Error(`${here}: cannot find '${spec}' (a .ts file next to the model or below it)`);
      if (!found.startsWith(root + path.sep)) throw new Error(`${here}: '${spec}' is outside the model's folder ${path.relative(process.cwd(), root) || '.'}; a model imports only files in its folder tree`);
      visit(found, path.relative(process.cwd(), found));
    }
  };
  visit(fs.realpathSync(abs), file);
  return { root, files };
}

/** The real path of the .ts file a relative import names (`./x.js`, `./x`, `./x.ts`, `./dir`), if there is one. */
function localModule(dir: string, spec: string): string | undefined {
  const base = path.resolve(dir, spec);
  const candidates = [base.endsWith('.js') ? `${base.slice(0, -3)}.ts` : '', base.endsWith('.ts') ? base : '', `${base}.ts`, path.join(base, 'index.ts')];
  for (const c of candidates) if (c && fs.existsSync(c) && fs.statSync(c).isFile()) return fs.realpathSync(c);
  return undefined;
}

/** Type-checks a model file; throws DiagnosticsError listing every diagnostic. `cache: false` always checks. */
export function typeCheck(file: string, o: { cache?: boolean } = {}): void {
  const project = gatherProject(file);
  const abs = project.files[0].abs;
  const dslPath = dslTypesPath();
  const key = o.cache === false ? undefined : typeCheckKey(project, dslPath);
  const marker = key && path.join(typeCheckCacheDir(), key);
  if (marker && fs.existsSync(marker)) return;
  const host = ts.createCompilerHost(compilerOptions);
  host.resolveModuleNames = (names, containing) => names.map((n) => {
    if (n === 'lpc/dsl') return { resolvedFileName: dslPath, extension: dslPath.endsWith('.d.ts') ? ts.Extension.Dts : ts.Extension.Ts };
    return ts.resolveModuleName(n, containing, compilerOptions, host).resolvedModule;
  });
  const program = ts.createProgram([abs], compilerOptions, host);
  const diags = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (diags.length) {
    const name = (f: string) => (fs.realpathSync(path.resolve(f)) === abs ? file : path.relative(process.cwd(), f));
    throw new DiagnosticsError(diags.map((d) => formatDiagnostic(d, name)).join('\n'), diags.length);
  }
  if (marker) {
    try { fs.mkdirSync(path.dirname(marker), { recursive: true }); fs.writeFileSync(marker, ''); } catch { /* a read-only install just checks every time */ }
  }
}

/** Names imported from 'lpc/dsl' in a source file (named imports and namespace aliases). */
function dslImports(sf: TS.SourceFile): { names: Set<string>; namespaces: Set<string> } {
  const names = new Set<string>(), namespaces = new Set<string>();
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier)) continue;
    if (st.moduleSpecifier.text !== 'lpc/dsl') continue; // the project's own modules (gatherProject checked them)
    const b = st.importClause?.namedBindings;
    if (b && ts.isNamedImports(b)) for (const e of b.elements) names.add(e.name.text);
    if (b && ts.isNamespaceImport(b)) namespaces.add(b.name.text);
  }
  return { names, namespaces };
}

/** Rewrites every call `f(args)` by name into `__lpc_at(file, line, col, f)(args)`, and `throw v` into
 *  `throw __lpc_throw(file, line, col, v)` (dsl/model-run.ts lpcThrow). */
function locTransformer(displayFile: string, sf0: TS.SourceFile): TS.TransformerFactory<TS.SourceFile> {
  const { namespaces } = dslImports(sf0);
  return (context) => (sf) => {
    const f = context.factory;
    const visit = (n: TS.Node): TS.Node => {
      n = ts.visitEachChild(n, visit, context);
      if (ts.isThrowStatement(n)) {
        const orig = ts.getOriginalNode(n);
        if (orig.pos < 0) return n;
        const { line, character } = sf0.getLineAndCharacterOfPosition(orig.getStart(sf0));
        return f.updateThrowStatement(n, f.createCallExpression(f.createIdentifier('__lpc_throw'), undefined, [
          f.createStringLiteral(displayFile), f.createNumericLiteral(line + 1), f.createNumericLiteral(character + 1), n.expression]));
      }
      if (!ts.isCallExpression(n) || n.questionDotToken || (n.flags & ts.NodeFlags.OptionalChain)) return n;
      const callee = n.expression;
      // every call by a plain name: at run time __lpc_at gives a place only to DSL functions, so an alias
      // (const c = conv2d) or a helper's function parameter works too; property calls only on a DSL namespace
      const wrap = ts.isIdentifier(callee) ||
        (ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && namespaces.has(callee.expression.text));
      const orig = ts.getOriginalNode(n);
      if (!wrap || orig.pos < 0) return n;
      const { line, character } = sf0.getLineAndCharacterOfPosition(orig.getStart(sf0));
      const wrapped = f.createCallExpression(f.createIdentifier('__lpc_at'), undefined, [
        f.createStringLiteral(displayFile), f.createNumericLiteral(line + 1), f.createNumericLiteral(character + 1), callee]);
      return f.updateCallExpression(n, wrapped, n.typeArguments, n.arguments);
    };
    return ts.visitNode(sf, visit) as TS.SourceFile;
  };
}

/** Transpiles one source file to CommonJS with its calls and throws wrapped with their places (runs nothing). */
function transpileFile(display: string, abs: string, src: string): TranspiledModel {
  const sf0 = ts.createSourceFile(display, src, ts.ScriptTarget.ES2022, true);
  const out = ts.transpileModule(src, {
    fileName: display,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, sourceMap: true },
    transformers: { before: [locTransformer(display, sf0)] },
  });
  // V8 ignores a sourceURL with whitespace in it: name the code by a hash of its path instead
  const url = `lpc-model-${createHash('sha256').update(abs).digest('hex').slice(0, 16)}.js`;
  const code = out.outputText.replace(/\/\/# sourceMappingURL=.*\s*$/, '') + `\n//# sourceURL=${url}`;
  return { file: display, code, sourceMap: out.sourceMapText!, url };
}

/** Transpiles a model file and the local modules it imports (pure: runs nothing). */
export function transpileModel(file: string): ModelProject {
  const p = gatherProject(file);
  const modules: Record<string, TranspiledModel> = {};
  for (const f of p.files) modules[f.key] = transpileFile(f.display, f.abs, f.text);
  return { entry: p.files[0].key, modules };
}

/** Runs a model file in this process and returns its default-exported model (runtime/sandbox runs it in a child). */
export function loadModel(file: string): dsl.ModelDef {
  return evalModel(transpileModel(file));
}

/** Type-check, load and trace: the front end in one call. */
export function frontEnd(file: string, batch: number, options: dsl.ModelOptions = {}): Module {
  checkModelOptions(options);
  typeCheck(file);
  return traceModel(loadModel(file), batch, options);
}
