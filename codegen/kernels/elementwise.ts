/**
 * One generator for every elementwise op: the formula is codegen/ew-wgsl.ts's spelling of the op table's `ew`, so
 * CPU and WGSL compute the same. Each invocation does 4 elements: when the length is a multiple of 4 the main tensors
 * are viewed as vec4 (16-byte loads), else a guarded loop of 4 scalars. The formula is applied per component because the table's
 * formulas are scalar (`max(a, 0.0)` does not type-check on a vec4). Scalar inputs (`scalarInputs`, [1]) are
 * read once. The quantize epilogue applies per element with its flat index (t·4 + component in the vec4 path).
 */
import { getOp } from '../../ir/ops/index.js';
import { Kernel } from '../kernel.js';
import { ewWgsl } from '../ew-wgsl.js';
import { Rounding } from '../../ir/format.js';
import { BlockFormat, BufferDecl, NodeCtx, ceilDiv, epilogue, ewWorkgroup, inBuf, isBlockFormat, makeKernel, nodeQuant, outBuf, outNumel, postOps, qpostOf } from './builder.js';
import { onePassBlockKernel, onePassFits } from './quantize.js';
import { mxNodeKernel } from './mx.js';

export function elementwiseKernels(c: NodeCtx): Kernel[] {
  const def = getOp(c.node.op);
  const ew = def.ew;
  if (!ew) throw new Error(`${c.node.op} is not elementwise`);
  const n = outNumel(c);
  const q = nodeQuant(c.node);
  // MX: an invocation owns whole blocks (kernels/mx.ts), the op and its rounding in one dispatch
  if (q?.fmt.kind === 'mx') return [mxElementwise(c)];
  // A block-format epilogue on a small enough output: quantize in the same dispatch (one workgroup per block).
  if (q && isBlockFormat(q.fmt) && onePassFits(q.fmt, c.node.type.shape)) return [onePassElementwise(c, q.fmt, q.rounding)];
  const ep = epilogue(c);
  const scalars = ew.scalarInputs ?? [];
  const vec4 = n % 4 === 0;
  const buffers: BufferDecl[] = c.node.inputs.map((_, i) => {
    const b = inBuf(c, i, `in${i}`);
    return vec4 && !scalars.includes(i) ? { ...b, view: 'vec4<f32>' } : b;
  });
  buffers.push(vec4 ? { ...outBuf(c), view: 'vec4<f32>' } : outBuf(c));
  const scalarLoads = c.node.inputs.map((_, i) => (scalars.includes(i) ? `  let v${i} = in${i}[0];` : '')).filter((l) => l);
  const elemLoads = c.node.inputs.map((_, i) => (scalars.includes(i) ? '' : `let e${i} = in${i}[i]; `)).join('');
  const elemArgs = c.node.inputs.map((_, i) => (scalars.includes(i) ? `v${i}` : `e${i}`));
  let body: string;
  if (vec4) {
    const loads = c.node.inputs.map((_, i) => `  let v${i} = in${i}[${scalars.includes(i) ? '0' : 't'}];`);
    const at = (k: string) => c.node.inputs.map((_, i) => (scalars.includes(i) ? `v${i}` : `v${i}.${k}`));
    const comps = ['x', 'y', 'z', 'w'].map((k, q) => ep.q(ewWgsl(c.node.op, at(k), c.node.attrs), `t * 4u + ${q}u`));
    body = `${loads.join('\n')}\n  out[t] = vec4<f32>(${comps.join(', ')});`;
  } else {
    // four elements per invocation here too (per-invocation overhead dominates on CPU drivers), the tail guarded
    body = `${scalarLoads.join('\n')}
  let i0 = t * 4u;
  for (var i = i0; i < min(i0 + 4u, P.n); i++) { ${elemLoads}out[i] = ${ep.q(ewWgsl(c.node.op, elemArgs, c.node.attrs), 'i')}; }`;
  }
  return [makeKernel({
    name: `${c.node.op}${vec4 ? '_vec4' : ''}`,
    buffers,
    params: vec4 ? {} : { n },
    invocations: ceilDiv(n, 4),
    workgroup: ewWorkgroup(c.variant),
    epilogue: ep,
    body,
  })];
}

/** The op with its bfp/minmax quantizer in one dispatch (quantize.ts onePassBlockKernel): scalar loads. */
function onePassElementwise(c: NodeCtx, fmt: BlockFormat, rounding: Rounding): Kernel {
  const ew = getOp(c.node.op).ew!;
  const scalars = ew.scalarInputs ?? [];
  const post = postOps(c);
  const buffers: BufferDecl[] = [...c.node.inputs.map((_, i) => inBuf(c, i, `in${i}`)), outBuf(c), ...post.buffers];
  const args = c.node.inputs.map((_, i) => (scalars.includes(i) ? `in${i}[0]` : `in${i}[i]`));
  return onePassBlockKernel({
    name: c.node.op, fmt, rounding, tensorId: c.node.id, shape: c.node.type.shape, buffers, params: {},
    value: () => ({ loads: '', expr: post.apply(ewWgsl(c.node.op, args, c.node.attrs), 'i') }), out: 'out', after: qpostOf(c), variant: c.variant,
  });
}

/** The op with its MX quantizer (kernels/mx.ts): each invocation computes its blocks' values once, then rounds them. */
function mxElementwise(c: NodeCtx): Kernel {
  const scalars = getOp(c.node.op).ew!.scalarInputs ?? [];
  const args = (i: string) => c.node.inputs.map((_, k) => (scalars.includes(k) ? `in${k}[0]` : `in${k}[${i}]`));
  return mxNodeKernel(c, c.node.op, c.node.inputs.map((_, k) => inBuf(c, k, `in${k}`)), {},
    (i) => ({ loads: '', expr: ewWgsl(c.node.op, args(i), c.node.attrs) }), { recompute: true });
}
