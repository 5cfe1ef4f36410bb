/**
 * Checkpoints: every state tensor in a safetensors file (readable by PyTorch's `safetensors.torch.load_file`) under
 * its state_dict name, plus a JSON sidecar with the training position (epoch, step, loss sum, SWA count), the seed
 * (lpc's random streams are counter-based: seed + step + epoch reproduce every draw), the run's configuration and
 * the artifact's hash.
 *
 * Layout of a checkpoint directory: `state-<step>.safetensors` and `checkpoint.json` (which names the tensor file and
 * its SHA-256). Both are written to a temporary file and renamed; the tensor file first, the sidecar second, and
 * older tensor files are deleted only after the sidecar points away from them — so a kill at any moment leaves the
 * previous checkpoint or the new one, never a mix. Loading checks the format, the hash and every tensor's shape,
 * and refuses anything else with a one-line error naming the file.
 *
 * Names: a BN running-statistics state `<bn>.running` ([2, C]: mean; var) is stored as `<bn>.running_mean` and
 * `<bn>.running_var` as in PyTorch; everything else by its state name (`conv0.weight`, `conv0.weight.momentum`,
 * `conv0.weight.acc`, `swa.conv0.weight`, `swa.bn0.running_mean`, …).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { printable, readDataFile, writeAtomic } from './files.js';
import { StateDecl } from './train/init.js';
import { FLOAT_DTYPES, OTHER_DTYPES, toFloat32 } from './floats.js';

export const CHECKPOINT_FORMAT = 'lpc-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const SIDECAR = 'checkpoint.json';

export class CheckpointError extends Error {
  /** `what`: how the message names the file's role ('checkpoint', '--init-from', '--weights'). */
  constructor(file: string, detail: string, what = 'checkpoint') { super(printable(`${what} ${file}: ${detail}`)); this.name = 'CheckpointError'; }
}

/** Where training stands. `epochDone`: epoch `epoch`'s end-of-epoch work (evaluation, SWA) is done too. */
export interface Position {
  epoch: number;
  stepsDone: number;
  epochDone: boolean;
  globalStep: number;
  /** Sum of the losses of epoch `epoch`'s steps so far (its train_loss is this / steps). */
  lossSum: number;
  /** SWA snapshots averaged so far. */
  swaCount: number;
}

export interface Sidecar {
  format: string;
  version: number;
  tensors: string;
  tensors_sha256: string;
  artifact_sha256: string;
  model: string;
  position: Position;
  seed: number;
  /** The lr the next step would use, and the schedule it comes from (for reading; resume recomputes it). */
  lr: { schedule: string; next: number };
  /** The run's configuration (resume takes it from here). */
  config: Record<string, string | number | null>;
  /** Size of the metrics file when the checkpoint was written (resume truncates it back). */
  metrics_bytes: number | null;
  /** That metrics file (absolute, through symlinks): resume truncates no other file. Absent in older checkpoints. */
  metrics_path?: string | null;
  written: string;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function isBnRunning(d: StateDecl): boolean {
  return d.init === 'bn_running' && d.shape.length === 2 && d.shape[0] === 2 && d.name.endsWith('.running');
}

/** state_dict names and shapes of each state. */
export function tensorNames(decls: StateDecl[]): { state: string; name: string; shape: number[]; offset: number; count: number }[] {
  const out: { state: string; name: string; shape: number[]; offset: number; count: number }[] = [];
  for (const d of decls) {
    const n = d.shape.reduce((a, b) => a * b, 1);
    if (isBnRunning(d)) {
      const C = d.shape[1], base = d.name.slice(0, -'.running'.length);
      out.push({ state: d.name, name: `${base}.running_mean`, shape: [C], offset: 0, count: C });
      out.push({ state: d.name, name: `${base}.running_var`, shape: [C], offset: C, count: C });
    } else out.push({ state: d.name, name: d.name, shape: [...d.shape], offset: 0, count: n });
  }
  return out;
}

/** A safetensors file of float32 tensors (names sorted, as the reference writer does). */
export function encodeSafetensors(tensors: { name: string; shape: number[]; data: Float32Array }[], metadata: Record<string, string> = {}): Buffer {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of sorted) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.length * 4] };
    off += t.data.length * 4;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hb = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hb.length + off);
  out.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(out, 8);
  let p = 8 + hb.length;
  for (const t of sorted) {
    const view = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('big-endian hosts are not supported');
    view.copy(out, p);
    p += t.data.byteLength;
  }
  return out;
}

/** The largest safetensors header lpc reads (the reference implementation's limit). */
export const MAX_SAFETENSORS_HEADER = 100_000_000;

