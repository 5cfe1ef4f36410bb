// An LSTM language model (Zaremba et al. 2014's stacked-LSTM LM, without dropout): a token embedding, two LSTM layers
// (torch.nn.LSTM semantics, zero initial states, unrolled over the sequence at compile time) and a linear head to the
// vocabulary. Differences from a 2-layer torch.nn.LSTM: each layer is its own module (`lstm0.weight_ih_l0`,
// `lstm1.weight_ih_l0` rather than `lstm.weight_ih_l0`/`_l1`); the same numbers otherwise.
// Options: --input T (sequence length, default 64), --classes V (vocabulary, default 97 = sotu:chars).
import { model, tokens, embedding, lstm, linear } from 'lpc/dsl';

const EMBED = 128, HIDDEN = 256, LAYERS = 2;

export default model('lstm_lm', (o) => {
  const V = o.classes ?? 97;
  let h = embedding(tokens(o.input?.[0] ?? 64), V, EMBED, { name: 'tok' });
  for (let i = 0; i < LAYERS; i++) h = lstm(h, HIDDEN);
  return linear(h, V, { name: 'head' });   // logits [N, T, V]
});
