// models/transformer-lm.ts (4 layers, width 256, 4 heads) with the head's weight tied to the token embedding
// (GPT-2's lm_head.weight = wte.weight; blocks/lm.ts): one parameter `tok.weight`, V·256 fewer parameters.
// Options: --input T (sequence length, default 128), --classes V (vocabulary, default 97 = sotu:chars).
import { model } from 'lpc/dsl';
import { transformerLM } from './blocks/lm.js';

export default model('transformer_lm_tied', (o) => transformerLM(o, { layers: 4, width: 256, heads: 4, tied: true }));
