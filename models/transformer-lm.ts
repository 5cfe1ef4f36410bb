// A GPT-style pre-LN decoder-only Transformer language model: 4 layers, width 256, 4 heads, untied head, no dropout
// (the network and where it differs from GPT-2: blocks/lm.ts). transformer-lm-tied.ts ties the head to the token
// embedding; transformer-lm-small.ts is a 2-layer width-64 one for quick recipe runs.
// Options: --input T (sequence length, default 128), --classes V (vocabulary, default 97 = sotu:chars).
import { model } from 'lpc/dsl';
import { transformerLM } from './blocks/lm.js';

export const LAYERS = 4, WIDTH = 256, HEADS = 4;

export default model('transformer_lm', (o) => transformerLM(o, { layers: LAYERS, width: WIDTH, heads: HEADS }));