/**
 * Parses a safetensors file; F32 tensors as they are, F16, BF16 and F64 converted to float32 (runtime/floats.ts);
 * `dtype` is the file's. Throws a one-line CheckpointError naming `file` (after `what`, default 'checkpoint') and the
 * tensor on anything malformed: too short, a header over 100 MB or past the end, not JSON, a dtype lpc cannot read
 * (integers, bool, f8; with `nonFloat` such tensors are kept, layout checked, with no values: a PyTorch state_dict's
 * I64 `num_batches_tracked`), a bad shape, data_offsets outside the data or not matching the shape, tensors that overlap
 * or bytes that belong to no tensor.
 */
export function decodeSafetensors(buf: Buffer, file: string, what = 'checkpoint', nonFloat = false): { tensors: Map<string, { shape: number[]; data: Float32Array; dtype: string }>; metadata: Record<string, string> } {
  const bad = (d: string) => new CheckpointError(file, `not a valid safetensors file (${d})`, what);
  if (buf.length < 8) throw bad('shorter than its 8-byte header length');
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(MAX_SAFETENSORS_HEADER)) throw bad(`header length ${n} is over the ${MAX_SAFETENSORS_HEADER}-byte limit`);
  if (n > BigInt(buf.length - 8)) throw bad(`header length ${n} exceeds the file (truncated?)`);
  let header: Record<string, any>;
  try { header = JSON.parse(buf.subarray(8, 8 + Number(n)).toString('utf8')); } catch { throw bad('header is not JSON'); }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not an object');
  const base = 8 + Number(n), dataLen = buf.length - base;
  const tensors = new Map<string, { shape: number[]; data: Float32Array; dtype: string }>();
  const ranges: { name: string; s: number; e: number }[] = [];
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const tn = `tensor '${printable(name)}'`;
    if (typeof t !== 'object' || t === null || Array.isArray(t)) throw bad(`${tn} is not an object`);
    const float = typeof t.dtype === 'string' && Object.hasOwn(FLOAT_DTYPES, t.dtype);
    const size = float ? FLOAT_DTYPES[t.dtype] : nonFloat && typeof t.dtype === 'string' && Object.hasOwn(OTHER_DTYPES, t.dtype) ? OTHER_DTYPES[t.dtype] : undefined;
    if (size === undefined)
      throw new CheckpointError(file, `${tn} has dtype ${printable(typeof t.dtype === 'string' ? t.dtype : JSON.stringify(t.dtype) ?? 'none')}, which lpc cannot read (it reads F32, F16, BF16 and F64)`, what);
    const [s, e] = Array.isArray(t.data_offsets) ? t.data_offsets : [];
    const shape: number[] = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`${tn} has a bad shape`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > dataLen || e - s !== count * size)
      throw bad(`${tn} has data_offsets ${printable(JSON.stringify(t.data_offsets) ?? 'undefined')} that do not fit its shape or the file`);
    ranges.push({ name, s, e });
    tensors.set(name, { shape, data: float ? toFloat32(t.dtype, buf.subarray(base + s, base + e)) : new Float32Array(0), dtype: t.dtype });
  }
  // the data is the tensors' bytes back to back: no overlap, no gap
  ranges.sort((a, b) => a.s - b.s || a.e - b.e);
  let end = 0, last = '';
  for (const r of ranges) {
    if (r.s < end) throw bad(`tensors '${printable(last)}' and '${printable(r.name)}' overlap`);
    if (r.s > end) throw bad(`bytes ${end}..${r.s} of the data belong to no tensor`);
    end = r.e;
    last = r.name;
  }
  if (end !== dataLen) throw bad(`${dataLen - end} bytes of data belong to no tensor`);
  const meta = header.__metadata__;
  if (meta !== undefined && (typeof meta !== 'object' || meta === null || Array.isArray(meta))) throw bad('__metadata__ is not an object');
  return { tensors, metadata: header.__metadata__ ?? {} };
}

export interface SaveInput {
  decls: StateDecl[];
  state: Map<string, Float32Array>;
  sidecar: Omit<Sidecar, 'format' | 'version' | 'tensors' | 'tensors_sha256' | 'written'>;
}

/** Writes a checkpoint into `dir` (created if needed); returns the sidecar's path. */
export function saveCheckpoint(dir: string, s: SaveInput): string {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = tensorNames(s.decls).map((t) => {
    const v = s.state.get(t.state);
    if (!v) throw new Error(`checkpoint: no value for state '${t.state}'`);
    return { name: t.name, shape: t.shape, data: v.subarray(t.offset, t.offset + t.count) };
  });
  const bytes = encodeSafetensors(tensors, { format: 'pt', producer: 'lpc', model: s.sidecar.model });
  const file = `state-${String(s.sidecar.position.globalStep).padStart(8, '0')}${s.sidecar.position.epochDone ? `-e${s.sidecar.position.epoch}` : ''}.safetensors`;
  writeAtomic(path.join(dir, file), bytes);
  const side: Sidecar = {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, tensors: file, tensors_sha256: sha256(bytes),
    ...s.sidecar, written: new Date().toISOString(),
  };
  const sidePath = path.join(dir, SIDECAR);
  writeAtomic(sidePath, JSON.stringify(side, null, 2) + '\n');
  // Older tensor files, and temporary files a killed writer left behind.
  for (const f of fs.readdirSync(dir))
    if ((f !== file && /^state-.*\.safetensors$/.test(f)) || (/^\..*\.tmp-\d+$/.test(f) && !f.endsWith(`.tmp-${process.pid}`)))
      fs.rmSync(path.join(dir, f), { force: true });
  return sidePath;
}

