/**
 * `lpc compile` + `lpc inspect --ir` on MobileNetV2 (small input, through the built bin/lpc.js): its new ops are
 * fused with their epilogues and quantizers. Counts come from the architecture (torchvision's MobileNetV2: a stem
 * conv + BN + ReLU6, 17 inverted residual blocks of which the first has no expansion layer, each with one depthwise
 * 3×3 conv + BN + ReLU6, and a last 1×1 conv + BN + ReLU6), not from a compiled run: 17 depthwise convs, 1 + 16 + 17 + 1 = 35
 * ReLU6 in one forward.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-zoo-inspect-'));
function lpc(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`lpc ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const DEPTHWISE = 17, RELU6 = 1 + 16 + 17 + 1; // stem, expansion layers, depthwise convs, last conv
const PRECISION = 'W=bfp<8,axis=0>:stochastic A=bfp<8> E=bfp<8>:stochastic G=bfp<8>:stochastic M=bfp<8>';

/** The IR lines of each graph of an artifact, from `lpc inspect --ir`. */
function graphs(precision?: string): Record<string, string[]> {
  const out = path.join(tmp, precision ? 'q.lpc' : 'f32.lpc');
  lpc(['compile', 'models/mobilenetv2.ts', '-o', out, '--batch', '2', '--input', '3x8x8', ...(precision ? ['--precision', precision] : [])]);
  const text = lpc(['inspect', out, '--ir']);
  const res: Record<string, string[]> = {};
  for (const m of text.matchAll(/^graph @(\w+) \{\n([\s\S]*?)\n\}/gm)) res[m[1]] = m[2].split('\n');
  return res;
}
const nodes = (lines: string[], op: string) => lines.filter((l) => new RegExp(`^\\s*%\\d+ = ${op}\\(`).test(l));

describe('lpc inspect on a compiled MobileNetV2', () => {
  test('quantized: depthwise convs carry their quantizers as epilogues, ReLU6 and its backward follow a quantizer (qpost); no quantize node is left', () => {
    const g = graphs(PRECISION);
    expect(Object.keys(g).sort()).toEqual(['eval', 'train']);
    for (const lines of Object.values(g)) {
      expect(nodes(lines, 'quantize')).toEqual([]);
      const grouped = lines.filter((l) => /= conv2d(_bwd_data|_bwd_weight)?\(.*groups=/.test(l));
      expect(grouped.length).toBeGreaterThanOrEqual(DEPTHWISE);
      for (const l of grouped) expect(l).toMatch(/epilogue\{.*q=bfp<8/);
    }
    const ev = g.eval;
    expect(ev.filter((l) => /= conv2d\(.*groups=/.test(l))).toHaveLength(DEPTHWISE);
    // relu6 of a bfp<8> value stays on its grid (ir/quant/grid.ts): relu6's own quantizer is an identity, dropped, and
    // relu6 applies after its batch norm's quantizer (qpost): no relu6 kernel is left
    expect(nodes(ev, 'relu6')).toEqual([]);
    const bnQ6 = /epilogue\{q=bfp<8,tensor>, rounding=nearest, role="A", qpost=relu6\(x\)\}/;
    expect(nodes(ev, 'bn_apply').filter((l) => bnQ6.test(l))).toHaveLength(RELU6);
    // Training: each forward depthwise conv quantized by A, each ReLU6 after its batch norm's quantizer; ReLU6's
    // backward after the quantizer of the kernel producing the error (E, stochastic), reading the forward's output
    const tr = g.train;
    expect(tr.filter((l) => /= conv2d\(.*groups=.*role="A"/.test(l))).toHaveLength(DEPTHWISE);
    expect(nodes(tr, 'bn_apply').filter((l) => bnQ6.test(l))).toHaveLength(RELU6);
    const bwd = tr.filter((l) => /epilogue\{args=1, q=bfp<8,tensor>, rounding=stochastic, role="E", qpost=relu6_bwd\(x,\$0\)\}/.test(l));
    expect(bwd).toHaveLength(RELU6);
    expect(nodes(tr, 'relu6')).toEqual([]);
    expect(nodes(tr, 'relu6_bwd')).toEqual([]);
  });

  test('f32: every ReLU6 is a post-op of its batch norm, none runs alone', () => {
    const g = graphs();
    for (const lines of Object.values(g)) expect(nodes(lines, 'relu6')).toEqual([]);
    expect(nodes(g.eval, 'bn_apply').filter((l) => l.includes('epilogue{post=relu6(x)}'))).toHaveLength(RELU6);
    expect(nodes(g.train, 'bn_apply').filter((l) => l.includes('post=relu6(x)')).length).toBeGreaterThanOrEqual(RELU6);
  });
});
