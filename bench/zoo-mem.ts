/**
 * `npm run build && node dist/bench/zoo-mem.js [--only name,name] [--concat]`: the model zoo's training memory with
 * and without DIVISION, through the real CLI (`node bin/lpc.js mem <model> --batch N [--input CxHxW] --json
 * [--precision 'save=division(block=8,bits=2)']`, default optimizer: SGD with momentum), as a markdown table.
 *
 * `--concat [--batch N] [--precision SPEC]` adds what DenseNet-121's concatenations cost (default b64, 3×32×32, f32): it compiles the model in-process as
 * `lpc mem` does and reads the train graph's memory plan — the concat outputs' bytes (each written once per step by
 * a copy that also reads its inputs; the gradient's slices copy the same bytes back), how many of them are saved
 * activations, and how many bytes are live at the plan's peak — against what one buffer per dense block (the block's
 * final concatenation, every earlier one a channel-range view of it) would hold.
 *
 * `--saved MODEL [--batch N] [--input CxHxW] [--precision SPEC]`: the train graph's saved activations grouped by the
 * op that stores them and the map size (H×W) of the value saved, with the f32 bytes of that value and the ratio.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Flags } from './common.js';

const f = new Flags();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIVISION = 'save=division(block=8,bits=2)';

/** The zoo models added by issue 28, at a batch size their papers (or reference repositories) train with. */
const ROWS: { name: string; batch: number; input?: string; why: string }[] = [
  { name: 'mobilenetv2', batch: 128, why: 'kuangliu/pytorch-cifar' },
  { name: 'resnet110', batch: 128, why: 'He et al. (CIFAR)' },
  { name: 'resnet164', batch: 128, why: 'DIVISION, He et al.' },
  { name: 'preresnet164', batch: 128, why: 'SWALP' },
  { name: 'wrn', batch: 128, why: 'Zagoruyko & Komodakis' },
  { name: 'densenet121', batch: 64, why: 'Huang et al. (CIFAR)' },
  { name: 'resnet34', batch: 32, input: '3x64x64', why: 'small-input run' },
  { name: 'resnet50', batch: 32, input: '3x64x64', why: 'small-input run' },
  { name: 'densenet161', batch: 32, input: '3x64x64', why: 'small-input run' },
];

interface MemJson { peak_bytes: number; saved_activations_bytes: number; live_peak_bytes: number }

function lpcMem(name: string, batch: number, input: string | undefined, precision?: string): MemJson {
  const args = [path.join(root, 'bin', 'lpc.js'), 'mem', path.join(root, 'models', `${name}.ts`), '--batch', String(batch),
    ...(input ? ['--input', input] : []), ...(precision ? ['--precision', precision] : []), '--json'];
  return JSON.parse(execFileSync(process.execPath, args, { cwd: root, maxBuffer: 1 << 28, encoding: 'utf8' })) as MemJson;
}

