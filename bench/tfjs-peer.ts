/**
 * A tfjs peer of any lpc module: the forward part of the `train` graph rebuilt from @tensorflow/tfjs ops, tfjs
 * autodiff (tf.variableGrads) and PyTorch-style SGD (d = g + wd·w; m = μ·m + d; w = w − lr·m, as passes/optimizer.ts),
 * on tfjs-backend-webgpu running on lpc's own Dawn device — so lpc and tfjs share one adapter in one process.
 *
 * tfjs convolutions are NHWC with [KH,KW,C,O] filters, so 4-D values live as NHWC and every layout change is
 * folded into the parameters once at set-up: conv weights are transposed, and the linear layer after a flatten
 * gets its columns permuted from NCHW to NHWC order (a fixed permutation commutes with elementwise SGD, so the
 * tfjs parameters stay a permutation of lpc's at every step). Per step only the batch is uploaded.
 */
import * as tf from '@tensorflow/tfjs';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { Graph, Module, Node, getGraph } from '../ir/graph.js';
import { postArgs, quantOf } from '../ir/epilogue.js';
import { PostExpr } from '../ir/post.js';
import type { SgdOptions } from '../passes/optimizer.js';
import type { Gpu } from '../runtime/webgpu/device.js';
import type { Backend } from '../runtime/backend.js';
import { attrsOf } from '../ir/op-registry.js';
import { getOp } from '../ir/ops/index.js';
import { numel } from '../ir/types.js';
import { Layout, NCHW_TO_NHWC, NHWC_TO_NCHW, fromTf, hwcOrder, toTf, transposeArray } from './tfjs-layout.js';

export { tf };

let backendFor: GPUDevice | null = null;

/** A traced value: 4-D values are NHWC; a 2-D value may be a flattened NHWC tensor (columns in H,W,C order). */
interface Val { t: tf.Tensor; flat?: [number, number, number] }
interface Stats { mean: tf.Tensor; variance: tf.Tensor }

/**
 * Makes tfjs's `webgpu` backend run on lpc's device (the same Dawn instance and adapter) and selects it.
 * tfjs checks `navigator.gpu` exists; it gets lpc's Dawn instance, which runtime/webgpu/device.ts keeps
 * referenced until shutdown (a collected instance crashes Dawn, research/webgpu-on-cpu.md §0).
 */
export async function useTfjsWebGpu(gpu: Gpu): Promise<typeof tf> {
  if (backendFor !== gpu.device) {
    const dawn = (globalThis as { __lpcDawn?: GPU[] }).__lpcDawn?.at(-1);
    if (!dawn) throw new Error('tfjs peer: lpc holds no Dawn instance (call getGpu() first)');
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav) Object.defineProperty(nav, 'gpu', { value: dawn, configurable: true, writable: true });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn }, configurable: true, writable: true });
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    const [vendor, architecture] = gpu.adapterDescription.split(' | ');
    const info = { vendor, architecture } as GPUAdapterInfo;
    // tfjs's own factory would request a second device; lpc's already has every adapter limit tfjs asks for.
    tf.registerBackend('webgpu', () => new WebGPUBackend(gpu.device, info), 3);
    backendFor = gpu.device;
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs peer: could not initialise the tfjs webgpu backend');
  return tf;
}

/** The forward part of `train`: every node the loss depends on. */
function forwardNodes(g: Graph): Node[] {
  const loss = g.outputs.find((o) => o.name === 'loss');
  if (!loss) throw new Error(`tfjs peer: graph '${g.name}' has no 'loss' output`);
  const live = new Set<number>(), stack = [loss.node];
  // BN running statistics: their state is updated from the batch statistics (already in the forward part)
  for (const u of g.updates) if (g.nodes[u.node].op === 'bn_running_update') stack.push(g.nodes[u.node].inputs[0]);
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...g.nodes[id].inputs);
  }
  return g.nodes.filter((n) => live.has(n.id));
}

export interface PeerBatch { x: Float32Array; y: Int32Array }

