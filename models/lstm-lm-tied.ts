// models/lstm-lm.ts as Press & Wolf 2017 tie Zaremba et al.'s medium LSTM LM (blocks/lm.ts): the head's weight is
// the embedding's, so the embedding is as wide as the LSTMs (256, as the medium model's 650/650), and dropout 0.5 on
// the embedding output, between the layers and before the head, as both papers' medium models.
// Options: --input T (sequence length, default 64), --classes V (vocabulary, default 97 = sotu:chars).
import { model } from 'lpc/dsl';
import { lstmLM } from './blocks/lm.js';

export default model('lstm_lm_tied', (o) => lstmLM(o, { embed: 256, hidden: 256, layers: 2, tied: true, dropout: 0.5 }));
