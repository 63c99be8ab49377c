/**
 * A dependency-free protobuf codec for the parts of onnx.proto that attnkit models
 * (`types.ts`): ModelProto, GraphProto, NodeProto, AttributeProto (every value kind, subgraphs
 * included), TensorProto, ValueInfoProto / TypeProto (tensor types with dims), OperatorSetIdProto
 * and metadata_props.
 *
 * Reading: fields `types.ts` does not model (model-local functions, training_info, sparse
 * initializers, quantization annotations, per-node metadata, uint64_data, string_data,
 * sequence/map types, …) are kept verbatim under {@link UNKNOWN_FIELDS} on the message that held
 * them and written back by {@link encodeModel}, so a round trip loses nothing ORT needs. A
 * malformed or truncated file throws an {@link AttnkitError} whose argument is the file name and
 * whose message gives the byte offset. `rawData` is a view into the input bytes (no copy), so a
 * 1.7 GB file is not held twice.
 *
 * Memory: decoding is bounded relative to the file. Each decoded object and array element is
 * charged an estimate of its JS heap cost, and a file whose decoding would pass
 * {@link decodeBudget} (16 × its size + 64 MiB) is refused before the objects exist — a 2-byte
 * empty NodeProto repeated 4 million times, or 8 million one-byte int64 values, is not a model.
 * A tensor whose dims declare more elements than its data holds (dims [2^31, 2^31] with 4 bytes)
 * is refused at decode, naming the tensor.
 *
 * Agreement with onnxruntime: its C++ protobuf keeps only the low 32 bits of a tag, so tags of
 * 2^32 or more (which would name one field here and another there), over-long tag and length
 * varints, strings that are not strict UTF-8, and a second ModelProto.graph (which protobuf
 * merges) are refused as malformed rather than kept as unknown fields and written back.
 *
 * Writing: fields go out in field-number order with onnx.proto's own packing (packed tensor
 * data, unpacked attribute lists and dims), which is what the C++ serializer emits, so a model
 * exported by PyTorch re-encodes to the same bytes unless it had fields this codec skips.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import type {
  AttributeProto,
  Dim,
  GraphProto,
  Model,
  NodeProto,
  OperatorSetId,
  TensorProto,
  TypeProto,
  ValueInfoProto,
} from "./types.ts";

/**
 * AttributeProto fields for TENSORS (9) and GRAPHS (10) lists, which `types.ts` does not name;
 * the codec keeps them on the attribute object under these keys so they survive a round trip.
 */
export interface AttributeListExtras {
  /** Repeated TensorProto values (AttributeProto.tensors, field 10). */
  tensors?: TensorProto[];
  /** Repeated GraphProto values (AttributeProto.graphs, field 11). */
  graphs?: GraphProto[];
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

// Strict and BOM-preserving: a name or location must decode to exactly the bytes onnxruntime
// sees (a lossy or BOM-stripping decode can make two different files look alike).
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * Most estimated JS heap bytes that decoding `fileBytes` bytes may cost: 16 × the file plus
 * 64 MiB. Real exports stay far below (graph-only files cost a few × their size; weights are
 * views, not copies).
 *
 * @example
 * ```ts
 * decodeBudget(8 << 20); // 201326592 (192 MiB) for an 8 MiB file
 * ```
 */
export function decodeBudget(fileBytes: number): number {
  return 16 * fileBytes + 64 * 1024 * 1024;
}

/**
 * Where {@link decodeModel} keeps a message's fields that `types.ts` does not model: raw
 * tag-and-value bytes, written back as they were by {@link encodeModel}.
 */
export const UNKNOWN_FIELDS: unique symbol = Symbol("attnkit.onnx.unknownFields");

/** A decoded message that may carry fields the codec does not model. */
export interface UnknownFields {
  /** Raw bytes of each unmodelled field (tag included), in file order. */
  [UNKNOWN_FIELDS]?: Uint8Array[];
}

// Estimated heap cost (bytes) of what the decoder allocates, for the memory bound: measured
// in Deno 2.9 with tests/bad_inputs/measure_decode_costs.ts (heap growth per decoded item,
// with headroom): an empty node ~164 B, a kept unknown field or `strings` entry (a Uint8Array
// view plus its slot) ~116 B, a number ~12 B settled and ~24 B while its array grows, a bigint
// ~36 B. Real models (weights/shapes, tests/fixtures) use under 1% of the budget.
const COST_OBJECT = 128;
const COST_NODE = 288;
const COST_NUMBER = 32;
const COST_BIGINT = 64;
const COST_STRING = 32;
const COST_VIEW = 160;
const MAX_GRAPH_DEPTH = 32;

class Reader {
  pos = 0;
  lo = 0;
  hi = 0;
  spent = 0;
  graphDepth = 0;
  readonly limit: number;
  readonly view: DataView;
  constructor(readonly buf: Uint8Array, readonly source: string) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.limit = decodeBudget(buf.length);
  }

