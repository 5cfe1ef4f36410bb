/** The precision-spec language: `W=bfp<8,axis=0>:stochastic A=fp16 ; schedule fwd=cyclic(3,8,periods=32) ; save=…`. */
export * from './policy.js';
export { parseSpecCst } from './parser.js';
export * from './schedule.js';
