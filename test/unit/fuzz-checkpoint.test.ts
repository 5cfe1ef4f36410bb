/**
 * Fuzzing the checkpoint readers: decodeSafetensors on mutated and random buffers, and loadCheckpoint on sidecars
 * with fields replaced by odd values or removed, give a value or a one-line CheckpointError naming the file.
 */
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError, decodeSafetensors, encodeSafetensors, loadCheckpoint, saveCheckpoint, SIDECAR } from '../../runtime/checkpoint.js';
import { StateDecl } from '../../runtime/train/init.js';
import { oddJson, params, returnsOrOwnError } from './fuzz-runs.js';

const FILE = '/ck/state.safetensors';
const valid = encodeSafetensors([
  { name: 'w', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
  { name: 'b', shape: [3], data: new Float32Array([7, 8, 9]) },
  { name: 'e', shape: [0], data: new Float32Array(0) },
], { format: 'pt' });
const headerLen = Number(valid.readBigUInt64LE(0));
const header = JSON.parse(valid.subarray(8, 8 + headerLen).toString('utf8'));

function withHeader(h: unknown, data = valid.subarray(8 + headerLen)): Buffer {
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

const decode = (buf: Buffer) => returnsOrOwnError(() => decodeSafetensors(buf, FILE), [CheckpointError], (l) => l.startsWith(`checkpoint ${FILE}: `));

/** A header with one field of one tensor (or the tensor itself, or the metadata) replaced by an odd value or removed. */
const oddHeader = fc.tuple(fc.constantFrom('w', 'b', 'e', '__metadata__', 'x\ny'), fc.constantFrom('dtype', 'shape', 'data_offsets', '*', 'shape.0', 'data_offsets.1'),
  fc.option(oddJson, { nil: undefined })).map(([t, field, v]) => {
  const h = structuredClone(header);
  if (field === '*') h[t] = v;
  else if (h[t] && typeof h[t] === 'object') {
    const [f, i] = field.split('.');
    if (i !== undefined && Array.isArray(h[t][f])) h[t][f][Number(i)] = v;
    else if (v === undefined) delete h[t][f];
    else h[t][f] = v;
  } else h[t] = { [field]: v };
  return withHeader(h);
});

const mutatedBytes = fc.tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.option(fc.nat()))
  .map(([edits, cut]) => {
    const b = Buffer.from(valid);
    for (const [at, v] of edits) b[at % b.length] = v;
    return cut === null ? b : b.subarray(0, cut % (b.length + 1));
  });

describe('fuzz: safetensors', () => {
  test('valid file decodes', () => {
    expect(decodeSafetensors(valid, FILE).tensors.get('w')?.data).toEqual(new Float32Array([1, 2, 3, 4, 5, 6]));
  });
  test('random bytes, edited and truncated files, odd header fields: tensors or a one-line CheckpointError', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)), mutatedBytes, oddHeader), decode), params());
  });
  test('regressions', () => {
    for (const v of [5, true, 'ab', { 0: 0, 1: 24 }]) decode(withHeader({ ...header, w: { ...header.w, data_offsets: v } }));
    decode(withHeader({ ...header, 'a\nb': { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }));
    decode(withHeader({ ...header, __metadata__: 7 }));
  });
});

describe('fuzz: checkpoint sidecar', () => {
  const decls: StateDecl[] = [{ name: 'w', kind: 'param', shape: [2, 3], init: 'zeros' }, { name: 'b', kind: 'param', shape: [3], init: 'zeros' }];
  const SHA = 'a'.repeat(64);
  let dir = '', side: Record<string, any> = {};
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-fuzz-ck-'));
    saveCheckpoint(dir, {
      decls, state: new Map([['w', new Float32Array(6)], ['b', new Float32Array(3)]]),
      sidecar: { artifact_sha256: SHA, model: 'm', position: { epoch: 1, stepsDone: 2, globalStep: 3, lossSum: 0.5, swaCount: 0, epochDone: false } as any,
        seed: 1, lr: { schedule: 'const', next: 0.1 }, config: {}, metrics_bytes: null },
    });
    side = JSON.parse(fs.readFileSync(path.join(dir, SIDECAR), 'utf8'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const load = (s: unknown) => {
    fs.writeFileSync(path.join(dir, SIDECAR), typeof s === 'string' ? s : JSON.stringify(s) ?? '');
    returnsOrOwnError(() => loadCheckpoint(dir, decls, SHA), [CheckpointError], (l) => l.startsWith(`checkpoint ${dir}/`));
  };
  test('the valid sidecar loads', () => {
    load(side);
    expect(loadCheckpoint(dir, decls, SHA).state.get('w')).toEqual(new Float32Array(6));
  });
  const FIELDS = ['format', 'version', 'tensors', 'tensors_sha256', 'artifact_sha256', 'model', 'position', 'metrics_bytes', 'metrics_path',
    'position.epoch', 'position.stepsDone', 'position.globalStep', 'position.lossSum', 'position.swaCount', 'position.epochDone', '*'];
  test('fields replaced by odd values or removed: a checkpoint or a one-line CheckpointError', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...FIELDS), fc.option(oddJson, { nil: undefined })), { minLength: 1, maxLength: 3 }), (edits) => {
      let s: any = structuredClone(side);
      for (const [f, v] of edits) {
        if (f === '*') { s = v; continue; }
        const [a, b] = f.split('.');
        const o = b ? s?.position : s;
        if (!o || typeof o !== 'object') continue;
        if (v === undefined) delete o[b ?? a]; else o[b ?? a] = v;
      }
      load(s);
    }), params(0.5));
  });
  test('regressions', () => {
    load({ ...side, version: '1\n2' });
    load({ ...side, model: 'a\nb', artifact_sha256: 'x\ny' });
    load('{"format":');
    load({ ...side, tensors: 'x\ny' });
    load({ ...side, tensors: '' }); // named the checkpoint directory itself
  });
});
