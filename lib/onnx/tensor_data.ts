/**
 * Values of an ONNX TensorProto as typed arrays, and typed arrays as TensorProtos. ONNX stores
 * values either packed little-endian in `rawData` or in the typed repeated fields; both are read.
 * Written tensors always use `rawData`, the form exporters emit.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { DataType, type TensorProto } from "./types.ts";

const littleEndianHost: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementCount(t: TensorProto): number {
  let n = 1;
  for (const d of t.dims) n *= d;
  return n;
}

function requireInline(t: TensorProto): void {
  if (t.dataLocation === 1 || (t.externalData && t.externalData.length > 0)) {
    const loc = t.externalData?.find((e) => e.key === "location")?.value ?? "?";
    throw new AttnkitError(
      t.name || "tensor",
      `values are stored in external data file "${loc}"; load them before reading`,
    );
  }
}

function rawView(t: TensorProto, bytesPer: number): DataView {
  const raw = t.rawData!;
  const n = elementCount(t);
  if (raw.byteLength !== n * bytesPer) {
    throw new AttnkitError(
      t.name || "tensor",
      `raw_data has ${raw.byteLength} bytes, dims [${t.dims}] need ${n * bytesPer}`,
    );
  }
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** Copies little-endian bytes into a fresh aligned buffer (raw data may sit at odd offsets). */
function alignedCopy(raw: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(raw.byteLength);
  new Uint8Array(out).set(raw);
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** onnx.TensorProto.DataType.BFLOAT16. */
const BFLOAT16 = 16;

/** Tensor values as float32 (from FLOAT, FLOAT16, BFLOAT16, DOUBLE, or any integer type). */
export function toFloat32(t: TensorProto): Float32Array {
  requireInline(t);
  const n = elementCount(t);
  if (t.rawData !== undefined) {
    switch (t.dataType) {
      case DataType.FLOAT: {
        const v = rawView(t, 4);
        if (littleEndianHost) return new Float32Array(alignedCopy(t.rawData));
        return Float32Array.from({ length: n }, (_, i) => v.getFloat32(i * 4, true));
      }
      case DataType.FLOAT16: {
        const v = rawView(t, 2);
        return Float32Array.from({ length: n }, (_, i) => halfToFloat(v.getUint16(i * 2, true)));
      }
      case BFLOAT16: {
        // bfloat16 is the top half of a float32.
        const v = rawView(t, 2);
        const bits = new Uint32Array(n);
        for (let i = 0; i < n; i++) bits[i] = v.getUint16(i * 2, true) << 16;
        return new Float32Array(bits.buffer);
      }
      case DataType.DOUBLE: {
        const v = rawView(t, 8);
        return Float32Array.from({ length: n }, (_, i) => v.getFloat64(i * 8, true));
      }
      default: {
        if (isIntegerType(t.dataType)) {
          const ints = toBigInt64(t);
          return Float32Array.from(ints, (x) => Number(x));
        }
      }
    }
    throw new AttnkitError(t.name || "tensor", `cannot read data type ${t.dataType} as float32`);
  }
  if (t.dataType === DataType.FLOAT16 && t.int32Data) {
    // FLOAT16 without raw data keeps the bit patterns in int32_data.
    return Float32Array.from(t.int32Data, (x) => halfToFloat(x & 0xffff));
  }
  const values: ArrayLike<number> | undefined = t.floatData ?? t.doubleData ?? t.int32Data;
  if (values !== undefined) return checkedLength(t, Float32Array.from(values), n);
  if (t.int64Data !== undefined) {
    return checkedLength(t, Float32Array.from(t.int64Data, (x) => Number(x)), n);
  }
  return checkedLength(t, new Float32Array(0), n);
}

function isIntegerType(dt: number): boolean {
  return dt === DataType.INT64 || dt === DataType.INT32 || dt === DataType.INT8 ||
    dt === DataType.UINT8 || dt === DataType.BOOL;
}

function checkedLength<T extends { length: number }>(t: TensorProto, v: T, n: number): T {
  if (v.length !== n) {
    throw new AttnkitError(
      t.name || "tensor",
      `holds ${v.length} values, dims [${t.dims}] need ${n}`,
    );
  }
  return v;
}

/** Tensor values of an integer (or bool) tensor as int64. */
export function toBigInt64(t: TensorProto): BigInt64Array {
  requireInline(t);
  const n = elementCount(t);
  if (t.rawData !== undefined) {
    switch (t.dataType) {
      case DataType.INT64: {
        const v = rawView(t, 8);
        if (littleEndianHost) return new BigInt64Array(alignedCopy(t.rawData));
        return BigInt64Array.from({ length: n }, (_, i) => v.getBigInt64(i * 8, true));
      }
      case DataType.INT32: {
        const v = rawView(t, 4);
        return BigInt64Array.from({ length: n }, (_, i) => BigInt(v.getInt32(i * 4, true)));
      }
      case DataType.INT8: {
        const v = rawView(t, 1);
        return BigInt64Array.from({ length: n }, (_, i) => BigInt(v.getInt8(i)));
      }
      case DataType.UINT8:
      case DataType.BOOL: {
        const v = rawView(t, 1);
        return BigInt64Array.from({ length: n }, (_, i) => BigInt(v.getUint8(i)));
      }
    }
    throw new AttnkitError(t.name || "tensor", `data type ${t.dataType} is not an integer type`);
  }
  if (t.int64Data !== undefined) return checkedLength(t, BigInt64Array.from(t.int64Data), n);
  if (t.int32Data !== undefined) {
    return checkedLength(t, BigInt64Array.from(t.int32Data, (x) => BigInt(x)), n);
  }
  if (!isIntegerType(t.dataType)) {
    throw new AttnkitError(t.name || "tensor", `data type ${t.dataType} is not an integer type`);
  }
  return checkedLength(t, new BigInt64Array(0), n);
}

/** Tensor values of an INT32 (or smaller integer) tensor as int32. */
export function toInt32(t: TensorProto): Int32Array {
  return Int32Array.from(toBigInt64(t), (x) => Number(x));
}

/** Tensor values as plain numbers (handy for shape and axis constants). */
export function toNumbers(t: TensorProto): number[] {
  if (isIntegerType(t.dataType)) return Array.from(toBigInt64(t), (x) => Number(x));
  return Array.from(toFloat32(t));
}

function checkDims(name: string, dims: readonly number[], length: number): void {
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) {
      throw new AttnkitError(name, `dims must be non-negative integers, got [${dims}]`);
    }
    n *= d;
  }
  if (n !== length) {
    throw new AttnkitError(name, `dims [${dims}] need ${n} values, got ${length}`);
  }
}