/**
 * The tfjs training step equivalent to lpc's `train` graph. Construct with `TfjsPeer.create` after `useTfjsWebGpu`.
 */
export class TfjsPeer {
  private static made = 0;
  private readonly vars = new Map<string, tf.Variable>();
  private readonly momenta = new Map<string, tf.Variable>();
  private readonly layouts = new Map<string, Layout>();
  private readonly trainable: tf.Variable[] = [];
  private readonly trainableNames: string[] = [];
  private readonly nodes: Node[];
  private readonly runningUpdates: { name: string; statsNode: number; momentum: number; count: number }[] = [];
  private readonly xShape: number[];
  private readonly classes: number;
  private readonly lossNode: number;
  private lrScalar: { v: number; t: tf.Scalar } | null = null;
  private readonly consts: tf.Scalar[];
  private readonly id = TfjsPeer.made++;
  /** Steps taken (lpc's `step` of the same batch when both start together: dropout masks). */
  private steps = 0;

  private constructor(private readonly m: Module, state: Map<string, Float32Array>, private readonly sgd: SgdOptions) {
    const g = getGraph(m, 'train');
    this.nodes = forwardNodes(g);
    for (const n of this.nodes) {
      if (n.op === 'quantize' || quantOf(n.epi))
        throw new Error(`tfjs peer: node %${n.id} (${n.op}) quantizes; the tfjs peer is fp32 only`);
    }
    const x = this.nodes.find((n) => n.op === 'input' && n.attrs.name === 'x');
    const loss = g.nodes[g.outputs.find((o) => o.name === 'loss')!.node];
    if (!x || loss.op !== 'softmax_xent') throw new Error('tfjs peer: expected an input x and a softmax_xent loss');
    this.xShape = x.type.shape;
    this.lossNode = loss.id;
    this.classes = g.nodes[loss.inputs[0]].type.shape[1];
    this.planLayouts();
    const stateNames = new Map(this.nodes.filter((n) => n.op === 'state').map((n) => [n.id, attrsOf(n, 'state').name]));
    for (const n of this.nodes) {
      if (n.op !== 'state') continue;
      const name = attrsOf(n, 'state').name, v = state.get(name);
      if (!v) throw new Error(`tfjs peer: no initial value for state '${name}'`);
      const l = this.layouts.get(name) ?? { shape: n.type.shape };
      this.layouts.set(name, l);
      const trainable = n.attrs.kind === 'param';
      const tv = tf.tidy(() => tf.variable(tf.tensor(toTf(v, l, n.type.shape), l.shape), trainable, `peer${this.id}/${name}`));
      this.vars.set(name, tv);
      if (trainable) {
        this.trainable.push(tv);
        this.trainableNames.push(name);
        if (sgd.momentum) this.momenta.set(name, tf.tidy(() => tf.variable(tf.zeros(l.shape), false, `peer${this.id}/${name}.momentum`)));
      }
    }
    for (const u of g.updates) {
      const n = g.nodes[u.node];
      if (n.op !== 'bn_running_update') continue;
      if (stateNames.get(n.inputs[0]) !== u.name) throw new Error(`tfjs peer: odd running-statistics update of '${u.name}'`);
      this.runningUpdates.push({ name: u.name, statsNode: n.inputs[1], momentum: attrsOf(n, 'bn_running_update').momentum, count: attrsOf(n, 'bn_running_update').count });
    }
    this.consts = [tf.scalar(sgd.wd), tf.scalar(sgd.momentum)];
  }

  static create(m: Module, state: Map<string, Float32Array>, sgd: SgdOptions): TfjsPeer {
    if (tf.getBackend() !== 'webgpu') throw new Error('tfjs peer: call useTfjsWebGpu(gpu) first');
    return new TfjsPeer(m, state, sgd);
  }

