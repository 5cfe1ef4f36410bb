// An LSTM language model (Zaremba et al. 2014's stacked-LSTM LM, without dropout): embedding 128, two LSTM layers
// of 256 (torch.nn.LSTM semantics, zero initial states, unrolled over the sequence at compile time), a linear head
// (blocks/lm.ts; lstm-lm-tied.ts ties the head to the embedding).
// Options: --input T (sequence length, default 64), --classes V (vocabulary, default 97 = sotu:chars).
import { model } from 'lpc/dsl';
import { lstmLM } from './blocks/lm.js';

export const EMBED = 128, HIDDEN = 256, LAYERS = 2;

export default model('lstm_lm', (o) => lstmLM(o, { embed: EMBED, hidden: HIDDEN, layers: LAYERS }));
