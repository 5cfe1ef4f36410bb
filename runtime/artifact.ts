/**
 * The compiled artifact: a directory of data only — manifest.json (version, options, content hashes),
 * graph.lpir (the IR text), kernels/*.wgsl (generated kernels, for inspection), plan.json (dispatches and buffers).
 * Written to a temp directory and renamed, so a failed compile never leaves a half-written artifact.
 * Loading checks every hash and re-parses and re-verifies the IR; nothing in an artifact is ever executed as code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Graph, Module } from '../ir/graph.js';
import { printModule } from '../ir/print.js';
import { parseModule } from '../ir/parse.js';
import { verifyModule } from '../ir/verify.js';
import { numel } from '../ir/types.js';
import { Kernel } from '../codegen/kernel.js';
import { memoryPlanJson } from '../passes/memory.js';
import { OptimizerOptions, optimizerProblem } from '../passes/optimizer.js';
import { printable, readDataFile, syncFolder, writeSynced } from './files.js';

const MiB = 2 ** 20;
/** The largest artifact file lpc reads (ResNet-18's IR text is about 1 MiB). */
const FILE_LIMIT = 256 * MiB;
import { moduleKernels, planModule } from './memory.js';

export const ARTIFACT_FORMAT = 'lpc-artifact';
// 2: BN backward reads one per-channel reduction (bn_bwd_sums, row; bn_bwd_x takes it) instead of three.
// 3: options_sha256, a hash of the compile options (batch, optimizer, precision change training but are no file).
// 4: a node's epilogue is typed (ir/epilogue.ts), printed as `epilogue{post=…, q=…}` instead of attributes post/qfmt/….
export const ARTIFACT_VERSION = 4;

export interface ArtifactOptions {
  model: string;
  source: string;
  batch: number;
  /** sgd {lr, momentum, wd} (every artifact before Adam), adam / adamw {lr, betas, eps, wd}. */
  optimizer: OptimizerOptions;
  precision?: string;
}

export interface Manifest {
  format: string;
  version: number;
  options: ArtifactOptions;
  /** SHA-256 of the options in canonical JSON (keys sorted): an edited option is found at load like an edited file. */
  options_sha256: string;
  files: Record<string, string>;
}

export interface Artifact { dir: string; manifest: Manifest; module: Module; plan: Plan }

/** `read_bytes`/`write_bytes`: sizes of the buffers the kernel binds read-only / read-write (an upper bound on traffic). */
export interface PlanDispatch { node: number; op: string; kernel: string; key: string; workgroups: number[]; flops: number; read_bytes?: number; write_bytes?: number }
/** `buffer_bytes`: one buffer per value; `memory`: the memory plan (passes/memory.ts) the executor allocates by. */
export interface Plan { graphs: { name: string; dispatches: PlanDispatch[]; buffer_bytes: number }[]; memory?: ReturnType<typeof memoryPlanJson> }

export class ArtifactError extends Error {
  constructor(dir: string, detail: string) { super(`${dir}: ${detail}`); this.name = 'ArtifactError'; }
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** JSON with every object's keys sorted (undefined members left out, as JSON.stringify does). */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** The hash manifest.json keeps of its compile options. */
export const optionsHash = (o: unknown): string => sha256(canonicalJson(o));

export function makePlan(m: Module): { plan: Plan; kernels: Map<string, string> } {
  const kernels = new Map<string, string>();
  const byGraph = moduleKernels(m, 'cpu-driver');
  const graphs = m.graphs.map((g) => {
    const dispatches: PlanDispatch[] = [];
    let bytes = 0;
    for (const n of g.nodes) {
      if (n.op !== 'reshape' && n.op !== 'state') bytes += numel(n.type.shape) * 4;
      for (const k of byGraph.get(g.name)![n.id]) {
        const file = `kernels/${k.name}-${k.key}.wgsl`;
        if (!kernels.has(file)) kernels.set(file, k.wgsl());
        const rw = boundBytes(g, k);
        dispatches.push({ node: n.id, op: n.op, kernel: file, key: k.key, workgroups: [...k.dispatch], flops: k.flops ?? 0, ...rw });
      }
    }
    return { name: g.name, dispatches, buffer_bytes: bytes };
  });
  return { plan: { graphs, memory: memoryPlanJson(planModule(m, 'cpu-driver', byGraph)) }, kernels };
}

function boundBytes(g: Graph, k: Kernel): { read_bytes: number; write_bytes: number } {
  let read_bytes = k.params.byteLength, write_bytes = 0;
  for (const b of k.bindings) {
    const bytes = b.ref.kind === 'scratch' ? b.ref.bytes : numel(g.nodes[b.ref.id].type.shape) * 4;
    if (b.access === 'read') read_bytes += bytes; else write_bytes += bytes;
  }
  return { read_bytes, write_bytes };
}

/** What an artifact directory holds: anything else in a directory means lpc did not write it alone. */
const ARTIFACT_ENTRY = /^(manifest\.json|graph\.lpir|plan\.json|kernels)$/;

/**
 * Refuses an artifact destination that is no name, or a directory that is not an artifact: replacing it would delete
 * what it holds. An existing artifact holding anything lpc does not write there (a user's file) is refused too.
 */
export function checkArtifactTarget(dir: string): void {
  if (!dir.replace(/\/+$/, '')) throw new ArtifactError(JSON.stringify(dir), 'is not a directory name');
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory() || !fs.existsSync(path.join(dir, 'manifest.json')))
    throw new ArtifactError(dir, 'exists and is not an lpc artifact; refusing to overwrite it');
  const kernels = path.join(dir, 'kernels');
  const inKernels = () => (fs.statSync(kernels).isDirectory()
    ? fs.readdirSync(kernels).map((f) => `kernels/${f}`).find((f) => !f.endsWith('.wgsl')) : 'kernels (not a directory)');
  const foreign = fs.readdirSync(dir).find((f) => !ARTIFACT_ENTRY.test(f)) ?? (fs.existsSync(kernels) ? inKernels() : undefined);
  if (foreign) throw new ArtifactError(dir, `holds ${foreign}, which lpc does not write into an artifact; refusing to replace it (choose another directory)`);
}