  /** Charges `n` estimated heap bytes; refuses the file when the budget is spent. */
  charge(n: number): void {
    this.spent += n;
    if (this.spent > this.limit) {
      const mib = (x: number): string => (x / 1048576).toFixed(1);
      throw new AttnkitError(
        this.source,
        `refusing to decode: by byte offset ${this.pos} this ${mib(this.buf.length)} MiB file ` +
          `already needs over ${mib(this.limit)} MiB of memory (16 × its size + 64 MiB); its ` +
          "nodes, tensors or repeated values are far more numerous than a real ONNX model's " +
          "(a crafted or corrupt file)",
      );
    }
  }

  fail(message: string, at: number = this.pos): never {
    throw new AttnkitError(this.source, `malformed ONNX protobuf at byte offset ${at}: ${message}`);
  }

  /** Reads a varint into lo/hi (two unsigned 32-bit halves). */
  varintParts(end: number): void {
    const buf = this.buf;
    const start = this.pos;
    let lo = 0;
    let hi = 0;
    let b = 0;
    for (let i = 0; i < 4; i++) {
      if (this.pos >= end) this.fail("truncated varint", start);
      b = buf[this.pos++];
      lo |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    if (this.pos >= end) this.fail("truncated varint", start);
    b = buf[this.pos++];
    lo |= (b & 0x7f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b < 0x80) {
      this.lo = lo >>> 0;
      this.hi = hi >>> 0;
      return;
    }
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) this.fail("truncated varint", start);
      b = buf[this.pos++];
      hi |= (b & 0x7f) << (7 * i + 3);
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    this.fail("varint longer than 10 bytes", start);
  }

  /**
   * A tag or a length prefix: at most 5 bytes, canonically encoded, below 2^32. onnxruntime's
   * C++ protobuf keeps only the low 32 bits of a tag, so a wider tag would name a different
   * field there than here (issue 10 break test, F1 bypass); it refuses longer lengths itself.
   */
  small(end: number, what: "tag" | "length"): number {
    const buf = this.buf;
    const at = this.pos;
    let v = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) this.fail(`truncated ${what}`, at);
      const b = buf[this.pos++];
      v += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) {
        if (b === 0 && i > 0) this.fail(`over-long ${what} varint (non-canonical encoding)`, at);
        if (v >= 2 ** 32) {
          this.fail(`${what} ${v} is 2^32 or more (onnxruntime would truncate it)`, at);
        }
        return v;
      }
    }
    return this.fail(`${what} varint longer than 5 bytes`, at);
  }

  int32(end: number): number {
    this.varintParts(end);
    return this.lo | 0;
  }

  int64(end: number): bigint {
    this.varintParts(end);
    if (this.hi === 0) return BigInt(this.lo);
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo));
  }

  /** int64 as a JS number (dims); exact up to 2^53. */
  int64Number(end: number): number {
    this.varintParts(end);
    if ((this.hi & 0x80000000) === 0) return this.hi * 4294967296 + this.lo;
    return Number(BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo)));
  }

  float(end: number): number {
    if (this.pos + 4 > end) this.fail("truncated 32-bit value");
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(end: number): number {
    if (this.pos + 8 > end) this.fail("truncated 64-bit value");
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a length prefix and returns the end offset of the delimited bytes. */
  lenEnd(end: number, what: string): number {
    const at = this.pos;
    const n = this.small(end, "length");
    if (this.pos + n > end) {
      this.fail(`truncated ${what}: needs ${n} bytes, ${end - this.pos} left`, at);
    }
    return this.pos + n;
  }

  bytes(end: number, what: string): Uint8Array {
    const e = this.lenEnd(end, what);
    const out = this.buf.subarray(this.pos, e);
    this.pos = e;
    return out;
  }

  string(end: number, what: string): string {
    const at = this.pos;
    const b = this.bytes(end, what);
    this.charge(COST_STRING + b.length);
    try {
      return utf8Decoder.decode(b);
    } catch {
      return this.fail(`${what} is not valid UTF-8`, at);
    }
  }

  skip(wire: number, end: number, field: number): void {
    const at = this.pos;
    switch (wire) {
      case WIRE_VARINT:
        this.varintParts(end);
        return;
      case WIRE_I64:
        if (this.pos + 8 > end) this.fail(`truncated field ${field}`, at);
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.pos = this.lenEnd(end, `field ${field}`);
        return;
      case WIRE_I32:
        if (this.pos + 4 > end) this.fail(`truncated field ${field}`, at);
        this.pos += 4;
        return;
      case 3: {
        // Deprecated group: skip nested fields up to the matching end-group tag.
        for (;;) {
          if (this.pos >= end) this.fail(`unterminated group ${field}`, at);
          const tagAt = this.pos;
          const tag = this.small(end, "tag");
          const f = Math.floor(tag / 8);
          const w = tag & 7;
          if (w === 4) {
            if (f !== field) this.fail(`mismatched end-group ${f} for group ${field}`, tagAt);
            return;
          }
          if (f === 0) this.fail("field number 0", tagAt);
          this.skip(w, end, f);
        }
      }
      default:
        this.fail(`invalid wire type ${wire} for field ${field}`, at);
    }
  }
}

/** Iterates the fields of one message body [r.pos, end), calling `on` for each. */
function fields(
  r: Reader,
  end: number,
  message: string,
  on: (field: number, wire: number) => boolean,
  keep?: UnknownFields,
): void {
  while (r.pos < end) {
    const tagAt = r.pos;
    const tag = r.small(end, "tag");
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 0) r.fail(`field number 0 in ${message}`, tagAt);
    if (wire === 4) r.fail(`unexpected end-group in ${message}`, tagAt);
    if (!on(field, wire)) {
      r.skip(wire, end, field);
      if (keep) {
        r.charge(COST_VIEW);
        (keep[UNKNOWN_FIELDS] ??= []).push(r.buf.subarray(tagAt, r.pos));
      }
    }
  }
  if (r.pos !== end) r.fail(`${message} overran its length`, end);
}

