/**
 * Where in a model file an error thrown by the model's own code happened (a `throw`, a TypeError, a stack
 * overflow): the model runs as transpiled code, so the stack's first frame in it is mapped back through the
 * transpiler's source map to the .ts file's line and column.
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Source-map `mappings` → per generated line, [generated col, source line, source col] (all 0-based). */
function decodeMappings(mappings: string): [number, number, number][][] {
  const lines: [number, number, number][][] = [];
  let srcLine = 0, srcCol = 0;
  for (const lineText of mappings.split(';')) {
    const segs: [number, number, number][] = [];
    let genCol = 0;
    for (const seg of lineText.split(',')) {
      if (!seg) continue;
      const v: number[] = [];
      let value = 0, shift = 0;
      for (const ch of seg) {
        const d = B64.indexOf(ch);
        value += (d & 31) << shift;
        if (d & 32) { shift += 5; continue; }
        v.push(value & 1 ? -(value >>> 1) : value >>> 1);
        value = 0; shift = 0;
      }
      genCol += v[0];
      if (v.length >= 4) { srcLine += v[2]; srcCol += v[3]; segs.push([genCol, srcLine, srcCol]); }
    }
    lines.push(segs);
  }
  return lines;
}

/** new Function puts its own two-line header before the body, which the stack's line numbers count. */
const FUNCTION_HEADER_LINES = 2;

/** One transpiled module as the stack sees it: its sourceURL, its source map and the file name to show. */
export interface MappedModule { url: string; sourceMap: string; file: string }

/**
 * A mapper for modules run with `//# sourceURL=<url>` by new Function: given an error, `file:line:col` (1-based) in
 * the source of the first stack frame inside any of them, or undefined when none is.
 */
export function stackPlace(modules: MappedModule[]): (e: unknown) => string | undefined {
  const byUrl = new Map(modules.map((m) => [m.url, { file: m.file, lines: decodeMappings(JSON.parse(m.sourceMap).mappings as string) }]));
  const esc = (u: string) => u.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const frame = new RegExp(`(${modules.map((m) => esc(m.url)).join('|')}):(\\d+):(\\d+)`);
  return (e) => {
    const m = e instanceof Error && typeof e.stack === 'string' && modules.length ? frame.exec(e.stack) : null;
    if (!m) return undefined;
    const mod = byUrl.get(m[1])!;
    const genLine = Number(m[2]) - 1 - FUNCTION_HEADER_LINES, genCol = Number(m[3]) - 1;
    const segs = mod.lines[genLine];
    if (!segs?.length) return undefined;
    let best = segs[0];
    for (const s of segs) if (s[0] <= genCol) best = s;
    return `${mod.file}:${best[1] + 1}:${best[2] + 1}`;
  };
}