export function writeArtifact(dir: string, m: Module, options: ArtifactOptions): void {
  checkArtifactTarget(dir);
  const { plan, kernels } = makePlan(m);
  const files = new Map<string, string>([['graph.lpir', printModule(m)], ['plan.json', JSON.stringify(plan, null, 1)], ...kernels]);
  const tmp = `${dir.replace(/\/+$/, '')}.tmp-${process.pid}`;
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(path.join(tmp, 'kernels'), { recursive: true });
    const hashes: Record<string, string> = {};
    for (const [f, text] of files) {
      writeSynced(path.join(tmp, f), text);
      hashes[f] = sha256(text);
    }
    const manifest: Manifest = { format: ARTIFACT_FORMAT, version: ARTIFACT_VERSION, options, options_sha256: optionsHash(options), files: hashes };
    writeSynced(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
    syncFolder(path.join(tmp, 'kernels'));
    syncFolder(tmp);
    const old = `${tmp}.old`;
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    syncFolder(path.dirname(path.resolve(dir)));
    fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* nothing was made there */ }
    // the user's path and the reason, not the temporary directory's name
    const code = (e as NodeJS.ErrnoException).code;
    if (code) throw new ArtifactError(dir, `cannot write the artifact (${code}: ${fsReason(e as NodeJS.ErrnoException)})`);
    throw e;
  }
}

/** A file-system error's reason without Node's "CODE: " prefix and ", syscall 'path'" suffix. */
function fsReason(e: NodeJS.ErrnoException): string {
  return e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*$/, '');
}

export function readArtifact(dir: string): Artifact {
  if (!fs.existsSync(dir)) throw new ArtifactError(dir, 'no such artifact (compile one with `lpc compile model.ts -o dir`)');
  const mpath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(mpath)) throw new ArtifactError(dir, 'not an lpc artifact: manifest.json is missing');
  let manifest: Manifest;
  const mbuf = readDataFile(mpath, 16 * MiB);
  if (typeof mbuf === 'string') throw new ArtifactError(dir, `manifest.json ${mbuf}`);
  try {
    manifest = JSON.parse(mbuf.toString('utf8'));
  } catch (e) {
    throw new ArtifactError(dir, `manifest.json is corrupt: ${printable((e as Error).message)}`);
  }
  if (manifest?.format !== ARTIFACT_FORMAT) throw new ArtifactError(dir, 'manifest.json is not an lpc artifact manifest');
  if (manifest.version !== ARTIFACT_VERSION)
    throw new ArtifactError(dir, `artifact version ${JSON.stringify(manifest.version)} is not supported (this lpc reads version ${ARTIFACT_VERSION}); recompile it`);
  if (!manifest.files || typeof manifest.files !== 'object' || !manifest.files['graph.lpir'])
    throw new ArtifactError(dir, 'manifest.json lists no files');
  if (manifest.options_sha256 !== optionsHash(manifest.options))
    throw new ArtifactError(dir, 'manifest.json: the compile options were edited (they do not match options_sha256); recompile the model with the options you want');
  const text = new Map<string, string>();
  for (const [f, hash] of Object.entries(manifest.files)) {
    const p = path.join(dir, f);
    if (path.relative(dir, p).startsWith('..')) throw new ArtifactError(dir, `manifest names a file outside the artifact: ${printable(f)}`);
    const buf = readDataFile(p, FILE_LIMIT);
    if (typeof buf === 'string') throw new ArtifactError(dir, `${printable(f)} ${buf}`);
    if (sha256(buf) !== hash) throw new ArtifactError(dir, `${printable(f)} was modified or truncated (content hash mismatch); recompile the model`);
    text.set(f, buf.toString('utf8'));
  }
  const module = parseModule(text.get('graph.lpir')!, path.join(dir, 'graph.lpir'));
  verifyModule(module);
  const bad = checkOptions(manifest.options, module);
  if (bad) throw new ArtifactError(dir, `manifest.json: ${bad}; recompile the model`);
  let plan: Plan;
  try { plan = JSON.parse(text.get('plan.json') ?? '{"graphs":[]}'); } catch (e) { throw new ArtifactError(dir, `plan.json is corrupt: ${printable((e as Error).message)}`); }
  if (!Array.isArray(plan?.graphs)) throw new ArtifactError(dir, 'plan.json is corrupt: it has no list of graphs');
  return { dir, manifest, module, plan };
}

/** What is wrong with a manifest's compile options (they are outside the file hashes), or undefined. */
function checkOptions(o: ArtifactOptions | undefined, m: Module): string | undefined {
  if (!o || typeof o !== 'object') return 'no compile options';
  if (typeof o.model !== 'string') return 'options.model is not a name';
  if (!Number.isInteger(o.batch) || o.batch < 1) return `options.batch ${JSON.stringify(o.batch)} is not a positive integer`;
  const x = m.graphs[0]?.nodes.find((n) => n.op === 'input' && n.attrs.name === 'x');
  if (x && x.type.shape[0] !== o.batch) return `options.batch ${o.batch} disagrees with the graph's batch ${x.type.shape[0]}`;
  const opt = optimizerProblem(o.optimizer);
  if (opt) return `options.optimizer ${JSON.stringify(o.optimizer)}: ${opt}`;
  if (o.precision !== undefined && typeof o.precision !== 'string') return 'options.precision is not a precision spec';
  return undefined;
}