function expectWire(r: Reader, got: number, want: number, message: string, field: number): void {
  if (got !== want) {
    r.fail(`${message} field ${field} has wire type ${got}, expected ${want}`);
  }
}

/** Repeated scalar that may arrive packed (wire LEN) or one value per tag. */
function repeated<T>(
  r: Reader,
  wire: number,
  scalarWire: number,
  end: number,
  out: T[],
  read: (end: number) => T,
  what: string,
): void {
  const cost = what.endsWith("int64_data") || what.endsWith(".ints") ? COST_BIGINT : COST_NUMBER;
  if (wire === WIRE_LEN) {
    const e = r.lenEnd(end, what);
    while (r.pos < e) {
      r.charge(cost);
      out.push(read(e));
    }
    return;
  }
  if (wire !== scalarWire) r.fail(`${what} has wire type ${wire}`);
  r.charge(cost);
  out.push(read(end));
}

function readStringEntry(r: Reader, end: number): { key: string; value: string } {
  const e = r.lenEnd(end, "StringStringEntryProto");
  r.charge(COST_OBJECT);
  let key = "";
  let value = "";
  fields(r, e, "StringStringEntryProto", (f, w) => {
    if (f === 1 && w === WIRE_LEN) key = r.string(e, "key");
    else if (f === 2 && w === WIRE_LEN) value = r.string(e, "value");
    else return false;
    return true;
  });
  return { key, value };
}

function readOpset(r: Reader, end: number): OperatorSetId {
  const e = r.lenEnd(end, "OperatorSetIdProto");
  r.charge(COST_OBJECT);
  const out: OperatorSetId = { domain: "", version: 0n };
  fields(r, e, "OperatorSetIdProto", (f, w) => {
    if (f === 1) {
      expectWire(r, w, WIRE_LEN, "OperatorSetIdProto", f);
      out.domain = r.string(e, "domain");
    } else if (f === 2) {
      expectWire(r, w, WIRE_VARINT, "OperatorSetIdProto", f);
      out.version = r.int64(e);
    } else return false;
    return true;
  });
  return out;
}

function readTensor(r: Reader, end: number): TensorProto {
  const at = r.pos;
  const e = r.lenEnd(end, "TensorProto");
  r.charge(COST_OBJECT);
  const t: TensorProto = { name: "", dims: [], dataType: 0 };
  const M = "TensorProto";
  fields(r, e, M, (f, w) => {
    switch (f) {
      case 1:
        repeated(r, w, WIRE_VARINT, e, t.dims, (x) => r.int64Number(x), "TensorProto.dims");
        return true;
      case 2:
        expectWire(r, w, WIRE_VARINT, M, f);
        t.dataType = r.int32(e);
        return true;
      case 4:
        repeated(r, w, WIRE_I32, e, t.floatData ??= [], (x) => r.float(x), "float_data");
        return true;
      case 5:
        repeated(r, w, WIRE_VARINT, e, t.int32Data ??= [], (x) => r.int32(x), "int32_data");
        return true;
      case 7:
        repeated(r, w, WIRE_VARINT, e, t.int64Data ??= [], (x) => r.int64(x), "int64_data");
        return true;
      case 8:
        expectWire(r, w, WIRE_LEN, M, f);
        t.name = r.string(e, "TensorProto.name");
        return true;
      case 9:
        expectWire(r, w, WIRE_LEN, M, f);
        t.rawData = r.bytes(e, "TensorProto.raw_data");
        return true;
      case 10:
        repeated(r, w, WIRE_I64, e, t.doubleData ??= [], (x) => r.double(x), "double_data");
        return true;
      case 12:
        expectWire(r, w, WIRE_LEN, M, f);
        t.docString = r.string(e, "TensorProto.doc_string");
        return true;
      case 13:
        expectWire(r, w, WIRE_LEN, M, f);
        (t.externalData ??= []).push(readStringEntry(r, e));
        return true;
      case 14:
        expectWire(r, w, WIRE_VARINT, M, f);
        t.dataLocation = r.int32(e);
        return true;
      default:
        return false;
    }
  }, t as UnknownFields);
  checkTensorSize(r, t, at);
  return t;
}

