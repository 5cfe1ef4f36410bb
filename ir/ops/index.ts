/**
 * The op table: every op's arity, attribute schema, shape rule, CPU semantics and gradient rule, one entry per op,
 * defined by family in this folder and registered in the one registry (ir/op-registry.ts). Importing this module
 * registers them all. The CPU semantics here are the living spec: the WGSL kernels in codegen/ must match them.
 * Layouts are PyTorch's: activations NCHW, conv weights [O,C,KH,KW], linear weights [O,K].
 */
import './sources.js';
import './elementwise.js';
import './quantize.js';
import './dense.js';
import './conv.js';
import './pool.js';
import './concat.js';
import './batchnorm.js';
import './loss.js';
import './compress.js';
import './activation.js';
import './sequence.js';
import './slicing.js';
export type { Arr, AttrKind, AttrsOf, CpuCtx, GradCtx, OpAttrs, OpDef, OpName } from '../op-registry.js';
export { allOps, attrsOf, getOp } from '../op-registry.js';
export { QPOST_OPS, takesEpilogue } from './epilogue.js';
export { postArgs, quantOf, withoutQuantizer } from '../epilogue.js';
export { convOutSize, poolOutSize } from './helpers.js';
export { poolPad } from './helpers.js';
export { convGroups } from './conv.js';
export { MAX_CONCAT_INPUTS } from './concat.js';
export { axisSplit } from './helpers.js';
export { adaptiveWindow } from './pool.js';
export { DROPOUT_STREAM, dropoutThreshold } from './elementwise.js';

