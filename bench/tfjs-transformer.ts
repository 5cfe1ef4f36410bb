/**
 * models/transformer-lm.ts written in @tensorflow/tfjs ops (for bench/seq-step.ts): the same pre-LN decoder — token +
 * learned position embeddings, per block x + attn(LN(x)) (separate q/k/v, causal softmax(q·kᵀ/√dh)·v, output
 * projection) and x + W2·GELU(W1·LN(x)) with the exact erf GELU, final LN, linear head — from lpc's state names and
 * initial values, trained by tfjs autodiff and tf.train.adam on tfjs-backend-webgpu (lpc's Dawn device, see
 * tfjs-peer.ts). tfjs's Adam puts ε outside the bias correction (ε̂ = ε·√(1−β2^t)), a difference far below the
 * timing's noise; the first loss (before any update) must equal lpc's.
 */
import type { Tensor } from '@tensorflow/tfjs';
import { tf } from './tfjs-peer.js';

export interface TfjsTransformerDims { V: number; T: number; D: number; heads: number; layers: number }

export class TfjsTransformer {
  private readonly vars = new Map<string, ReturnType<typeof tf.variable>>();
  private readonly opt;
  private readonly mask: Tensor;

  constructor(state: Map<string, Float32Array>, shapes: Map<string, number[]>, private readonly d: TfjsTransformerDims, lr: number) {
    for (const [name, shape] of shapes) this.vars.set(name, tf.variable(tf.tensor(state.get(name)!, shape), true, `seq/${name}`));
    this.opt = tf.train.adam(lr, 0.9, 0.999, 1e-8);
    // causal mask: −1e30 above the diagonal (a finite value keeps every max and gradient finite)
    this.mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([d.T, d.T]), -1, 0)), -1e30));
  }

  private v(name: string): Tensor {
    const t = this.vars.get(name);
    if (!t) throw new Error(`tfjs transformer: no parameter '${name}'`);
    return t;
  }
  private linear(x: Tensor, name: string): Tensor {
    const K = x.shape[x.shape.length - 1], lead = x.shape.slice(0, -1);
    const y = tf.add(tf.matMul(tf.reshape(x, [-1, K]), this.v(`${name}.weight`), false, true), this.v(`${name}.bias`));
    return tf.reshape(y, [...lead, -1]);
  }
  private layerNorm(x: Tensor, name: string): Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), this.v(`${name}.weight`)), this.v(`${name}.bias`));
  }
  private attention(x: Tensor, name: string): Tensor {
    const [N, T, D] = x.shape, H = this.d.heads, dh = D / H;
    const heads = (t: Tensor) => tf.transpose(tf.reshape(t, [N, T, H, dh]), [0, 2, 1, 3]);
    const q = heads(this.linear(x, `${name}.q`)), k = heads(this.linear(x, `${name}.k`)), v = heads(this.linear(x, `${name}.v`));
    const p = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), this.mask));
    return this.linear(tf.reshape(tf.transpose(tf.matMul(p, v), [0, 2, 1, 3]), [N, T, D]), `${name}.proj`);
  }
  private gelu(x: Tensor): Tensor { return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))); }

  /** The mean next-token cross-entropy of a batch (ids x, targets y: [N·T] i32). */
  loss(x: Int32Array, y: Int32Array): Tensor {
    const { T, V } = this.d, N = x.length / T;
    const ids = tf.tensor2d(x, [N, T], 'int32');
    let h = tf.add(tf.gather(this.v('tok.weight'), ids), tf.expandDims(this.v('pos.weight'), 0));
    for (let i = 0; i < this.d.layers; i++) {
      h = tf.add(h, this.attention(this.layerNorm(h, `h${i}.ln0`), `h${i}.attn0`));
      h = tf.add(h, this.linear(this.gelu(this.linear(this.layerNorm(h, `h${i}.ln1`), `h${i}.linear0`)), `h${i}.linear1`));
    }
    const logits = tf.reshape(this.linear(this.layerNorm(h, 'ln_f'), 'head'), [N * T, V]);
    const onehot = tf.oneHot(tf.tensor1d(y, 'int32'), V);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1)));
  }

  /** One training step; returns the loss read back (as lpc's step reads its loss). */
  async step(x: Int32Array, y: Int32Array): Promise<number> {
    const cost = this.opt.minimize(() => this.loss(x, y) as tf.Scalar, true, [...this.vars.values()]);
    const v = (await cost!.data())[0];
    cost!.dispose();
    return v;
  }

  /** The loss without an update. */
  async evalLoss(x: Int32Array, y: Int32Array): Promise<number> {
    const l = tf.tidy(() => this.loss(x, y));
    const v = (await l.data())[0];
    l.dispose();
    return v;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.mask.dispose();
    this.opt.dispose();
  }
}