/** Bytes per element of each ONNX data type with a fixed width (strings and unknown types: none). */
const ELEMENT_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  14: 8,
  15: 16,
  16: 2,
  17: 1,
  18: 1,
  19: 1,
  20: 1,
};
/** Values per element in float_data / double_data (complex types store two). */
const PARTS: Record<number, number> = { 14: 2, 15: 2 };

/**
 * Refuses a tensor whose dims declare more (or fewer) elements than its data holds, before
 * anything downstream allocates by dims (issue 10, O7: dims [2^31, 2^31] with 4 bytes).
 */
function checkTensorSize(r: Reader, t: TensorProto, at: number): void {
  const name = JSON.stringify(t.name);
  let count = 1;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      r.fail(`tensor ${name} has dimension ${d}; dims must be non-negative integers`, at);
    }
    count *= d;
  }
  if (!Number.isSafeInteger(count)) {
    r.fail(`tensor ${name} declares dims [${t.dims}], over 2^53 elements`, at);
  }
  if (t.dataLocation === 1) return; // external: checked by onnxruntime against the supplied bytes
  const width = ELEMENT_BYTES[t.dataType];
  const holds = (what: string, n: number, want: number): void => {
    if (n !== want) {
      r.fail(
        `tensor ${name} declares dims [${t.dims}] (${count} elements of data type ${t.dataType}) ` +
          `but its ${what} holds ${n}${what === "raw_data" ? " bytes" : " values"}, not ${want}`,
        at,
      );
    }
  };
  const parts = PARTS[t.dataType] ?? 1;
  if (t.rawData !== undefined && width !== undefined) {
    holds("raw_data", t.rawData.length, count * width);
  }
  if (t.floatData?.length) holds("float_data", t.floatData.length, count * parts);
  if (t.doubleData?.length) holds("double_data", t.doubleData.length, count * parts);
  if (t.int64Data?.length) holds("int64_data", t.int64Data.length, count);
  // Sub-byte types (int4, uint4, float4) pack two values per int32; not checked here.
  if (t.int32Data?.length && width !== undefined) holds("int32_data", t.int32Data.length, count);
}

function readDim(r: Reader, end: number): Dim {
  const e = r.lenEnd(end, "TensorShapeProto.Dimension");
  r.charge(COST_OBJECT);
  const d: Dim = {};
  fields(r, e, "Dimension", (f, w) => {
    if (f === 1) {
      expectWire(r, w, WIRE_VARINT, "Dimension", f);
      d.dimValue = r.int64Number(e);
    } else if (f === 2) {
      expectWire(r, w, WIRE_LEN, "Dimension", f);
      d.dimParam = r.string(e, "dim_param");
    } else return false;
    return true;
  });
  return d;
}

function readTypeProto(r: Reader, end: number): TypeProto {
  const e = r.lenEnd(end, "TypeProto");
  r.charge(COST_OBJECT);
  const t: TypeProto = {};
  fields(r, e, "TypeProto", (f, w) => {
    if (f !== 1) return false;
    expectWire(r, w, WIRE_LEN, "TypeProto", f);
    const te = r.lenEnd(e, "TypeProto.Tensor");
    const tensorType: NonNullable<TypeProto["tensorType"]> = { elemType: 0 };
    fields(r, te, "TypeProto.Tensor", (g, gw) => {
      if (g === 1) {
        expectWire(r, gw, WIRE_VARINT, "TypeProto.Tensor", g);
        tensorType.elemType = r.int32(te);
      } else if (g === 2) {
        expectWire(r, gw, WIRE_LEN, "TypeProto.Tensor", g);
        const se = r.lenEnd(te, "TensorShapeProto");
        const dim: Dim[] = [];
        fields(r, se, "TensorShapeProto", (h, hw) => {
          if (h !== 1) return false;
          expectWire(r, hw, WIRE_LEN, "TensorShapeProto", h);
          dim.push(readDim(r, se));
          return true;
        });
        tensorType.shape = { dim };
      } else return false;
      return true;
    });
    t.tensorType = tensorType;
    return true;
  }, t as UnknownFields);
  return t;
}

