/**
 * Structure of the precision-spec language (chevrotain CstParser with error recovery). The grammar is deliberately
 * generic — names are plain identifiers — so that ./policy.ts can give precise, hinted messages ("unknown format
 * 'bpf'; expected …") instead of "expecting token X".
 *
 *   spec    := segment (';' segment)*
 *   segment := item*
 *   item    := Ident ('=' value (':' Ident)?)?        W=bfp<8>:stochastic | schedule | fwd=cyclic(3,8) | save=…
 *   value   := Ident ('<' args '>' | '(' args? ')')? | Number      loss_scale=1000 | loss_scale=0.5
 *   args    := arg (',' arg)*
 *   arg     := Int | Ident ('=' (Int | Ident))?        mx<e4m3,scale=ceil>
 */
import { createToken, CstNode, CstParser, IParserErrorMessageProvider, IToken, Lexer, TokenType } from '../chevrotain.js';

const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: Lexer.SKIPPED });
export const Ident = createToken({ name: 'Ident', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });
export const Int = createToken({ name: 'Int', pattern: /-?\d+/, label: 'an integer' });
/** A number with a fraction or an exponent (`0.5`, `1e3`); plain integers lex as Int. */
export const Decimal = createToken({ name: 'Decimal', pattern: /-?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+/, label: 'a number' });
const Semi = createToken({ name: 'Semi', pattern: /;/, label: "';'" });
const Eq = createToken({ name: 'Eq', pattern: /=/, label: "'='" });
const Colon = createToken({ name: 'Colon', pattern: /:/, label: "':'" });
const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
const LAngle = createToken({ name: 'LAngle', pattern: /</, label: "'<'" });
const RAngle = createToken({ name: 'RAngle', pattern: />/, label: "'>'" });
const LParen = createToken({ name: 'LParen', pattern: /\(/, label: "'('" });
const RParen = createToken({ name: 'RParen', pattern: /\)/, label: "')'" });

const allTokens = [WhiteSpace, Comment, Ident, Decimal, Int, Semi, Eq, Colon, Comma, LAngle, RAngle, LParen, RParen];
export const specLexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });

const show = (t: IToken) => (t.tokenType.name === 'EOF' ? 'end of input' : `'${t.image}'`);
const label = (t: TokenType) => t.LABEL ?? t.name;
const firsts = (paths: TokenType[][]) => {
  const labels = new Set(paths.map((p) => label(p[0])));
  if (labels.has(label(Decimal))) labels.delete(label(Int)); // "a number" covers "an integer"
  return [...labels].join(' or ');
};

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual }) => `expected ${label(expected)} but found ${show(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `unexpected ${show(firstRedundant)}`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual }) =>
    `expected ${firsts(expectedPathsPerAlt.flat())} but found ${show(actual[0])}`,
  buildEarlyExitMessage: ({ expectedIterationPaths, actual }) =>
    `expected ${firsts(expectedIterationPaths)} but found ${show(actual[0])}`,
};

class SpecParser extends CstParser {
  constructor() {
    super(allTokens, { recoveryEnabled: true, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  spec = this.RULE('spec', () => {
    this.SUBRULE(this.segment);
    this.MANY(() => {
      this.CONSUME(Semi);
      this.SUBRULE2(this.segment);
    });
  });

  segment = this.RULE('segment', () => {
    this.MANY(() => this.SUBRULE(this.item));
  });

  item = this.RULE('item', () => {
    this.CONSUME(Ident, { LABEL: 'key' });
    this.OPTION(() => {
      this.CONSUME(Eq);
      this.SUBRULE(this.value);
      this.OPTION2(() => {
        this.CONSUME(Colon);
        this.CONSUME2(Ident, { LABEL: 'rounding' });
      });
    });
  });

  value = this.RULE('value', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.named) },
      { ALT: () => this.CONSUME(Int, { LABEL: 'number' }) },
      { ALT: () => this.CONSUME(Decimal, { LABEL: 'number' }) },
    ]);
  });

  named = this.RULE('named', () => {
    this.CONSUME(Ident, { LABEL: 'name' });
    this.OPTION(() =>
      this.OR([
        {
          ALT: () => {
            this.CONSUME(LAngle);
            this.SUBRULE(this.args, { LABEL: 'angle' });
            this.CONSUME(RAngle);
          },
        },
        {
          ALT: () => {
            this.CONSUME(LParen);
            this.OPTION2(() => this.SUBRULE2(this.args, { LABEL: 'paren' }));
            this.CONSUME(RParen);
          },
        },
      ]),
    );
  });

  args = this.RULE('args', () => {
    this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.arg) });
  });

  arg = this.RULE('arg', () => {
    this.OR([
      { ALT: () => this.CONSUME(Int) },
      {
        ALT: () => {
          this.CONSUME(Ident);
          this.OPTION(() => {
            this.CONSUME(Eq);
            this.OR2([
              { ALT: () => this.CONSUME2(Int, { LABEL: 'value' }) },
              { ALT: () => this.CONSUME2(Ident, { LABEL: 'nameValue' }) },
            ]);
          });
        },
      },
    ]);
  });
}

const parser = new SpecParser();

/** A diagnostic at a 1-based line and column. */
export interface SpecDiagnostic { line: number; col: number; message: string }

/** Lexes and parses; syntax errors are recovered from, so several can be reported at once. */
export function parseSpecCst(text: string): { cst: CstNode; errors: SpecDiagnostic[] } {
  const lines = text.split('\n');
  const end = { line: lines.length, col: lines[lines.length - 1].length + 1 };
  const lexed = specLexer.tokenize(text);
  const errors: SpecDiagnostic[] = lexed.errors.map((e) => ({
    line: e.line ?? end.line,
    col: e.column ?? end.col,
    message: `unexpected character '${text.substr(e.offset, e.length)}'`,
  }));
  parser.input = lexed.tokens;
  const cst = parser.spec();
  for (const e of parser.errors) {
    const t = e.token;
    const at = Number.isFinite(t.startLine) && t.tokenType.name !== 'EOF' ? { line: t.startLine!, col: t.startColumn! } : end;
    errors.push({ ...at, message: e.message });
  }
  errors.sort((a, b) => a.line - b.line || a.col - b.col);
  return { cst, errors };
}
