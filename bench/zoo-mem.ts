/**
 * `npm run build && node dist/bench/zoo-mem.js [--only name,name] [--concat]`: the model zoo's training memory with
 * and without DIVISION, through the real CLI (`node bin/lpc.js mem <model> --batch N [--input CxHxW] --json
 * [--precision 'save=division(block=8,bits=2)']`, default optimizer: SGD with momentum), as a markdown table.
 *
 * `--concat [--model densenet121|densenet161] [--batch N] [--input CxHxW] [--precision SPEC]`: what a DenseNet's
 * concatenations cost (default DenseNet-121 b64, 3×32×32, f32), with every concat copying (`copies`) and with the
 * concat views lpc plans by default (`views`: passes/channel-views.ts, each dense block's maps as channel ranges of
 * one buffer). It compiles the model in-process as `lpc mem` does and reads the train graph's memory plan: the bytes
 * the concat kernels and the gradient's slices store per step, the concat outputs' saved bytes, the saved and live
 * bytes at the plan's peak and the allocated bytes.
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
  const { compileModel, batchHint, DEFAULT_OPTIMIZER } = await import('../runtime/cli/compile.js');
  const { parseOptimizer } = await import('../passes/optimizer.js');
  const { moduleKernels, planModule } = await import('../runtime/memory.js');
  const { checkFits, lpcCapacity } = await import('../runtime/fit.js');
  const { numel } = await import('../ir/types.js');
  const { parsePolicy } = await import('../ir/precision/index.js');
  const name = f.str('--model') ?? 'densenet121', input = f.str('--input');
  const batch = f.int('--batch', 64), spec = f.str('--precision');
  const m = compileModel(path.join(root, 'models', `${name}.ts`), {
    batch, optimizer: parseOptimizer(DEFAULT_OPTIMIZER), modelOptions: input ? { input: input.split('x').map(Number) } : {},
    ...(spec ? { precision: parsePolicy(spec) } : {}),
  });
  checkFits(m, lpcCapacity(), 'cpu-driver', batchHint(batch));
  const gi = m.graphs.findIndex((g) => g.name === 'train');
  const g = m.graphs[gi];
  const bytes = (id: number) => numel(g.nodes[id].type.shape) * 4;
  const concats = g.nodes.filter((nd) => nd.op === 'concat');
  const isConcat = new Set(concats.map((nd) => nd.id));
  // Dense blocks: chains where a concat joins the previous concat (the features so far: kuangliu's CIFAR DenseNet
  // puts the new map first, torchvision's last) with a new map. One buffer per chain = its last output.
  const chainEnds = concats.filter((nd) => !g.nodes.some((u) => u.op === 'concat' && u.inputs.includes(nd.id)));
  const chainStarts = concats.filter((nd) => !nd.inputs.some((i) => isConcat.has(i)));
  const slices = g.nodes.filter((nd) => nd.op === 'slice'); // DenseNet slices only in concat gradients
  const dependsOn = (a: number, b: number): boolean => a === b || (a > b && g.nodes[a].inputs.some((i) => dependsOn(i, b)));
  /** The train graph's plan with the concats copying (`views` false) or placed in their buffers (lpc's default). */
  const measure = (views: boolean) => {
    const ks = moduleKernels(m, 'cpu-driver', undefined, { concatViews: views });
    const plan = planModule(m, 'cpu-driver', ks), p = plan.graphs[gi], v = ks.views?.get('train') ?? new Map();
    const own = new Map(p.buffers.filter((b) => b.scratch === undefined).map((b) => [b.node, b]));
    // bytes the concat kernels store (the inputs not already in place) and the slices (those not read in place)
    const copied = concats.reduce((s, nd) => s + nd.inputs.filter((i) => v.get(i)?.root !== (v.get(nd.id)?.root ?? nd.id)).reduce((t, i) => t + bytes(i), 0), 0);
    const sliced = slices.filter((nd) => !v.get(nd.id)?.slice).reduce((s, nd) => s + bytes(nd.id), 0);
    // The plan's peak position: the first position where live bytes reach live_peak_bytes; the concat outputs (and
    // with the views, the block buffers holding them) live there.
    const live = (t: number) => p.buffers.filter((b) => b.start <= t && t <= b.end);
    let peakT = -1;
    for (let t = -1; t <= p.positions; t++) {
      const sum = p.state.reduce((a, b) => a + b.bytes, 0) + live(t).reduce((a, b) => a + b.bytes, 0);
      if (sum === p.live_peak_bytes) { peakT = t; break; }
    }
    const atPeak = live(peakT).filter((b) => b.scratch === undefined && g.nodes[b.node].op === 'concat');
    return {
      placed_values: [...v.values()].filter((x) => !x.slice && x.accumulates === undefined).length,
      slices_read_in_place: [...v.values()].filter((x) => x.slice).length,
      errors_summed_in_place: [...v.values()].filter((x) => x.accumulates !== undefined).length,
      concat_bytes_written: copied, slice_bytes_written: sliced,
      concat_saved_bytes: concats.filter((nd) => own.get(nd.id)?.class === 'saved_activations').reduce((s, nd) => s + bytes(nd.id), 0),
      saved_activations_bytes: p.classes.saved_activations, live_peak_bytes: p.live_peak_bytes,
      concat_bytes_live_at_peak: atPeak.reduce((s, b) => s + b.bytes, 0), peak_bytes: p.peak_bytes, allocated_bytes: plan.allocated_bytes,
      // Under save=division each concat output is compressed on its own (its earlier channels again in every later one).
      packed_concat_outputs_saved_bytes: p.buffers.filter((b) => b.scratch === undefined && b.class === 'saved_activations' &&
        /_compress$/.test(g.nodes[b.node].op) && isConcat.has(g.nodes[b.node].inputs[0])).reduce((s, b) => s + b.bytes, 0),
    };
  };
  const copies = measure(false), views = measure(true);
  const out = {
    model: m.name, batch, input: input ?? 'default', precision: spec ?? 'f32', concats: concats.length, dense_blocks: chainEnds.length, chain_starts: chainStarts.length,
    concat_output_bytes: concats.reduce((s, nd) => s + bytes(nd.id), 0),
    slice_output_bytes_backward: slices.reduce((s, nd) => s + bytes(nd.id), 0),
    one_buffer_per_block_bytes: chainEnds.reduce((s, nd) => s + bytes(nd.id), 0),
    // the dense blocks' inputs (stem and transition outputs, each the input of its block's first concat that the
    // new map is computed from): with the views they too live in their blocks' buffers
    block_input_bytes: chainStarts.reduce((s, nd) => s + bytes(nd.inputs.find((i) => nd.inputs.some((j) => j !== i && dependsOn(j, i)))!), 0),
    copies, views,
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