function readValueInfo(r: Reader, end: number): ValueInfoProto {
  const e = r.lenEnd(end, "ValueInfoProto");
  r.charge(COST_OBJECT);
  const v: ValueInfoProto = { name: "" };
  fields(r, e, "ValueInfoProto", (f, w) => {
    if (f === 1) {
      expectWire(r, w, WIRE_LEN, "ValueInfoProto", f);
      v.name = r.string(e, "ValueInfoProto.name");
    } else if (f === 2) {
      expectWire(r, w, WIRE_LEN, "ValueInfoProto", f);
      v.type = readTypeProto(r, e);
    } else if (f === 3) {
      expectWire(r, w, WIRE_LEN, "ValueInfoProto", f);
      v.docString = r.string(e, "ValueInfoProto.doc_string");
    } else return false;
    return true;
  }, v as UnknownFields);
  return v;
}

function readAttribute(r: Reader, end: number): AttributeProto {
  const e = r.lenEnd(end, "AttributeProto");
  r.charge(COST_OBJECT);
  const a: AttributeProto & AttributeListExtras = { name: "", type: 0 };
  const M = "AttributeProto";
  fields(r, e, M, (f, w) => {
    switch (f) {
      case 1:
        expectWire(r, w, WIRE_LEN, M, f);
        a.name = r.string(e, "AttributeProto.name");
        return true;
      case 2:
        expectWire(r, w, WIRE_I32, M, f);
        a.f = r.float(e);
        return true;
      case 3:
        expectWire(r, w, WIRE_VARINT, M, f);
        a.i = r.int64(e);
        return true;
      case 4:
        expectWire(r, w, WIRE_LEN, M, f);
        a.s = r.bytes(e, "AttributeProto.s");
        return true;
      case 5:
        expectWire(r, w, WIRE_LEN, M, f);
        a.t = readTensor(r, e);
        return true;
      case 6:
        expectWire(r, w, WIRE_LEN, M, f);
        a.g = readGraphAt(r, e);
        return true;
      case 7:
        repeated(r, w, WIRE_I32, e, a.floats ??= [], (x) => r.float(x), "AttributeProto.floats");
        return true;
      case 8:
        repeated(r, w, WIRE_VARINT, e, a.ints ??= [], (x) => r.int64(x), "AttributeProto.ints");
        return true;
      case 9:
        expectWire(r, w, WIRE_LEN, M, f);
        r.charge(COST_VIEW);
        (a.strings ??= []).push(r.bytes(e, "AttributeProto.strings"));
        return true;
      case 10:
        expectWire(r, w, WIRE_LEN, M, f);
        (a.tensors ??= []).push(readTensor(r, e));
        return true;
      case 11:
        expectWire(r, w, WIRE_LEN, M, f);
        (a.graphs ??= []).push(readGraphAt(r, e));
        return true;
      case 13:
        expectWire(r, w, WIRE_LEN, M, f);
        a.docString = r.string(e, "AttributeProto.doc_string");
        return true;
      case 20:
        expectWire(r, w, WIRE_VARINT, M, f);
        a.type = r.int32(e);
        return true;
      default:
        return false;
    }
  }, a as UnknownFields);
  return a;
}

function readNode(r: Reader, end: number): NodeProto {
  const e = r.lenEnd(end, "NodeProto");
  r.charge(COST_NODE);
  const n: NodeProto = { input: [], output: [], opType: "", attribute: [] };
  const M = "NodeProto";
  fields(r, e, M, (f, w) => {
    switch (f) {
      case 1:
        expectWire(r, w, WIRE_LEN, M, f);
        n.input.push(r.string(e, "NodeProto.input"));
        return true;
      case 2:
        expectWire(r, w, WIRE_LEN, M, f);
        n.output.push(r.string(e, "NodeProto.output"));
        return true;
      case 3:
        expectWire(r, w, WIRE_LEN, M, f);
        n.name = r.string(e, "NodeProto.name");
        return true;
      case 4:
        expectWire(r, w, WIRE_LEN, M, f);
        n.opType = r.string(e, "NodeProto.op_type");
        return true;
      case 5:
        expectWire(r, w, WIRE_LEN, M, f);
        n.attribute.push(readAttribute(r, e));
        return true;
      case 6:
        expectWire(r, w, WIRE_LEN, M, f);
        n.docString = r.string(e, "NodeProto.doc_string");
        return true;
      case 7:
        expectWire(r, w, WIRE_LEN, M, f);
        n.domain = r.string(e, "NodeProto.domain");
        return true;
      default:
        return false;
    }
  }, n as UnknownFields);
  return n;
}