function leBytes(view: ArrayBufferView, write: (dv: DataView) => void): Uint8Array {
  const src = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  if (littleEndianHost) return src.slice();
  const out = new Uint8Array(view.byteLength);
  write(new DataView(out.buffer));
  return out;
}

/** A FLOAT TensorProto with little-endian raw data. */
export function fromFloat32(
  name: string,
  dims: readonly number[],
  data: Float32Array | readonly number[],
): TensorProto {
  const arr = data instanceof Float32Array ? data : Float32Array.from(data);
  checkDims(name, dims, arr.length);
  const rawData = leBytes(arr, (dv) => arr.forEach((x, i) => dv.setFloat32(i * 4, x, true)));
  return { name, dims: [...dims], dataType: DataType.FLOAT, rawData };
}

/** An INT64 TensorProto with little-endian raw data. */
export function fromBigInt64(
  name: string,
  dims: readonly number[],
  data: BigInt64Array | readonly (bigint | number)[],
): TensorProto {
  const arr = data instanceof BigInt64Array
    ? data
    : BigInt64Array.from(data, (x) => typeof x === "bigint" ? x : BigInt(x));
  checkDims(name, dims, arr.length);
  const rawData = leBytes(arr, (dv) => arr.forEach((x, i) => dv.setBigInt64(i * 8, x, true)));
  return { name, dims: [...dims], dataType: DataType.INT64, rawData };
}

/** An INT32 TensorProto with little-endian raw data. */
export function fromInt32(
  name: string,
  dims: readonly number[],
  data: Int32Array | readonly number[],
): TensorProto {
  const arr = data instanceof Int32Array ? data : Int32Array.from(data);
  checkDims(name, dims, arr.length);
  const rawData = leBytes(arr, (dv) => arr.forEach((x, i) => dv.setInt32(i * 4, x, true)));
  return { name, dims: [...dims], dataType: DataType.INT32, rawData };
}
