/**
 * chevrotain, loaded from the single-file ESM bundle its package ships (lib/chevrotain.mjs: the same code and
 * version) rather than its package entry, which imports ~650 lodash-es modules and costs ≈0.5 s at every CLI start.
 * The package's `exports` hide the bundle, so it is found next to the entry; types come from the package.
 * If a later chevrotain drops the bundle, the package entry is used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type * as Chevrotain from 'chevrotain';

const entry = createRequire(import.meta.url).resolve('chevrotain'); // <package>/lib/src/api.js
const bundle = path.join(path.dirname(entry), '..', 'chevrotain.mjs');
const c = (fs.existsSync(bundle) ? await import(pathToFileURL(bundle).href) : await import('chevrotain')) as typeof Chevrotain;

export const { createToken, CstParser, Lexer, tokenMatcher, VERSION } = c;
export type CstParser = Chevrotain.CstParser;
export type Lexer = Chevrotain.Lexer;
export type { CstNode, IParserErrorMessageProvider, IToken, TokenType } from 'chevrotain';