function readGraphAt(r: Reader, end: number): GraphProto {
  const e = r.lenEnd(end, "GraphProto");
  r.charge(COST_NODE);
  // protobuf's own parsers stop at 100 levels of nesting; a graph inside an attribute inside a
  // node is three, so 32 graphs deep is far past any real control flow.
  if (++r.graphDepth > MAX_GRAPH_DEPTH) {
    r.fail(`subgraphs nested more than ${MAX_GRAPH_DEPTH} deep`);
  }
  const g: GraphProto = {
    name: "",
    node: [],
    initializer: [],
    input: [],
    output: [],
    valueInfo: [],
  };
  const M = "GraphProto";
  fields(r, e, M, (f, w) => {
    switch (f) {
      case 1:
        expectWire(r, w, WIRE_LEN, M, f);
        g.node.push(readNode(r, e));
        return true;
      case 2:
        expectWire(r, w, WIRE_LEN, M, f);
        g.name = r.string(e, "GraphProto.name");
        return true;
      case 5:
        expectWire(r, w, WIRE_LEN, M, f);
        g.initializer.push(readTensor(r, e));
        return true;
      case 10:
        expectWire(r, w, WIRE_LEN, M, f);
        g.docString = r.string(e, "GraphProto.doc_string");
        return true;
      case 11:
        expectWire(r, w, WIRE_LEN, M, f);
        g.input.push(readValueInfo(r, e));
        return true;
      case 12:
        expectWire(r, w, WIRE_LEN, M, f);
        g.output.push(readValueInfo(r, e));
        return true;
      case 13:
        expectWire(r, w, WIRE_LEN, M, f);
        g.valueInfo.push(readValueInfo(r, e));
        return true;
      default:
        return false;
    }
  }, g as UnknownFields);
  r.graphDepth--;
  return g;
}

/**
 * Decodes an ONNX ModelProto. `source` (a file name) is used in error messages; bad bytes give
 * an {@link AttnkitError} naming it and the byte offset. Unknown fields are skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AttnkitError, decodeModel, encodeModel } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "./build.ts";
 * const bytes = encodeModel(model({
 *   inputs: [valueInfo("x", [2])],
 *   outputs: [valueInfo("y", [2])],
 *   nodes: [node("Relu", ["x"], ["y"])],
 * }));
 * const m = decodeModel(bytes, "relu.onnx");
 * assert.deepEqual(m.graph.node.map((n) => n.opType), ["Relu"]);
 * assert.throws(() => decodeModel(new Uint8Array([0xff]), "bad.onnx"), AttnkitError); // names bad.onnx
 * ```
 */