  /** Decides each parameter's tfjs layout from how the forward graph uses it. */
  private planLayouts(): void {
    const byId = new Map(this.nodes.map((n) => [n.id, n]));
    // Which values are NHWC flattens of [C,H,W] (flatten of a 4-D value with H·W > 1, through elementwise ops).
    const flat = new Map<number, [number, number, number]>();
    const set = (name: string, l: Layout) => {
      const old = this.layouts.get(name);
      if (old && JSON.stringify(old) !== JSON.stringify(l)) throw new Error(`tfjs peer: state '${name}' is used in two layouts`);
      this.layouts.set(name, l);
    };
    const stateName = (id: number) => {
      const n = byId.get(id)!;
      return n.op === 'state' ? attrsOf(n, 'state').name : null;
    };
    for (const n of this.nodes) {
      const inT = n.inputs.map((i) => byId.get(i)!.type.shape);
      if (n.op === 'reshape' && inT[0].length === 4 && n.type.shape.length === 2 && inT[0][2] * inT[0][3] > 1)
        flat.set(n.id, [inT[0][1], inT[0][2], inT[0][3]]);
      if (['relu', 'relu6', 'dropout', 'add', 'sub', 'mul', 'scale'].includes(n.op)) {
        const f = flat.get(n.inputs[0]);
        if (f && n.inputs.every((i) => JSON.stringify(flat.get(i)) === JSON.stringify(f))) flat.set(n.id, f);
      }
      if (n.op === 'conv2d') {
        const w = stateName(n.inputs[1]);
        if (!w) throw new Error('tfjs peer: conv2d weights must be parameters');
        const [O, C, KH, KW] = inT[1], groups = n.attrs.groups as number | undefined;
        if (groups === undefined) set(w, { shape: [KH, KW, C, O], perm: [2, 3, 1, 0] });
        // depthwise (groups = channels = outputs): tfjs's depthwiseConv2d filter [KH, KW, C, 1]
        else if (groups === inT[0][1] && groups === O) set(w, { shape: [KH, KW, O, 1], perm: [2, 3, 0, 1] });
        else throw new Error(`tfjs peer: a grouped conv2d that is not depthwise (groups ${groups}, ${inT[0][1]} → ${O} channels) has no tfjs translation`);
      }
      if (n.op === 'linear') {
        const w = stateName(n.inputs[1]);
        if (!w) throw new Error('tfjs peer: linear weights must be parameters');
        const [O, K] = inT[1], f = flat.get(n.inputs[0]);
        if (f) {
          // tfjs kernel [K, O]: row r is lpc column hwc[r], i.e. element (r, o) = w[o·K + hwc[r]].
          const hwc = hwcOrder(f), src = new Int32Array(K * O);
          for (let r = 0; r < K; r++) for (let o = 0; o < O; o++) src[r * O + o] = o * K + hwc[r];
          set(w, { shape: [K, O], src });
        } else set(w, { shape: [K, O], perm: [1, 0] });
      }
    }
  }