/** Reads and checks a checkpoint directory against the run's state declarations and artifact hash. */
export function loadCheckpoint(dir: string, decls: StateDecl[], artifactSha: string): { sidecar: Sidecar; state: Map<string, Float32Array> } {
  const sidePath = path.join(dir, SIDECAR);
  if (!fs.existsSync(sidePath)) throw new CheckpointError(sidePath, 'not found (is this a checkpoint directory written by --checkpoint?)');
  let side: Sidecar;
  const sbuf = readDataFile(sidePath, 2 ** 24);
  if (typeof sbuf === 'string') throw new CheckpointError(sidePath, sbuf);
  try { side = JSON.parse(sbuf.toString('utf8')); } catch { throw new CheckpointError(sidePath, 'is not valid JSON (corrupt?)'); }
  if (side?.format !== CHECKPOINT_FORMAT) throw new CheckpointError(sidePath, `format is ${JSON.stringify(side?.format)}, expected "${CHECKPOINT_FORMAT}"`);
  if (side.version !== CHECKPOINT_VERSION) throw new CheckpointError(sidePath, `version ${JSON.stringify(side.version)} is not supported (this lpc reads version ${CHECKPOINT_VERSION})`);
  const p = side.position;
  if (!p || ![p.epoch, p.stepsDone, p.globalStep, p.swaCount].every((x) => Number.isInteger(x) && x >= 0) || typeof p.lossSum !== 'number' || typeof p.epochDone !== 'boolean')
    throw new CheckpointError(sidePath, 'has no valid training position');
  if (side.metrics_bytes !== null && !(Number.isSafeInteger(side.metrics_bytes) && side.metrics_bytes >= 0))
    throw new CheckpointError(sidePath, `metrics_bytes ${JSON.stringify(side.metrics_bytes)} is not a byte count`);
  if (side.metrics_path !== undefined && side.metrics_path !== null && (typeof side.metrics_path !== 'string' || !path.isAbsolute(side.metrics_path)))
    throw new CheckpointError(sidePath, `metrics_path ${JSON.stringify(side.metrics_path)} is not an absolute path`);
  if (side.artifact_sha256 !== artifactSha)
    throw new CheckpointError(sidePath, `was written for a different artifact (model '${printable(String(side.model))}', sha256 ${printable(String(side.artifact_sha256).slice(0, 12))}…, this one ${artifactSha.slice(0, 12)}…)`);
  if (typeof side.tensors !== 'string' || ['', '.', '..'].includes(side.tensors) || side.tensors.includes('/') || side.tensors.includes('\\'))
    throw new CheckpointError(sidePath, 'names no tensor file');
  const tPath = path.join(dir, side.tensors);
  // the tensors the run needs, in f32, and room for the safetensors header
  const limit = decls.reduce((t, d) => t + 4 * d.shape.reduce((a, b) => a * b, 1), 0) + 2 ** 24;
  const buf = readDataFile(tPath, limit);
  if (typeof buf === 'string') throw new CheckpointError(tPath, buf === 'is missing' ? `not found (named by ${SIDECAR})` : buf);
  if (sha256(buf) !== side.tensors_sha256) throw new CheckpointError(tPath, `SHA-256 does not match ${SIDECAR} (corrupt or replaced)`);
  const { tensors } = decodeSafetensors(buf, tPath);
  const state = new Map<string, Float32Array>();
  const names = tensorNames(decls);
  for (const t of names) {
    const v = tensors.get(t.name);
    if (!v) throw new CheckpointError(tPath, `has no tensor '${t.name}' (the run needs ${names.length} tensors)`);
    if (v.shape.join(',') !== t.shape.join(',')) throw new CheckpointError(tPath, `tensor '${t.name}' has shape [${v.shape.join(', ')}], the model needs [${t.shape.join(', ')}]`);
    const d = decls.find((x) => x.name === t.state)!;
    let dst = state.get(t.state);
    if (!dst) { dst = new Float32Array(d.shape.reduce((a, b) => a * b, 1)); state.set(t.state, dst); }
    dst.set(v.data, t.offset);
  }
  const extra = [...tensors.keys()].filter((k) => !names.some((t) => t.name === k));
  if (extra.length) throw new CheckpointError(tPath, `has tensors this run does not have: ${extra.slice(0, 3).map(printable).join(', ')}${extra.length > 3 ? ', …' : ''} (was it written with a different --swa?)`);
  return { sidecar: side, state };
}
