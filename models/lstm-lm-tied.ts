// models/lstm-lm.ts with the head's weight tied to the embedding (Press & Wolf 2017; blocks/lm.ts), so the
// embedding is as wide as the LSTMs (256, as Zaremba's medium model's 650/650): two LSTM layers of 256.
// Options: --input T (sequence length, default 64), --classes V (vocabulary, default 97 = sotu:chars).
import { model } from 'lpc/dsl';
import { lstmLM } from './blocks/lm.js';

export default model('lstm_lm_tied', (o) => lstmLM(o, { embed: 256, hidden: 256, layers: 2, tied: true }));
