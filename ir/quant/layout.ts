/**
 * Blocks of a tensor along an axis, shared by the block quantizers (bfp in ./quantize.ts, minmax in ./minmax.ts) and
 * codegen: a module of its own so that those two do not import each other.
 */

/** Row-major view of `shape` around `axis`: index i lies in block floor(i / inner) % axisLen. */
export interface BlockLayout { outer: number; axisLen: number; inner: number }

export function blockLayout(shape: readonly number[], axis: number | 'tensor'): BlockLayout {
  const n = shape.reduce((a, b) => a * b, 1);
  if (axis === 'tensor') return { outer: 1, axisLen: 1, inner: n };
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length)
    throw new Error(`bfp axis ${axis} out of range for shape [${shape.join(',')}]`);
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return { outer, axisLen: shape[axis], inner };
}
