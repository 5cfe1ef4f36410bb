/**
 * Floating-point tensors of other widths as float32, for safetensors files written by PyTorch (`F16`, `BF16`, `F64`
 * beside `F32`). Little-endian bytes in, a Float32Array out. Conversions are exact where float32 can hold the value
 * (every f16 and bf16 value, subnormals, ±Inf and NaN included); f64 rounds to nearest even (Math.fround), with
 * overflow to ±Inf as IEEE conversion does.
 */

/** One IEEE binary16 bit pattern as a number (exact). */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >>> 10) & 0x1f, man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24; // zero and subnormals: man × 2^−14 / 2^10
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** One bfloat16 bit pattern as a number: the upper half of a float32's bits (exact, NaN payloads kept). */
export function bf16ToNumber(h: number): number {
  const u = new Uint32Array([(h & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0];
}

/** Bytes per element of the float dtypes lpc reads. */
export const FLOAT_DTYPES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** Bytes per element of safetensors' other dtypes (integers, bool, f8): lpc checks their layout but reads no values. */
export const OTHER_DTYPES: Record<string, number> = { BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, I32: 4, U32: 4, I64: 8, U64: 8 };

/** `bytes` (little-endian elements of `dtype`, one of FLOAT_DTYPES) as float32. */
export function toFloat32(dtype: string, bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / FLOAT_DTYPES[dtype];
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32': new Uint8Array(out.buffer).set(bytes); break; // bit copy (lpc runs on little-endian hosts)
    case 'F64': for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true); break;
    case 'F16': for (let i = 0; i < n; i++) out[i] = f16ToNumber(view.getUint16(2 * i, true)); break;
    case 'BF16': {
      // bit copy, so a NaN keeps its payload and sign
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    default: throw new Error(`toFloat32: dtype ${dtype} is not a float dtype lpc reads`);
  }
  return out;
}
