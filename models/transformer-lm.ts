// A GPT-style pre-LN decoder-only Transformer language model (Radford et al. 2019's block layout; nanoGPT's
// structure): token + learned position embeddings, `layers` blocks of x + attn(LN(x)) and x + MLP(LN(x)) with causal
// multi-head self-attention and a 4×width GELU MLP, a final LayerNorm and a linear head to the vocabulary.
// Differences from GPT-2: separate q/k/v projections (one fused c_attn in GPT-2), no dropout, no weight tying,
// PyTorch's default initialisation (nn.Linear's uniform ±1/√fan_in, nn.Embedding's N(0, 1)).
// Options: --input T (sequence length, default 128), --classes V (vocabulary, default 97 = sotu:chars).
import { model, tokens, positions, embedding, add, layerNorm, selfAttention, linear, gelu, scope } from 'lpc/dsl';

const LAYERS = 4, WIDTH = 256, HEADS = 4;

export default model('transformer_lm', (o) => {
  const x = tokens(o.input?.[0] ?? 128);
  const T = x.shape[1], V = o.classes ?? 97;
  let h = add(embedding(x, V, WIDTH, { name: 'tok' }), embedding(positions(x), T, WIDTH, { name: 'pos' }));
  for (let i = 0; i < LAYERS; i++) {
    h = scope(`h${i}`, () => {
      const a = add(h, selfAttention(layerNorm(h), { heads: HEADS }));
      return add(a, linear(gelu(linear(layerNorm(a), 4 * WIDTH)), WIDTH));
    });
  }
  return linear(layerNorm(h, { name: 'ln_f' }), V, { name: 'head' });   // logits [N, T, V]
});
