/**
 * The IR text's grammar: its tokens and one chevrotain parser for a line of it (ir/parse.ts reads the lines in
 * order and gives them meaning). Recovery is on, so one parse reports every broken line.
 *
 *   header   := 'lpc.ir' Number
 *   module   := 'module' String
 *   graph    := 'graph' GraphName '{'   …node and result lines…   '}'
 *   node     := ValueId '=' Ident operands? attrs? epilogue? ':' type loc?
 *   result   := ('output' | 'update') String '=' ValueId
 *   operands := '(' (ValueId (',' ValueId)*)? ')'
 *   attrs    := '{' (Ident '=' value (',' Ident '=' value)*)? '}'
 *   value    := Number | String | ints | format          (format also covers true / false)
 *   ints     := '[' (Number (',' Number)*)? ']'
 *   format   := Ident ('<' fmtArg (',' fmtArg)* '>')?
 *   fmtArg   := Number | Ident ('=' (Number | Ident))?
 *   type     := 'tensor' '<' ints ',' Ident (',' format)? '>'
 *   loc      := 'loc' '(' String ':' Number ':' Number ')'
 *   epilogue := 'epilogue' '{' (field (',' field)*)? '}'             (ir/epilogue.ts; print.ts printEpilogue)
 *   field    := Ident '=' (Number | String | term)
 *   term     := PostArg | Ident ('<' fmtArg (',' fmtArg)* '>' | postAttrs? '(' term (',' term)* ')')?
 *   postAttrs:= '{' (Ident '=' (Number | Ident) (',' …)*)? '}'
 *
 * A term is a post expression (`relu(add(x,$0))`, `scale{c=0.5}(x)`) or a format (`bfp<8,axis=0>`) or a bare name
 * (`stochastic`); the field's key says which it must be (ir/parse-epilogue.ts).
 */
import { createToken, CstParser, IParserErrorMessageProvider, IToken, Lexer, TokenType } from './chevrotain.js';
import { IR_HEADER } from './print.js';

// ---------- tokens ----------
const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED, line_breaks: true });
const Comment = createToken({ name: 'Comment', pattern: /\/\/[^\r\n]*/, group: Lexer.SKIPPED });
const Ident = createToken({ name: 'Ident', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });
// Keywords are also names (category Ident), so an op or attribute could still be called `loc`.
const keyword = (word: string) =>
  createToken({ name: `Kw_${word}`, pattern: new RegExp(word), longer_alt: Ident, categories: [Ident], label: `'${word}'` });
export const ModuleKw = keyword('module');
export const GraphKw = keyword('graph');
export const OutputKw = keyword('output');
export const UpdateKw = keyword('update');
const TensorKw = keyword('tensor');
const LocKw = keyword('loc');
const EpilogueKw = keyword('epilogue');
export const Header = createToken({ name: 'Header', pattern: /lpc\.ir/, label: `'${IR_HEADER}'` });
// Everything String(n) can print: 64, -0, 0.1, 1e-7, 1.5e+300, Infinity, NaN.
const Num = createToken({
  name: 'Num', pattern: /-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|Infinity)|NaN/, longer_alt: Ident, label: 'a number',
});
export const ValueId = createToken({ name: 'ValueId', pattern: /%\d+/, label: "a value ('%n')" });
const PostArg = createToken({ name: 'PostArg', pattern: /\$\d+/, label: "an extra operand ('$k')" });
// A JSON string on one line (what JSON.stringify writes), so JSON.parse reads every one back: no raw control
// characters (a tab, say), which JSON.parse rejects.
const JSON_STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.source;
const Str = createToken({ name: 'Str', pattern: new RegExp(JSON_STRING), label: 'a string' });
const GraphName = createToken({ name: 'GraphName', pattern: new RegExp(`@(?:[A-Za-z_][\\w.-]*|${JSON_STRING})`), label: "a graph name ('@name')" });
const punct = (name: string, ch: string) => createToken({ name, pattern: new RegExp(ch.replace(/[[\](){}]/, '\\$&')), label: `'${ch}'` });
const Eq = punct('Eq', '='), Colon = punct('Colon', ':'), Comma = punct('Comma', ',');
const LAngle = punct('LAngle', '<'), RAngle = punct('RAngle', '>'), LParen = punct('LParen', '('), RParen = punct('RParen', ')');
export const LSquare = punct('LSquare', '['), RSquare = punct('RSquare', ']'), LCurly = punct('LCurly', '{'), RCurly = punct('RCurly', '}');

