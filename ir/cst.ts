/** Reading chevrotain's concrete syntax trees (ir/parse.ts, ir/parse-epilogue.ts): a rule's tokens and subrules by label. */
import type { CstNode, IToken } from './chevrotain.js';

type Children = Record<string, (CstNode | IToken)[]>;
const kids = (n: CstNode): Children => n.children as Children;
export const tok = (n: CstNode | undefined, k: string, i = 0) => (n ? (kids(n)[k]?.[i] as IToken | undefined) : undefined);
export const toks = (n: CstNode | undefined, k: string) => (n ? ((kids(n)[k] ?? []) as IToken[]) : []);
export const sub = (n: CstNode | undefined, k: string, i = 0) => (n ? (kids(n)[k]?.[i] as CstNode | undefined) : undefined);
export const subs = (n: CstNode | undefined, k: string) => (n ? ((kids(n)[k] ?? []) as CstNode[]) : []);

/** The tokens of a CST subtree, in text order. */
export function tokensOf(n: CstNode): IToken[] {
  const out: IToken[] = [];
  for (const v of Object.values(n.children)) for (const c of v as (CstNode | IToken)[]) out.push(...('children' in c ? tokensOf(c) : [c]));
  return out.sort((a, b) => a.startOffset - b.startOffset);
}