  /** The tfjs loss of the forward pass on one batch (NCHW `x` as lpc takes it). Keeps BN stats for the update. */
  private forward(xs: tf.Tensor, ys: tf.Tensor, padded: boolean, keep: Map<number, Stats>, masks: Map<number, tf.Tensor>): tf.Scalar {
    const vals = new Map<number, Val | Stats>();
    const v = (id: number) => vals.get(id) as Val;
    const plain = (val: Val, shape: number[]): tf.Tensor => {
      // lpc element order: NHWC → NCHW; a flattened NHWC → unflatten, transpose, flatten.
      if (val.t.rank === 4) return tf.transpose(val.t, NHWC_TO_NCHW);
      if (!val.flat) return val.t;
      const [C, H, W] = val.flat;
      return tf.reshape(tf.transpose(tf.reshape(val.t, [shape[0], H, W, C]), NHWC_TO_NCHW), shape);
    };
    for (const n of this.nodes) {
      const k = postArgs(n.epi), ins = n.inputs.slice(0, n.inputs.length - k);
      let out: Val | Stats;
      switch (n.op) {
        case 'input':
          if (n.attrs.name === 'x') out = { t: xs };
          else if (n.attrs.name === 'y') out = { t: ys };
          else throw new Error(`tfjs peer: unexpected input '${n.attrs.name}' in the forward graph`);
          break;
        case 'state': out = { t: this.vars.get(attrsOf(n, 'state').name)! }; break;
        case 'conv2d': {
          const { stride: s, pad: p } = attrsOf(n, 'conv2d');
          const conv = n.attrs.groups === undefined ? tf.conv2d : tf.depthwiseConv2d;
          let y: tf.Tensor = conv(v(ins[0]).t as tf.Tensor4D, v(ins[1]).t as tf.Tensor4D, s, p);
          if (ins[2] !== undefined) y = tf.add(y, v(ins[2]).t);
          out = { t: y };
          break;
        }
        case 'linear': {
          let y = tf.matMul(v(ins[0]).t as tf.Tensor2D, v(ins[1]).t as tf.Tensor2D);
          if (ins[2] !== undefined) y = tf.add(y, v(ins[2]).t);
          out = { t: y };
          break;
        }
        case 'relu': out = { t: tf.relu(v(ins[0]).t), flat: v(ins[0]).flat }; break;
        case 'relu6': out = { t: tf.relu6(v(ins[0]).t), flat: v(ins[0]).flat }; break;
        case 'dropout': {
          // lpc's own mask for this step (the same bits as its kernel), in the value's layout
          const a = v(ins[0]), mask = masks.get(n.id)!;
          if (a.flat) throw new Error('tfjs peer: dropout of a flattened map has no tfjs translation');
          out = { t: tf.mul(a.t, a.t.rank === 4 ? tf.transpose(mask, NCHW_TO_NHWC) : mask) };
          break;
        }
        case 'concat': {
          const rank = n.type.shape.length, axis = n.attrs.axis as number;
          const xs = ins.map((i) => v(i));
          if (xs.some((x) => x.flat)) throw new Error('tfjs peer: concat of flattened values has no tfjs translation');
          out = { t: tf.concat(xs.map((x) => x.t), rank === 4 ? NCHW_TO_NHWC.indexOf(axis) : axis) };
          break;
        }
        case 'add': case 'sub': case 'mul': {
          const a = v(ins[0]), b = v(ins[1]);
          const same = JSON.stringify(a.flat) === JSON.stringify(b.flat);
          const [ta, tb] = same ? [a.t, b.t] : [plain(a, n.type.shape), plain(b, n.type.shape)];
          const f = n.op === 'add' ? tf.add : n.op === 'sub' ? tf.sub : tf.mul;
          out = { t: f(ta, tb), flat: same ? a.flat : undefined };
          break;
        }
        case 'scale': out = { t: tf.mul(v(ins[0]).t, attrsOf(n, 'scale').c), flat: v(ins[0]).flat }; break;
        case 'maxpool': case 'avgpool': {
          const { k, stride: s } = attrsOf(n, 'maxpool', 'avgpool');
          const f = n.op === 'maxpool' ? tf.maxPool : tf.avgPool;
          out = { t: f(v(ins[0]).t as tf.Tensor4D, k, s, 'valid') };
          break;
        }
        case 'reshape': {
          const a = v(ins[0]), to = n.type.shape, from = a.t.shape;
          if (a.t.rank === 4 && to.length === 2) {
            // flatten: free in NHWC; the consumer's weights carry the column order (H·W = 1: already NCHW order)
            out = { t: tf.reshape(a.t, to), flat: from[1]! * from[2]! > 1 ? [from[3]!, from[1]!, from[2]!] : undefined };
          } else {
            const t = tf.reshape(plain(a, byShape(ins[0], this.nodes)), to);
            out = { t: to.length === 4 ? tf.transpose(t, NCHW_TO_NHWC) : t };
          }
          break;
        }
        case 'bn_stats': {
          const a = v(ins[0]);
          const x = a.t.rank === 4 ? a.t : plain(a, byShape(ins[0], this.nodes));
          const { mean, variance } = tf.moments(x, a.t.rank === 4 ? [0, 1, 2] : [0]);
          out = { mean, variance };
          if (keep.has(n.id)) keep.set(n.id, { mean: tf.keep(mean), variance: tf.keep(variance) });
          break;
        }
        case 'bn_apply': {
          const a = v(ins[0]);
          const x = a.t.rank === 4 || !a.flat ? a.t : plain(a, n.type.shape);
          let st = vals.get(ins[1]) as Stats | Val;
          if (!('mean' in st)) {
            const [mean, variance] = tf.split(st.t, 2, 0);
            st = { mean: tf.reshape(mean, [-1]), variance: tf.reshape(variance, [-1]) };
          }
          out = { t: tf.batchNorm(x, st.mean, st.variance, v(ins[3]).t, v(ins[2]).t, attrsOf(n, 'bn_apply').eps) };
          break;
        }
        case 'softmax_xent': {
          const z = v(ins[0]);
          const logits = plain(z, n.type.shape.length === 2 ? n.type.shape : byShape(ins[0], this.nodes));
          const labels = v(ins[1]).t;
          const onehot = tf.oneHot(labels as tf.Tensor1D, this.classes); // label −1 → a zero row
          // mean over the samples with a label (tfjs's default reduction divides by the non-zero weights)
          const w = padded ? tf.cast(tf.greaterEqual(labels, 0), 'float32') : undefined;
          out = { t: tf.losses.softmaxCrossEntropy(onehot, logits, w) };
          break;
        }
        default:
          throw new Error(`tfjs peer: op '${n.op}' (%${n.id}) has no tfjs translation`);
      }
      // fused elementwise post-ops (ir/post.ts): the same ops on the tfjs values, operands in the result's layout
      if (n.epi?.post) {
        const extra = n.inputs.slice(ins.length).map((i) => v(i).t);
        out = { ...(out as Val), t: postTf(n.epi.post, (out as Val).t, extra) };
      }
      vals.set(n.id, out);
    }
    return (vals.get(this.lossNode) as Val).t as tf.Scalar;
  }