const allTokens = [
  WhiteSpace, Comment, Header, ModuleKw, GraphKw, OutputKw, UpdateKw, TensorKw, LocKw, EpilogueKw, Num, Ident, ValueId, PostArg, GraphName, Str,
  Eq, Colon, Comma, LAngle, RAngle, LParen, RParen, LSquare, RSquare, LCurly, RCurly,
];
export const irLexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });

// ---------- grammar (one line at a time) ----------
export const show = (t: IToken) => (t.tokenType.name === 'EOF' ? 'end of line' : `'${t.image}'`);
const label = (t: TokenType) => t.LABEL ?? t.name;
const firsts = (paths: TokenType[][]) => [...new Set(paths.map((p) => label(p[0])))].join(' or ');

/** Where a rule expects a plain name, say which name it wants. */
const NAME_IN_RULE: Record<string, string> = {
  nodeLine: 'an op name', attr: 'an attribute name', type: 'a dtype (f32, i32 or u32)', format: 'a format name',
  epiField: 'an epilogue field (post, args, q, rounding, role, qpost)', term: "x, '$k', an elementwise op or a format",
  postAttr: 'an attribute name',
};
const expectedIn = (t: TokenType, rule: string) => (t === Ident ? NAME_IN_RULE[rule] : undefined) ?? label(t);

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual, ruleName }) => `expected ${expectedIn(expected, ruleName)} but found ${show(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `unexpected ${show(firstRedundant)}`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual }) =>
    `expected ${firsts(expectedPathsPerAlt.flat())} but found ${show(actual[0])}`,
  buildEarlyExitMessage: ({ expectedIterationPaths, actual }) =>
    `expected ${firsts(expectedIterationPaths)} but found ${show(actual[0])}`,
};

class IrLineParser extends CstParser {
  constructor() {
    super(allTokens, { recoveryEnabled: true, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  headerLine = this.RULE('headerLine', () => {
    this.CONSUME(Header);
    this.CONSUME(Num, { LABEL: 'version' });
  });

  moduleLine = this.RULE('moduleLine', () => {
    this.CONSUME(ModuleKw);
    this.CONSUME(Str);
  });

  graphLine = this.RULE('graphLine', () => {
    this.CONSUME(GraphKw);
    this.CONSUME(GraphName);
    this.CONSUME(LCurly);
  });

  closeLine = this.RULE('closeLine', () => {
    this.CONSUME(RCurly);
  });

  resultLine = this.RULE('resultLine', () => {
    this.OR([{ ALT: () => this.CONSUME(OutputKw, { LABEL: 'kind' }) }, { ALT: () => this.CONSUME(UpdateKw, { LABEL: 'kind' }) }]);
    this.CONSUME(Str);
    this.CONSUME(Eq);
    this.CONSUME(ValueId);
  });

  nodeLine = this.RULE('nodeLine', () => {
    this.CONSUME(ValueId, { LABEL: 'id' });
    this.CONSUME(Eq);
    this.CONSUME(Ident, { LABEL: 'op' });
    this.OPTION(() => this.SUBRULE(this.operands));
    this.OPTION2(() => this.SUBRULE(this.attrs));
    this.OPTION4(() => this.SUBRULE(this.epilogue));
    this.CONSUME(Colon);
    this.SUBRULE(this.type);
    this.OPTION3(() => this.SUBRULE(this.loc));
  });

  operands = this.RULE('operands', () => {
    this.CONSUME(LParen);
    this.MANY_SEP({ SEP: Comma, DEF: () => this.CONSUME(ValueId) });
    this.CONSUME(RParen);
  });

  attrs = this.RULE('attrs', () => {
    this.CONSUME(LCurly);
    this.MANY_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.attr) });
    this.CONSUME(RCurly);
  });

  attr = this.RULE('attr', () => {
    this.CONSUME(Ident, { LABEL: 'key' });
    this.CONSUME(Eq);
    this.SUBRULE(this.value);
  });

  value = this.RULE('value', () => {
    this.OR([
      { ALT: () => this.CONSUME(Num) },
      { ALT: () => this.CONSUME(Str) },
      { ALT: () => this.SUBRULE(this.ints) },
      { ALT: () => this.SUBRULE(this.format) },
    ]);
  });

  ints = this.RULE('ints', () => {
    this.CONSUME(LSquare);
    this.MANY_SEP({ SEP: Comma, DEF: () => this.CONSUME(Num) });
    this.CONSUME(RSquare);
  });

  format = this.RULE('format', () => {
    this.CONSUME(Ident, { LABEL: 'name' });
    this.OPTION(() => {
      this.CONSUME(LAngle);
      this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.fmtArg) });
      this.CONSUME(RAngle);
    });
  });

  fmtArg = this.RULE('fmtArg', () => {
    this.OR([
      { ALT: () => this.CONSUME(Num) },
      {
        ALT: () => {
          this.CONSUME(Ident);
          this.OPTION(() => {
            this.CONSUME(Eq);
            this.OR2([
              { ALT: () => this.CONSUME2(Num, { LABEL: 'value' }) },
              { ALT: () => this.CONSUME2(Ident, { LABEL: 'nameValue' }) }, // mx<e4m3,scale=ceil>
            ]);
          });
        },
      },
    ]);
  });

  type = this.RULE('type', () => {
    this.CONSUME(TensorKw, { LABEL: 'tensor' });
    this.CONSUME(LAngle);
    this.SUBRULE(this.ints);
    this.CONSUME(Comma);
    this.CONSUME(Ident, { LABEL: 'dtype' });
    this.OPTION(() => {
      this.CONSUME2(Comma);
      this.SUBRULE(this.format);
    });
    this.CONSUME(RAngle);
  });

  epilogue = this.RULE('epilogue', () => {
    this.CONSUME(EpilogueKw);
    this.CONSUME(LCurly);
    this.MANY_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.epiField) });
    this.CONSUME(RCurly);
  });

  epiField = this.RULE('epiField', () => {
    this.CONSUME(Ident, { LABEL: 'key' });
    this.CONSUME(Eq);
    this.OR([
      { ALT: () => this.CONSUME(Num) },
      { ALT: () => this.CONSUME(Str) },
      { ALT: () => this.SUBRULE(this.term) },
    ]);
  });

  /** A post expression, a format or a bare name (labels as in `format`, so ModuleReader.format reads one). */
  term = this.RULE('term', () => {
    this.OR([
      { ALT: () => this.CONSUME(PostArg) },
      {
        ALT: () => {
          this.CONSUME(Ident, { LABEL: 'name' });
          this.OPTION(() => this.OR2([
            {
              ALT: () => {
                this.CONSUME(LAngle);
                this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.fmtArg) });
                this.CONSUME(RAngle);
              },
            },
            {
              ALT: () => {
                this.OPTION2(() => this.SUBRULE(this.postAttrs));
                this.CONSUME(LParen);
                this.AT_LEAST_ONE_SEP2({ SEP: Comma, DEF: () => this.SUBRULE(this.term) });
                this.CONSUME(RParen);
              },
            },
          ]));
        },
      },
    ]);
  });

  postAttrs = this.RULE('postAttrs', () => {
    this.CONSUME(LCurly);
    this.MANY_SEP({ SEP: Comma, DEF: () => this.SUBRULE(this.postAttr) });
    this.CONSUME(RCurly);
  });

  postAttr = this.RULE('postAttr', () => {
    this.CONSUME(Ident, { LABEL: 'key' });
    this.CONSUME(Eq);
    this.OR([{ ALT: () => this.CONSUME(Num) }, { ALT: () => this.CONSUME2(Ident, { LABEL: 'bool' }) }]);
  });

  loc = this.RULE('loc', () => {
    this.CONSUME(LocKw);
    this.CONSUME(LParen);
    this.CONSUME(Str);
    this.CONSUME(Colon);
    this.CONSUME(Num, { LABEL: 'line' });
    this.CONSUME2(Colon);
    this.CONSUME2(Num, { LABEL: 'col' });
    this.CONSUME(RParen);
  });
}

export const parser = new IrLineParser();
export type LineRule = 'headerLine' | 'moduleLine' | 'graphLine' | 'closeLine' | 'resultLine' | 'nodeLine';
