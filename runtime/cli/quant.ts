/** `lpc quant`: quantize a JSON array from stdin through the same IR op and kernels training uses. */
import * as fs from 'node:fs';
import { Builder, emptyGraph, Module } from '../../ir/graph.js';
import { FormatParseError, parseFormat, validateFormat } from '../../ir/format.js';
import { FlagSpec, Parsed, UsageError, flag, intFlag } from './args.js';
import { makeBackend } from './backends.js';
import { printable } from '../files.js';

export const quantFlags: FlagSpec[] = [
  { name: 'format', value: 'F', help: 'number format: fixed<wl,fl[,sym][,noclamp]>, bfp<wl,tensor|axis=k>, float<e,m>, bf16, fp16, e4m3, e5m2' },
  { name: 'rounding', value: 'MODE', help: 'nearest (default) or stochastic' },
  { name: 'shape', value: 'd0,d1,…', help: 'shape of the input (default: 1-D); matters for bfp blocks' },
  { name: 'seed', value: 'S', help: 'seed of the stochastic-rounding generator (default 0)' },
  { name: 'hex', help: 'read and write float32 bit patterns as 8 hex digits' },
  { name: 'backend', value: 'B', help: 'cpu (default) or webgpu' },
];

/** stdin's JSON array as float32 values (numbers, "NaN", "±Infinity"; with `hex`, 8-digit bit patterns), or a UsageError. */
export function readValues(text: string, hex: boolean): Float32Array {
  let data: unknown;
  try { data = JSON.parse(text); } catch (e) { throw new UsageError(`stdin is not valid JSON: ${printable((e as Error).message)}`); }
  if (!Array.isArray(data)) throw new UsageError('stdin must hold a JSON array');
  if (hex) {
    const u = new Uint32Array(data.length);
    data.forEach((h, i) => {
      if (typeof h !== 'string' || !/^[0-9a-fA-F]{8}$/.test(h)) throw new UsageError(`element ${i}: expected 8 hex digits, got ${JSON.stringify(h)}`);
      u[i] = parseInt(h, 16);
    });
    return new Float32Array(u.buffer);
  }
  return Float32Array.from(data.map((v, i) => {
    if (typeof v === 'number') return v;
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    throw new UsageError(`element ${i}: expected a number, got ${JSON.stringify(v)}`);
  }));
}

function writeValues(q: Float32Array, hex: boolean): string {
  if (hex) return JSON.stringify([...new Uint32Array(q.buffer, q.byteOffset, q.length)].map((u) => u.toString(16).padStart(8, '0')));
  return JSON.stringify([...q].map((v) => (Number.isFinite(v) ? v : String(v))));
}

export async function quantCommand(p: Parsed): Promise<void> {
  const ftext = flag(p, 'format');
  if (!ftext) throw new UsageError('lpc quant needs --format');
  let fmt;
  try { fmt = parseFormat(ftext); } catch (e) {
    throw new UsageError(`--format: ${e instanceof FormatParseError ? e.message : (e as Error).message}`);
  }
  const bad = validateFormat(fmt);
  if (bad) throw new UsageError(`--format: ${bad}`);
  const rounding = flag(p, 'rounding') ?? 'nearest';
  if (rounding !== 'nearest' && rounding !== 'stochastic') throw new UsageError(`--rounding must be nearest or stochastic, got '${rounding}'`);
  const hex = p.flags.has('hex');
  const x = readValues(fs.readFileSync(0, 'utf8'), hex);
  const shapeText = flag(p, 'shape');
  const shape = shapeText ? shapeText.split(',').map((d) => {
    const n = Number(d);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--shape: bad dimension '${d}'`);
    return n;
  }) : [x.length];
  if (shape.reduce((a, b) => a * b, 1) !== x.length) throw new UsageError(`--shape ${shape.join(',')} does not hold ${x.length} values`);
  if (x.length === 0) { process.stdout.write('[]\n'); return; }
  if ((fmt.kind === 'bfp' || fmt.kind === 'mx') && typeof fmt.axis === 'number' && fmt.axis >= shape.length)
    throw new UsageError(`--format ${ftext}: axis ${fmt.axis} does not exist in a ${shape.length}-D shape`);

  const g = emptyGraph('quant');
  const b = new Builder(g);
  const xin = b.add('input', [], { name: 'x', kind: 'data', shape, dtype: 'f32' });
  g.outputs.push({ name: 'q', node: b.add('quantize', [xin], { fmt, rounding, role: 'none' }) });
  const m: Module = { version: 1, name: 'quant', graphs: [g] };
  const backend = await makeBackend(flag(p, 'backend') ?? 'cpu', m, true);
  try {
    const out = await backend.run('quant', { x }, { seed: intFlag(p, 'seed', 0, 0), step: 0 }, ['q']);
    process.stdout.write(writeValues(out.q, hex) + '\n');
  } finally {
    await backend.dispose();
  }
}