  /** A batch in the layout `upload` takes, prepared once (so the timed step only uploads, as lpc's does). */
  prepare(b: PeerBatch): PeerBatch {
    const [, C] = this.xShape;
    return this.xShape.length === 4 && C !== 1 ? { x: transposeArray(b.x, this.xShape, NCHW_TO_NHWC), y: b.y } : b;
  }

  /** One training step on a batch from `prepare`; resolves with the loss once the step has finished on the GPU. */
  async step(b: PeerBatch, lr: number): Promise<number> {
    const [N, C, H, W] = this.xShape;
    const x = this.xShape.length === 4 ? tf.tensor4d(b.x, [N, H, W, C]) : tf.tensor(b.x, this.xShape);
    const y = tf.tensor1d(b.y, 'int32');
    if (!this.lrScalar || this.lrScalar.v !== lr) {
      this.lrScalar?.t.dispose();
      this.lrScalar = { v: lr, t: tf.scalar(lr) };
    }
    const lrT = this.lrScalar.t, [wd, mu] = this.consts;
    const keep = new Map<number, Stats>(this.runningUpdates.map((u) => [u.statsNode, null as unknown as Stats]));
    const masks = this.dropoutMasks(this.steps++);
    const { value, grads } = tf.variableGrads(() => this.forward(x, y, b.y.some((l) => l < 0), keep, masks), this.trainable);
    tf.tidy(() => {
      this.trainable.forEach((p, i) => {
        let d = grads[p.name];
        if (this.sgd.wd) d = tf.add(d, tf.mul(p, wd));
        const mom = this.momenta.get(this.trainableNames[i]);
        if (mom) {
          d = tf.add(tf.mul(mom, mu), d);
          mom.assign(d);
        }
        p.assign(tf.sub(p, tf.mul(d, lrT)));
      });
      for (const u of this.runningUpdates) {
        // PyTorch: r ← (1−m)·r + m·batch, unbiased variance
        const r = this.vars.get(u.name)!, st = keep.get(u.statsNode)!;
        const batch = tf.stack([st.mean, tf.mul(st.variance, u.count / Math.max(u.count - 1, 1))]);
        r.assign(tf.add(tf.mul(r, 1 - u.momentum), tf.mul(batch, u.momentum)));
      }
    });
    for (const st of keep.values()) { st.mean.dispose(); st.variance.dispose(); }
    tf.dispose([...masks.values()]);
    tf.dispose(grads);
    x.dispose();
    y.dispose();
    const loss = (await value.data())[0];
    value.dispose();
    return loss;
  }