const mb = (b: number) => (b / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const only = f.str('--only')?.split(',');

if ((!f.has('--concat') && !f.has('--saved')) || only) {
  const lines = [
    '| model | batch | input | peak f32 (MB) | peak DIVISION (MB) | ratio | saved activations f32 (MB) | saved DIVISION (MB) | ratio |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of ROWS.filter((r) => !only || only.includes(r.name))) {
    const a = lpcMem(r.name, r.batch, r.input), d = lpcMem(r.name, r.batch, r.input, DIVISION);
    const row = `| ${r.name} | ${r.batch} | ${(r.input ?? '3x32x32').replace(/x/g, '×')} | ${mb(a.peak_bytes)} | ${mb(d.peak_bytes)} | ` +
      `${(a.peak_bytes / d.peak_bytes).toFixed(2)}× | ${mb(a.saved_activations_bytes)} | ${mb(d.saved_activations_bytes)} | ` +
      `${(a.saved_activations_bytes / d.saved_activations_bytes).toFixed(1)}× |`;
    lines.push(row);
    process.stderr.write(row + '\n');
  }
  process.stdout.write(lines.join('\n') + '\n');
}

if (f.has('--concat')) {
  const { compileModel } = await import('../runtime/cli/compile.js');
  const { parseOptimizer } = await import('../passes/optimizer.js');
  const { planModule } = await import('../runtime/memory.js');
  const { checkFits, lpcCapacity } = await import('../runtime/fit.js');
  const { batchHint, DEFAULT_OPTIMIZER } = await import('../runtime/cli/compile.js');
  const { numel } = await import('../ir/types.js');
  const { parsePolicy } = await import('../ir/precision/index.js');
  const batch = f.int('--batch', 64), spec = f.str('--precision');
  const m = compileModel(path.join(root, 'models', 'densenet121.ts'), { batch, optimizer: parseOptimizer(DEFAULT_OPTIMIZER), modelOptions: {}, ...(spec ? { precision: parsePolicy(spec) } : {}) });
  const plan = planModule(m, 'cpu-driver', checkFits(m, lpcCapacity(), 'cpu-driver', batchHint(batch)));
  const gi = m.graphs.findIndex((g) => g.name === 'train');
  const g = m.graphs[gi], p = plan.graphs[gi];
  const concats = g.nodes.filter((nd) => nd.op === 'concat');
  const bytes = (id: number) => numel(g.nodes[id].type.shape) * 4;
  const byNode = new Map(p.buffers.filter((b) => b.scratch === undefined).map((b) => [b.node, b]));
  const written = concats.reduce((s, nd) => s + bytes(nd.id), 0);
  const saved = concats.filter((nd) => byNode.get(nd.id)?.class === 'saved_activations');
  const savedBytes = saved.reduce((s, nd) => s + bytes(nd.id), 0);
  // The plan's peak position: the first position where live bytes reach live_peak_bytes.
  const live = (t: number) => p.buffers.filter((b) => b.start <= t && t <= b.end);
  let peakT = -1;
  for (let t = -1; t <= p.positions; t++) {
    const s = p.state.reduce((a, b) => a + b.bytes, 0) + live(t).reduce((a, b) => a + b.bytes, 0);
    if (s === p.live_peak_bytes) { peakT = t; break; }
  }
  const atPeak = live(peakT).filter((b) => b.scratch === undefined && g.nodes[b.node].op === 'concat');
  const atPeakBytes = atPeak.reduce((s, b) => s + b.bytes, 0);
  // Dense blocks: chains where a concat joins the previous concat (the features so far: kuangliu's CIFAR DenseNet
  // puts the new map first, torchvision's last) with a new map. One buffer per chain = its last output.
  const isConcat = new Set(concats.map((nd) => nd.id));
  const chainEnds = concats.filter((nd) => !g.nodes.some((u) => u.op === 'concat' && u.inputs.includes(nd.id)));
  const chainStarts = concats.filter((nd) => !nd.inputs.some((i) => isConcat.has(i)));
  const blockBytes = chainEnds.reduce((s, nd) => s + bytes(nd.id), 0);
  const slices = g.nodes.filter((nd) => nd.op === 'slice'); // DenseNet slices only in concat gradients
  const concatGradSlices = slices.reduce((s, nd) => s + bytes(nd.id), 0);
  // Under save=division each concat output is compressed on its own (its earlier channels again in every later one).
  const packedOfConcats = p.buffers.filter((b) => b.scratch === undefined && b.class === 'saved_activations' &&
    /_compress$/.test(g.nodes[b.node].op) && isConcat.has(g.nodes[b.node].inputs[0])).reduce((s, b) => s + b.bytes, 0);
  const out = {
    model: m.name, batch, precision: spec ?? 'f32', concats: concats.length, dense_blocks: chainEnds.length, chain_starts: chainStarts.length,
    concat_output_bytes: written,
    concat_copy_traffic_bytes_forward: 2 * written,
    slice_output_bytes_backward: concatGradSlices,
    concat_outputs_saved: saved.length, concat_saved_bytes: savedBytes,
    saved_activations_bytes: p.classes.saved_activations,
    live_peak_bytes: p.live_peak_bytes, concat_bytes_live_at_peak: atPeakBytes, concat_outputs_live_at_peak: atPeak.length,
    one_buffer_per_block_bytes: blockBytes,
    packed_concat_outputs_saved_bytes: packedOfConcats,
  };
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

if (f.has('--saved')) {
  const { compileModel, batchHint, DEFAULT_OPTIMIZER } = await import('../runtime/cli/compile.js');
  const { parseOptimizer } = await import('../passes/optimizer.js');
  const { planModule } = await import('../runtime/memory.js');
  const { checkFits, lpcCapacity } = await import('../runtime/fit.js');
  const { parsePolicy } = await import('../ir/precision/index.js');
  const { numel } = await import('../ir/types.js');
  const name = f.str('--saved')!, batch = f.int('--batch', 64), spec = f.str('--precision'), input = f.str('--input');
  const m = compileModel(path.join(root, 'models', `${name}.ts`), {
    batch, optimizer: parseOptimizer(DEFAULT_OPTIMIZER), modelOptions: input ? { input: input.split('x').map(Number) } : {},
    ...(spec ? { precision: parsePolicy(spec) } : {}),
  });
  const plan = planModule(m, 'cpu-driver', checkFits(m, lpcCapacity(), 'cpu-driver', batchHint(batch)));
  const gi = m.graphs.findIndex((g) => g.name === 'train');
  const g = m.graphs[gi], p = plan.graphs[gi];
  const rows = new Map<string, { n: number; bytes: number; f32: number }>();
  for (const b of p.buffers) {
    if (b.scratch !== undefined || b.class !== 'saved_activations') continue;
    const nd = g.nodes[b.node], src = /_compress$/.test(nd.op) ? g.nodes[nd.inputs[0]] : nd;
    const key = `${nd.op}${nd.attrs.upper !== undefined ? `{upper=${nd.attrs.upper}}` : ''}${nd.epi?.post ? '+post' : ''} ${src.type.shape.slice(2).join('×') || '-'}`;
    const r = rows.get(key) ?? { n: 0, bytes: 0, f32: 0 };
    r.n++; r.bytes += b.bytes; r.f32 += numel(src.type.shape) * 4;
    rows.set(key, r);
  }
  process.stdout.write(`${name} b${batch}${input ? ` ${input}` : ''} ${spec ?? 'f32'}: saved ${mb(p.classes.saved_activations)} MB\n` +
    '| stored by, map | values | saved (MB) | f32 of the values (MB) | ratio |\n|---|---|---|---|---|\n' +
    [...rows].sort((a, b) => b[1].bytes - a[1].bytes).map(([k, r]) => `| ${k} | ${r.n} | ${mb(r.bytes)} | ${mb(r.f32)} | ${(r.f32 / r.bytes).toFixed(1)}× |`).join('\n') + '\n');
}