export function decodeModel(bytes: Uint8Array, source = "model"): Model & UnknownFields {
  if (!(bytes instanceof Uint8Array)) {
    throw new AttnkitError(source, "expected the model file's bytes as a Uint8Array");
  }
  const r = new Reader(bytes, source);
  const end = bytes.length;
  const m: Model & UnknownFields = {
    irVersion: 0n,
    opsetImport: [],
    graph: { name: "", node: [], initializer: [], input: [], output: [], valueInfo: [] },
  };
  let sawGraph = false;
  const M = "ModelProto";
  try {
    fields(r, end, M, (f, w) => {
      switch (f) {
        case 1:
          expectWire(r, w, WIRE_VARINT, M, f);
          m.irVersion = r.int64(end);
          return true;
        case 2:
          expectWire(r, w, WIRE_LEN, M, f);
          m.producerName = r.string(end, "producer_name");
          return true;
        case 3:
          expectWire(r, w, WIRE_LEN, M, f);
          m.producerVersion = r.string(end, "producer_version");
          return true;
        case 4:
          expectWire(r, w, WIRE_LEN, M, f);
          m.domain = r.string(end, "domain");
          return true;
        case 5:
          expectWire(r, w, WIRE_VARINT, M, f);
          m.modelVersion = r.int64(end);
          return true;
        case 6:
          expectWire(r, w, WIRE_LEN, M, f);
          m.docString = r.string(end, "doc_string");
          return true;
        case 7:
          expectWire(r, w, WIRE_LEN, M, f);
          // protobuf merges a repeated singular message; keeping only the last would make the
          // decoded model differ from what onnxruntime builds from the same bytes.
          if (sawGraph) r.fail("ModelProto.graph appears twice (protobuf would merge the two)");
          m.graph = readGraphAt(r, end);
          sawGraph = true;
          return true;
        case 8:
          expectWire(r, w, WIRE_LEN, M, f);
          m.opsetImport.push(readOpset(r, end));
          return true;
        case 14:
          expectWire(r, w, WIRE_LEN, M, f);
          (m.metadataProps ??= []).push(readStringEntry(r, end));
          return true;
        default:
          return false;
      }
    }, m as UnknownFields);
  } catch (e) {
    if (e instanceof AttnkitError) throw e;
    // Anything else (e.g. a RangeError from a pathological input) still names file and offset.
    r.fail(`decoder error: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!sawGraph) r.fail("no graph (ModelProto field 7) found; is this an ONNX model file?", end);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A byte sink made of chunks, so large raw tensors are referenced, not copied, until the end. */
class Writer {
  parts: Uint8Array[] = [];
  buf: Uint8Array;
  pos = 0;
  /** Bytes in `parts` (flushed). */
  flushed = 0;
  view: DataView;
  constructor(initial = 64) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.flushed + this.pos;
  }

  private grow(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.buf.length < 65536) {
      const size = Math.max(this.buf.length * 2, this.pos + n);
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.pos));
      this.buf = next;
    } else {
      this.flush();
      this.buf = new Uint8Array(Math.max(65536, n));
    }
    this.view = new DataView(this.buf.buffer);
  }

  flush(): void {
    if (this.pos === 0) return;
    this.parts.push(this.buf.subarray(0, this.pos));
    this.flushed += this.pos;
    this.buf = this.buf.subarray(this.pos);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.pos = 0;
  }

  /** Unsigned integer below 2^53. */
  uint(v: number): void {
    this.grow(10);
    while (v >= 128) {
      this.buf[this.pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** Signed 32-bit value; negatives are sign-extended to 10 bytes as protobuf requires. */
  int32(v: number): void {
    if (v >= 0) this.uint(v);
    else this.int64(BigInt(v));
  }

  int64(v: bigint): void {
    let u = BigInt.asUintN(64, v);
    if (u < 9007199254740992n) {
      this.uint(Number(u));
      return;
    }
    this.grow(10);
    while (u >= 128n) {
      this.buf[this.pos++] = Number(u & 127n) | 128;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  /** int64 held as a JS number (dims). */
  int64Number(v: number): void {
    if (v >= 0) this.uint(v);
    else this.int64(BigInt(v));
  }

  tag(field: number, wire: number): void {
    this.uint(field * 8 + wire);
  }

  float(v: number): void {
    this.grow(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  double(v: number): void {
    this.grow(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  raw(b: Uint8Array): void {
    if (b.length > 4096) {
      this.flush();
      this.parts.push(b);
      this.flushed += b.length;
    } else {
      this.grow(b.length);
      this.buf.set(b, this.pos);
      this.pos += b.length;
    }
  }

  bytesField(field: number, b: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.uint(b.length);
    this.raw(b);
  }

  stringField(field: number, s: string): void {
    this.bytesField(field, utf8Encoder.encode(s));
  }

  /** Writes a length-delimited sub-message built by `body`. */
  message(field: number, body: (w: Writer) => void): void {
    const child = new Writer();
    body(child);
    child.flush();
    this.tag(field, WIRE_LEN);
    this.uint(child.flushed);
    if (child.flushed <= 4096) {
      this.grow(child.flushed);
      for (const p of child.parts) {
        this.buf.set(p, this.pos);
        this.pos += p.length;
      }
    } else {
      this.flush();
      for (const p of child.parts) this.parts.push(p);
      this.flushed += child.flushed;
    }
  }

  finish(): Uint8Array {
    this.flush();
    if (this.parts.length === 1) return this.parts[0];
    const out = new Uint8Array(this.flushed);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

function packed<T>(
  w: Writer,
  field: number,
  values: T[] | undefined,
  put: (c: Writer, v: T) => void,
): void {
  if (!values || values.length === 0) return;
  w.message(field, (c) => {
    for (const v of values) put(c, v);
  });
}

function writeStringEntry(w: Writer, field: number, e: { key: string; value: string }): void {
  w.message(field, (c) => {
    c.stringField(1, e.key);
    c.stringField(2, e.value);
  });
}

function writeTensor(w: Writer, t: TensorProto): void {
  for (const d of t.dims) {
    w.tag(1, WIRE_VARINT);
    w.int64Number(d);
  }
  w.tag(2, WIRE_VARINT);
  w.int32(t.dataType);
  packed(w, 4, t.floatData, (c, v) => c.float(v));
  packed(w, 5, t.int32Data, (c, v) => c.int32(v));
  packed(w, 7, t.int64Data, (c, v) => c.int64(v));
  if (t.name !== undefined && t.name !== "") w.stringField(8, t.name);
  if (t.rawData !== undefined) w.bytesField(9, t.rawData);
  packed(w, 10, t.doubleData, (c, v) => c.double(v));
  if (t.docString !== undefined) w.stringField(12, t.docString);
  for (const e of t.externalData ?? []) writeStringEntry(w, 13, e);
  if (t.dataLocation !== undefined) {
    w.tag(14, WIRE_VARINT);
    w.int32(t.dataLocation);
  }
  for (const b of (t as UnknownFields)[UNKNOWN_FIELDS] ?? []) w.raw(b);
}

function writeTypeProto(w: Writer, t: TypeProto): void {
  const tt = t.tensorType;
  for (const b of (t as UnknownFields)[UNKNOWN_FIELDS] ?? []) w.raw(b);
  if (!tt) return;
  w.message(1, (c) => {
    c.tag(1, WIRE_VARINT);
    c.int32(tt.elemType);
    if (tt.shape) {
      const dims = tt.shape.dim;
      c.message(2, (s) => {
        for (const d of dims) {
          s.message(1, (x) => {
            if (d.dimValue !== undefined) {
              x.tag(1, WIRE_VARINT);
              x.int64Number(d.dimValue);
            }
            if (d.dimParam !== undefined) x.stringField(2, d.dimParam);
          });
        }
      });
    }
  });
}

function writeValueInfo(w: Writer, v: ValueInfoProto): void {
  w.stringField(1, v.name);
  if (v.type) w.message(2, (c) => writeTypeProto(c, v.type!));
  if (v.docString !== undefined) w.stringField(3, v.docString);
  for (const b of (v as UnknownFields)[UNKNOWN_FIELDS] ?? []) w.raw(b);
}

function writeAttribute(w: Writer, a: AttributeProto & AttributeListExtras): void {
  w.stringField(1, a.name);
  if (a.f !== undefined) {
    w.tag(2, WIRE_I32);
    w.float(a.f);
  }
  if (a.i !== undefined) {
    w.tag(3, WIRE_VARINT);
    w.int64(a.i);
  }
  if (a.s !== undefined) w.bytesField(4, a.s);
  if (a.t !== undefined) w.message(5, (c) => writeTensor(c, a.t!));
  if (a.g !== undefined) w.message(6, (c) => writeGraph(c, a.g!));
  for (const v of a.floats ?? []) {
    w.tag(7, WIRE_I32);
    w.float(v);
  }
  for (const v of a.ints ?? []) {
    w.tag(8, WIRE_VARINT);
    w.int64(v);
  }
  for (const v of a.strings ?? []) w.bytesField(9, v);
  for (const t of a.tensors ?? []) w.message(10, (c) => writeTensor(c, t));
  for (const g of a.graphs ?? []) w.message(11, (c) => writeGraph(c, g));
  if (a.docString !== undefined) w.stringField(13, a.docString);
  w.tag(20, WIRE_VARINT);
  w.int32(a.type);
  for (const b of (a as UnknownFields)[UNKNOWN_FIELDS] ?? []) w.raw(b);
}

function writeNode(w: Writer, n: NodeProto): void {
  for (const s of n.input) w.stringField(1, s);
  for (const s of n.output) w.stringField(2, s);
  if (n.name !== undefined) w.stringField(3, n.name);
  w.stringField(4, n.opType);
  for (const a of n.attribute) w.message(5, (c) => writeAttribute(c, a));
  if (n.docString !== undefined) w.stringField(6, n.docString);
  if (n.domain !== undefined) w.stringField(7, n.domain);
  for (const b of (n as UnknownFields)[UNKNOWN_FIELDS] ?? []) w.raw(b);
}

function writeGraph(w: Writer, g: GraphProto): void {
  for (const n of g.node) w.message(1, (c) => writeNode(c, n));
  if (g.name !== "") w.stringField(2, g.name);
  for (const t of g.initializer) w.message(5, (c) => writeTensor(c, t));
  if (g.docString !== undefined) w.stringField(10, g.docString);
  for (const v of g.input) w.message(11, (c) => writeValueInfo(c, v));
  for (const v of g.output) w.message(12, (c) => writeValueInfo(c, v));
  for (const v of g.valueInfo) w.message(13, (c) => writeValueInfo(c, v));
  for (const b of (g as UnknownFields)[UNKNOWN_FIELDS] ?? []) w.raw(b);
}

/**
 * Encodes a {@link Model} as ONNX ModelProto bytes (field order and packing as onnx.proto).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeModel, encodeModel } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "./build.ts";
 * const m = model({
 *   inputs: [valueInfo("x", [2])],
 *   outputs: [valueInfo("y", [2])],
 *   nodes: [node("Relu", ["x"], ["y"])],
 * });
 * const bytes = encodeModel(m);
 * assert.deepEqual(encodeModel(decodeModel(bytes)), bytes); // a round trip keeps every byte
 * ```
 */
export function encodeModel(model: Model & UnknownFields): Uint8Array {
  const w = new Writer(1024);
  w.tag(1, WIRE_VARINT);
  w.int64(model.irVersion);
  if (model.producerName !== undefined) w.stringField(2, model.producerName);
  if (model.producerVersion !== undefined) w.stringField(3, model.producerVersion);
  if (model.domain !== undefined) w.stringField(4, model.domain);
  if (model.modelVersion !== undefined) {
    w.tag(5, WIRE_VARINT);
    w.int64(model.modelVersion);
  }
  if (model.docString !== undefined) w.stringField(6, model.docString);
  w.message(7, (c) => writeGraph(c, model.graph));
  for (const o of model.opsetImport) {
    w.message(8, (c) => {
      // The default domain is usually left unset by exporters; "" and unset mean the same.
      if (o.domain !== "") c.stringField(1, o.domain);
      c.tag(2, WIRE_VARINT);
      c.int64(o.version);
    });
  }
  for (const e of model.metadataProps ?? []) writeStringEntry(w, 14, e);
  for (const b of (model as UnknownFields)[UNKNOWN_FIELDS] ?? []) w.raw(b);
  return w.finish();
}