  /** lpc's dropout masks (1/(1 − p) or 0, NCHW) for a step at seed 0, from its CPU op: the same bits as its kernels,
   *  so the peer's losses can agree with lpc's. Made on the host and uploaded each step (small: classifier inputs). */
  private dropoutMasks(step: number): Map<number, tf.Tensor> {
    const masks = new Map<number, tf.Tensor>();
    for (const n of this.nodes) {
      if (n.op !== 'dropout') continue;
      const ones = new Float32Array(numel(n.type.shape)).fill(1), mask = new Float32Array(ones.length);
      getOp('dropout').cpu([ones], mask, { attrs: n.attrs, epi: n.epi, inTypes: [n.type], type: n.type, rng: { seed: 0, step, tensorId: n.id } });
      masks.set(n.id, tf.tensor(mask, n.type.shape));
    }
    return masks;
  }

  /** The current state in lpc's layouts (parameters, BN running statistics, momentum buffers as `<name>.momentum`). */
  async getState(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.vars) {
      const l = this.layouts.get(name)!;
      out.set(name, fromTf((await v.data()) as Float32Array, l));
      const mom = this.momenta.get(name);
      if (mom) out.set(`${name}.momentum`, fromTf((await mom.data()) as Float32Array, l));
    }
    return out;
  }

  dispose(): void {
    for (const v of [...this.vars.values(), ...this.momenta.values()]) v.dispose();
    this.lrScalar?.t.dispose();
    tf.dispose(this.consts);
  }
}

function byShape(id: number, nodes: Node[]): number[] {
  return nodes.find((n) => n.id === id)!.type.shape;
}

/** The loss-agreement bar between lpc and its tfjs peer (fp32, same weights, same batch), from issue 4. */
export const PEER_LOSS_RTOL = 1e-4;

export interface Agreement { lpc: number[]; tfjs: number[]; maxRelDiff: number }

/**
 * Trains lpc (`b`, already holding `state`) and the tfjs peer (made from the same `state`) side by side on the same
 * batches and compares the losses step by step: step 1 checks the forward pass, later steps the gradients and SGD.
 */
export async function lossAgreement(b: Backend, peer: TfjsPeer, batches: PeerBatch[], lr: number, seed = 0): Promise<Agreement> {
  const lpc: number[] = [], tfjs: number[] = [];
  const lrBuf = Float32Array.of(lr);
  for (let i = 0; i < batches.length; i++) {
    const { x, y } = batches[i];
    lpc.push((await b.run('train', { x, y, lr: lrBuf }, { seed, step: i }, ['loss'])).loss[0]);
    tfjs.push(await peer.step(peer.prepare(batches[i]), lr));
  }
  const maxRelDiff = Math.max(...lpc.map((l, i) => Math.abs(tfjs[i] - l) / Math.max(Math.abs(l), 1e-30)));
  return { lpc, tfjs, maxRelDiff };
}

/** A post-op expression on tfjs tensors (the forward ops lpc folds: relu, relu6, add, sub, mul, scale, mul_scalar). */
function postTf(e: PostExpr, x: tf.Tensor, args: tf.Tensor[]): tf.Tensor {
  if (e.kind === 'x') return x;
  if (e.kind === 'arg') return args[e.index];
  const a = e.args.map((z) => postTf(z, x, args));
  switch (e.op) {
    case 'relu': return tf.relu(a[0]);
    case 'relu6': return tf.relu6(a[0]);
    case 'add': return tf.add(a[0], a[1]);
    case 'sub': return tf.sub(a[0], a[1]);
    case 'mul': case 'mul_scalar': return tf.mul(a[0], a[1]);
    case 'scale': return tf.mul(a[0], attrsOf(e, 'scale').c);
    default: throw new Error(`tfjs peer: post-op '${e.op}' has no tfjs translation`);
  }
}
