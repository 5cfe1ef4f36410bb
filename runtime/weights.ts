/**
 * Weights from a PyTorch `state_dict` saved with `safetensors.torch.save_file` (or from an lpc checkpoint folder,
 * whose `checkpoint.json` names its tensor file): `lpc run --init-from` and `lpc eval --weights`.
 *
 * lpc's state names are PyTorch's (`conv0.weight`, `bn0.weight`, …); a BN layer's running statistics, one lpc state
 * `<bn>.running` [2, C], come from `<bn>.running_mean` and `<bn>.running_var` (runtime/checkpoint.ts tensorNames),
 * and `<bn>.num_batches_tracked` is ignored. F16, BF16 and F64 tensors are converted to float32. Matching is
 * `load_state_dict(strict=True)`: every model tensor present with its shape and nothing else, or one error line
 * listing the missing, unexpected and mis-shaped names; non-strict loads what matches and reports the rest.
 * Keys of an lpc checkpoint's run state — optimizer state `<param>.<suffix>` (momentum, acc, …) and the SWA model
 * `swa.*` — are not model tensors and are passed over (unless `prefix` asks for the SWA model: `swa.`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { CheckpointError, MAX_SAFETENSORS_HEADER, SIDECAR, decodeSafetensors, tensorNames } from './checkpoint.js';
import { printable, readDataFile } from './files.js';
import type { StateDecl } from './train/init.js';
import { FLOAT_DTYPES } from './floats.js';

export type Tensors = Map<string, { shape: number[]; data: Float32Array; dtype: string }>;

/** A checkpoint folder's sidecar fields that `lpc eval` uses (all optional: checked where used). */
export interface SidecarInfo { seed?: unknown; config?: Record<string, unknown>; position?: { globalStep?: unknown; swaCount?: unknown } }

export interface WeightsFile { file: string; tensors: Tensors; sidecar?: SidecarInfo }

/**
 * Reads `arg`, a safetensors file or a checkpoint folder (its `checkpoint.json` names the tensor file, whose SHA-256
 * must match); `what` names the flag in errors. Files larger than `maxBytes` (plus room for a header) are refused.
 */
export function readWeights(arg: string, what: string, maxBytes: number): WeightsFile {
  let file = arg, sidecar: (SidecarInfo & { tensors?: unknown; tensors_sha256?: unknown }) | undefined;
  let isDir = false;
  try { isDir = fs.statSync(arg).isDirectory(); } catch { throw new CheckpointError(arg, 'not found', what); }
  if (isDir) {
    const side = path.join(arg, SIDECAR);
    const sbuf = readDataFile(side, 2 ** 24);
    if (typeof sbuf === 'string') throw new CheckpointError(side, sbuf === 'is missing' ? 'not found (a folder given as weights must be a checkpoint folder written by --checkpoint)' : sbuf, what);
    try { sidecar = JSON.parse(sbuf.toString('utf8')); } catch { throw new CheckpointError(side, 'is not valid JSON (corrupt?)', what); }
    if (typeof sidecar !== 'object' || sidecar === null || Array.isArray(sidecar)) throw new CheckpointError(side, 'is not a JSON object', what);
    const t = sidecar.tensors;
    if (typeof t !== 'string' || ['', '.', '..'].includes(t) || t.includes('/') || t.includes('\\')) throw new CheckpointError(side, 'names no tensor file', what);
    file = path.join(arg, t);
  }
  const buf = readDataFile(file, maxBytes + MAX_SAFETENSORS_HEADER + 8);
  if (typeof buf === 'string') throw new CheckpointError(file, buf === 'is missing' ? (isDir ? `not found (named by ${SIDECAR})` : 'not found') : buf, what);
  if (sidecar && createHash('sha256').update(buf).digest('hex') !== sidecar.tensors_sha256)
    throw new CheckpointError(file, `SHA-256 does not match ${SIDECAR} (corrupt or replaced)`, what);
  return { file, tensors: decodeSafetensors(buf, file, what, true).tensors, ...(sidecar ? { sidecar } : {}) };
}

/** The model's own state (parameters and buffers: what a PyTorch state_dict holds), not optimizer or SWA state. */
export const modelDecls = (decls: StateDecl[]): StateDecl[] => decls.filter((d) => d.kind === 'param' || d.kind === 'buffer');

