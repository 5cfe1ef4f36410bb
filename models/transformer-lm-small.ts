// A small pre-LN Transformer LM (blocks/lm.ts): 2 layers, width 64, 4 heads, untied head, no dropout — sized for
// recipe comparisons that must finish in minutes on a CPU Vulkan driver (bench/recipes-seq.ts).
// Options: --input T (sequence length, default 128), --classes V (vocabulary, default 97 = sotu:chars).
import { model } from 'lpc/dsl';
import { transformerLM } from './blocks/lm.js';

export default model('transformer_lm_small', (o) => transformerLM(o, { layers: 2, width: 64, heads: 4 }));
