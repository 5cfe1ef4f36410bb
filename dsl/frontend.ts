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
import { checkModelOptions, evalModel, traceModel, TranspiledModel } from './model-run.js';

export { checkModelOptions, traceModel } from './model-run.js';
export type { TranspiledModel } from './model-run.js';

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

/** The marker file that records a passed type-check of `file` as it is now, or undefined if it is not cacheable. */
export function typeCheckMarker(file: string): string | undefined {
  const key = typeCheckKey(fs.readFileSync(file, 'utf8'), dslTypesPath());
  return key && path.join(typeCheckCacheDir(), key);
}

function typeCheckKey(src: string, dslPath: string): string | undefined {
  if (!dslPath.endsWith('.d.ts')) return undefined; // the DSL sources import more files: no cache
  const pre = ts.preProcessFile(src, true, true);
  if (pre.referencedFiles.length || pre.typeReferenceDirectives.length || pre.libReferenceDirectives.length ||
    pre.importedFiles.some((f) => f.fileName !== 'lpc/dsl')) return undefined;
  const h = createHash('sha256');
  for (const part of [ts.version, JSON.stringify(compilerOptions), fs.readFileSync(dslPath, 'utf8'), src]) h.update(part).update('\0');
  return h.digest('hex');
}

/** Type-checks a model file; throws DiagnosticsError listing every diagnostic. `cache: false` always checks. */
export function typeCheck(file: string, o: { cache?: boolean } = {}): void {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new Error(`${file}: no such model file`);
  if (fs.statSync(abs).isDirectory()) throw new Error(`${file}: is a directory, not a model file`);
  const dslPath = dslTypesPath();
  const marker = o.cache === false ? undefined : typeCheckMarker(abs);
  if (marker && fs.existsSync(marker)) return;
  // before TypeScript, whose diagnostic for another module would advise installing its type definitions
  dslImports(ts.createSourceFile(file, fs.readFileSync(abs, 'utf8'), ts.ScriptTarget.ES2022, true));
  const host = ts.createCompilerHost(compilerOptions);
  host.resolveModuleNames = (names, containing) => names.map((n) => {
    if (n === 'lpc/dsl') return { resolvedFileName: dslPath, extension: dslPath.endsWith('.d.ts') ? ts.Extension.Dts : ts.Extension.Ts };
    return ts.resolveModuleName(n, containing, compilerOptions, host).resolvedModule;
  });
  const program = ts.createProgram([abs], compilerOptions, host);
  const diags = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (diags.length) {
    const name = (f: string) => (path.resolve(f) === abs ? file : path.relative(process.cwd(), f));
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
    const spec = st.moduleSpecifier.text;
    if (spec !== 'lpc/dsl') {
      const { line, character } = sf.getLineAndCharacterOfPosition(st.moduleSpecifier.getStart(sf));
      throw new Error(`${sf.fileName}:${line + 1}:${character + 1}: a model may import only 'lpc/dsl', not '${spec}'`);
    }
    const b = st.importClause?.namedBindings;
    if (b && ts.isNamedImports(b)) for (const e of b.elements) names.add(e.name.text);
    if (b && ts.isNamespaceImport(b)) namespaces.add(b.name.text);
  }
  return { names, namespaces };
}

/** Rewrites `f(args)` for every DSL function f into `__lpc_at(file, line, col, f)(args)`, and `throw v` into
 *  `throw __lpc_throw(file, line, col, v)` (dsl/model-run.ts lpcThrow). */
function locTransformer(displayFile: string, sf0: TS.SourceFile): TS.TransformerFactory<TS.SourceFile> {
  const { names, namespaces } = dslImports(sf0);
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
      if (!ts.isCallExpression(n)) return n;
      const callee = n.expression;
      const isDsl = (ts.isIdentifier(callee) && names.has(callee.text)) ||
        (ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && namespaces.has(callee.expression.text));
      const orig = ts.getOriginalNode(n);
      if (!isDsl || orig.pos < 0) return n;
      const { line, character } = sf0.getLineAndCharacterOfPosition(orig.getStart(sf0));
      const wrapped = f.createCallExpression(f.createIdentifier('__lpc_at'), undefined, [
        f.createStringLiteral(displayFile), f.createNumericLiteral(line + 1), f.createNumericLiteral(character + 1), callee]);
      return f.updateCallExpression(n, wrapped, n.typeArguments, n.arguments);
    };
    return ts.visitNode(sf, visit) as TS.SourceFile;
  };
}

/** Transpiles a model file to CommonJS with its DSL calls and throws wrapped with their places (pure: runs nothing). */
export function transpileModel(file: string): TranspiledModel {
  const src = fs.readFileSync(file, 'utf8');
  const sf0 = ts.createSourceFile(file, src, ts.ScriptTarget.ES2022, true);
  const out = ts.transpileModule(src, {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, sourceMap: true },
    transformers: { before: [locTransformer(file, sf0)] },
  });
  // V8 ignores a sourceURL with whitespace in it: name the code by a hash of its path instead
  const url = `lpc-model-${createHash('sha256').update(path.resolve(file)).digest('hex').slice(0, 16)}.js`;
  const code = out.outputText.replace(/\/\/# sourceMappingURL=.*\s*$/, '') + `\n//# sourceURL=${url}`;
  return { file, code, sourceMap: out.sourceMapText!, url };
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