export interface LoadReport { loaded: number; expected: number; missing: string[]; unexpected: string[]; shapes: string[] }

const list = (names: string[], max = 12) => names.slice(0, max).map(printable).join(', ') + (names.length > max ? `, … (${names.length - max} more)` : '');

/** What did not match, as one phrase: `missing a, b; unexpected c; shape d [2] in the file, [3] in the model`. */
export function describeMismatch(r: LoadReport): string {
  return [r.missing.length ? `missing ${list(r.missing)}` : '', r.unexpected.length ? `unexpected ${list(r.unexpected)}` : '',
    r.shapes.length ? `wrong shape ${list(r.shapes, 6)}` : ''].filter(Boolean).join('; ');
}

/**
 * Copies the tensors of `w` that match `decls` (the states to fill; see modelDecls) into `state` (every state
 * present, at its full size). Key `prefix + name` is read for state name `name`. `known`: other names that are not
 * unexpected (the artifact's other model state: `lpc eval` fills only what its graph reads). Strict (default): any
 * missing, unexpected or mis-shaped tensor is a one-line CheckpointError naming them all; else those are skipped and
 * returned. Afterwards states initialised as `copy:<p>` (OptimLP's accumulator) are copies of p again.
 */
export function loadStateDict(state: Map<string, Float32Array>, allDecls: StateDecl[], decls: StateDecl[], w: WeightsFile,
  o: { what: string; model: string; strict: boolean; prefix?: string; known?: Set<string> }): LoadReport {
  const prefix = o.prefix ?? '';
  const names = tensorNames(decls);
  const want = new Map(names.map((t) => [prefix + t.name, t]));
  const params = new Set(allDecls.filter((d) => d.kind === 'param').map((d) => d.name));
  const runState = (k: string): boolean => {
    if (k.endsWith('.num_batches_tracked') || k === 'num_batches_tracked') return true;
    if (prefix && !k.startsWith(prefix)) return true; // the SWA model is asked for: the rest is passed over
    const n = k.slice(prefix.length);
    if (n.startsWith('swa.') || o.known?.has(n)) return true;
    const dot = n.lastIndexOf('.');
    return dot > 0 && params.has(n.slice(0, dot)) && /^[a-z_]+$/.test(n.slice(dot + 1)); // <param>.momentum, .acc, …
  };
  const r: LoadReport = { loaded: 0, expected: names.length, missing: [], unexpected: [], shapes: [] };
  const take: [typeof names[number], Float32Array][] = [];
  for (const [key, t] of want) {
    const v = w.tensors.get(key);
    if (!v) { r.missing.push(key); continue; }
    if (!Object.hasOwn(FLOAT_DTYPES, v.dtype))
      throw new CheckpointError(w.file, `tensor '${printable(key)}' has dtype ${v.dtype}, which lpc cannot read (it reads F32, F16, BF16 and F64)`, o.what);
    if (v.shape.join(',') !== t.shape.join(',')) { r.shapes.push(`${key} [${v.shape.join(', ')}] in the file, [${t.shape.join(', ')}] in the model`); continue; }
    take.push([t, v.data]);
  }
  for (const k of w.tensors.keys()) if (!want.has(k) && !runState(k)) r.unexpected.push(k);
  if (o.strict && (r.missing.length || r.unexpected.length || r.shapes.length))
    throw new CheckpointError(w.file, `does not match model '${o.model}' (strict, as load_state_dict): ${describeMismatch(r)}${o.what === '--init-from' ? '; --init-from-non-strict loads what matches' : ''}`, o.what);
  for (const [t, data] of take) {
    const dst = state.get(t.state);
    if (!dst) throw new Error(`loadStateDict: no state '${t.state}'`);
    dst.set(data, t.offset);
    r.loaded++;
  }
  for (const d of allDecls)
    if (d.init.startsWith('copy:') && state.has(d.init.slice(5))) state.set(d.name, Float32Array.from(state.get(d.init.slice(5))!));
  return r;
}

/** Bytes a weights file for `decls` may plausibly take: f64 model tensors plus an lpc checkpoint's run state. */
export const weightsLimit = (decls: StateDecl[]): number => 64 * decls.reduce((t, d) => t + d.shape.reduce((a, b) => a * b, 1), 0) + 2 ** 20;
