// Language models over token ids (issue 29), shared by transformer-lm*.ts and lstm-lm*.ts. The compile options carry
// only --input T and --classes V, so sizes, weight tying and dropout are arguments here: another variant is a model
// file of three lines, `model('lm', (o) => transformerLM(o, { layers: 2, width: 64, heads: 4, tied: true }))`.
//
// transformerLM: a GPT-style pre-LN decoder (Radford et al. 2019's block layout; nanoGPT's structure): token +
// learned position embeddings, `layers` blocks of x + attn(LN(x)) and x + MLP(LN(x)) with causal multi-head
// self-attention and a 4×width GELU MLP, a final LayerNorm and a linear head to the vocabulary. Differences from
// GPT-2: separate q/k/v projections (one fused c_attn in GPT-2); PyTorch's default initialisation (nn.Linear's
// uniform ±1/√fan_in, nn.Embedding's N(0, 1)); the head keeps a bias (nanoGPT's has none); dropout (GPT-2's
// embd_pdrop and resid_pdrop, after the embeddings' sum and after each block's attention and MLP) but no
// attention-probability dropout.
//
// lstmLM: Zaremba et al. 2014's stacked-LSTM LM: a token embedding, `layers` LSTM layers (torch.nn.LSTM semantics,
// zero initial states, unrolled over the sequence at compile time), dropout between them as Zaremba's (on the
// embedding output, between layers and before the head), and a linear head. Each layer is its own module
// (`lstm0.weight_ih_l0`, `lstm1.weight_ih_l0` rather than one torch.nn.LSTM's `_l0`/`_l1`); the same numbers otherwise.
//
// `tied` (Press & Wolf 2017; GPT-2's lm_head.weight = wte.weight): the head's weight [V, width] is the token
// embedding's, one parameter `tok.weight` whose gradient is the sum of both uses; the head keeps its own bias. An
// LSTM LM can tie only when the embedding width equals the last layer's hidden size (Zaremba's medium model: 650).
import { tokens, positions, embedding, add, layerNorm, selfAttention, linear, gelu, scope, dropout, lstm, Tensor, ModelOptions } from 'lpc/dsl';

/** Dropout with probability p, or nothing at all (no node, no record) without it. */
const dropper = (p = 0) => (t: Tensor): Tensor => (p > 0 ? dropout(t, p) : t);

export interface TransformerLM { layers: number; width: number; heads: number; tied?: boolean; dropout?: number }

/** The logits [N, T, V] of a pre-LN decoder (defaults: T 128, V 97 = sotu:chars). */
export function transformerLM(o: ModelOptions, c: TransformerLM): Tensor {
  const x = tokens(o.input?.[0] ?? 128);
  const T = x.shape[1], V = o.classes ?? 97, D = c.width, drop = dropper(c.dropout);
  const tok = embedding(x, V, D, { name: 'tok' });
  let h = drop(add(tok, embedding(positions(x), T, D, { name: 'pos' })));
  for (let i = 0; i < c.layers; i++) {
    h = scope(`h${i}`, () => {
      const a = add(h, drop(selfAttention(layerNorm(h), { heads: c.heads })));
      return add(a, drop(linear(gelu(linear(layerNorm(a), 4 * D)), D)));
    });
  }
  return linear(layerNorm(h, { name: 'ln_f' }), V, { name: 'head', ...(c.tied ? { tiedTo: tok } : {}) });
}

export interface LstmLM { embed: number; hidden: number; layers: number; tied?: boolean; dropout?: number }

/** The logits [N, T, V] of a stacked-LSTM LM (defaults: T 64, V 97 = sotu:chars). */
export function lstmLM(o: ModelOptions, c: LstmLM): Tensor {
  if (c.tied && c.embed !== c.hidden)
    throw new Error(`lstmLM: a tied head needs the embedding width ${c.embed} to equal the hidden size ${c.hidden}`);
  const V = o.classes ?? 97, drop = dropper(c.dropout);
  const tok = embedding(tokens(o.input?.[0] ?? 64), V, c.embed, { name: 'tok' });
  let h = drop(tok);
  for (let i = 0; i < c.layers; i++) h = drop(lstm(h, c.hidden));
  return linear(h, V, { name: 'head', ...(c.tied ? { tiedTo: tok } : {}) });
}
