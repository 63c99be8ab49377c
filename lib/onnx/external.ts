/**
 * Finds every external-data reference in ONNX bytes, wherever onnx.proto lets a TensorProto
 * live: graph initializers, sparse initializers (values and indices), node attributes (`t`,
 * `tensors`, `sparse_tensor`, `sparse_tensors`), subgraphs at any depth (`g`, `graphs`),
 * model-local functions (their nodes and attribute defaults) and training info. It walks the
 * wire format directly rather than the decoded {@link Model}, so a field the codec does not model
 * cannot hide a reference. `createSession` uses it to refuse models that would make onnxruntime
 * open a file nobody handed it (onnxruntime-node otherwise resolves locations against the
 * working directory).
 *
 * The walk must read exactly what onnxruntime's C++ protobuf reads, or a field can hide from it.
 * C++ keeps only the low 32 bits of a tag, so a tag written as a 5-byte varint with higher bits
 * set (`0xaa 0x80 0x80 0x80 0x10` = 2^32 + 0x2a) is GraphProto.initializer to onnxruntime; such
 * tags, field numbers ≥ 2^29, over-long (non-canonical) tags and lengths, and locations that are
 * not strict UTF-8 are refused as malformed (issue 10 break test, F1 bypass). Enum values are
 * compared on their low 32 bits, as C++ casts them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { externalDataRefs } from "./external.ts";
 * import { DataType, encodeModel } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "./build.ts";
 * // A model whose weight `w` lives in the external file w.bin.
 * const bytes = encodeModel(model({
 *   inputs: [valueInfo("x", [2])],
 *   outputs: [valueInfo("y", [2])],
 *   nodes: [node("Add", ["x", "w"], ["y"])],
 *   initializers: [{
 *     name: "w",
 *     dims: [2],
 *     dataType: DataType.FLOAT,
 *     dataLocation: 1, // EXTERNAL
 *     externalData: [
 *       { key: "location", value: "w.bin" },
 *       { key: "offset", value: "0" },
 *       { key: "length", value: "8" },
 *     ],
 *   }],
 * }));
 * assert(externalDataRefs(bytes, "model.onnx").join() === "w.bin");
 * ```
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";

type Kind = "model" | "graph" | "node" | "attr" | "tensor" | "sparse" | "function" | "training";

/** For each message kind, the LEN fields holding nested messages of interest. */
const CHILDREN: Record<Kind, Record<number, Kind>> = {
  // ModelProto: graph 7, training_info 20, functions 25.
  model: { 7: "graph", 20: "training", 25: "function" },
  // GraphProto: node 1, initializer 5, sparse_initializer 15.
  graph: { 1: "node", 5: "tensor", 15: "sparse" },
  // NodeProto: attribute 5.
  node: { 5: "attr" },
  // AttributeProto: t 5, g 6, tensors 10, graphs 11, sparse_tensor 22, sparse_tensors 23.
  attr: { 5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse" },
  // SparseTensorProto: values 1, indices 2.
  sparse: { 1: "tensor", 2: "tensor" },
  // FunctionProto: node 7, attribute_proto 11.
  function: { 7: "node", 11: "attr" },
  // TrainingInfoProto: initialization 1, algorithm 2.
  training: { 1: "graph", 2: "graph" },
  tensor: {},
};

/** Messages nested deeper than this are refused (protobuf's own default limit is 100). */
const MAX_DEPTH = 100;

/**
 * Distinct external-data `location`s named anywhere in ONNX model bytes, in first-seen order.
 * Throws an {@link AttnkitError} naming `source` for malformed bytes and for a tensor marked
 * EXTERNAL without a location.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { externalDataRefs } from "./external.ts";
 * import { DataType, encodeModel } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "./build.ts";
 * // A model whose weight `w` lives in the external file w.bin.
 * const bytes = encodeModel(model({
 *   inputs: [valueInfo("x", [2])],
 *   outputs: [valueInfo("y", [2])],
 *   nodes: [node("Add", ["x", "w"], ["y"])],
 *   initializers: [{
 *     name: "w",
 *     dims: [2],
 *     dataType: DataType.FLOAT,
 *     dataLocation: 1, // EXTERNAL
 *     externalData: [
 *       { key: "location", value: "w.bin" },
 *       { key: "offset", value: "0" },
 *       { key: "length", value: "8" },
 *     ],
 *   }],
 * }));
 * const locations = externalDataRefs(bytes, "vae_decoder.onnx");
 * assert(locations.length === 1 && locations[0] === "w.bin");
 * ```
 */
export function externalDataRefs(bytes: Uint8Array, source = "model"): string[] {
  return [...new Set(externalDataEntries(bytes, source).map((e) => e.location))];
}

/** One tensor's external-data reference, as stored in the model (strings, unparsed). */
export interface ExternalDataEntry {
  /** The tensor's name. */
  tensor: string;
  /** Its `location` (one entry per location the tensor names). */
  location: string;
  /** Its `offset` entry, if any (a decimal byte offset into the file). */
  offset?: string;
  /** Its `length` entry, if any (a decimal byte count). */
  length?: string;
}

/**
 * Every external-data reference in ONNX model bytes with the tensor that makes it, found by the
 * same walk as {@link externalDataRefs}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { externalDataEntries } from "./external.ts";
 * import { DataType, encodeModel } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "./build.ts";
 * // A model whose weight `w` lives in the external file w.bin.
 * const bytes = encodeModel(model({
 *   inputs: [valueInfo("x", [2])],
 *   outputs: [valueInfo("y", [2])],
 *   nodes: [node("Add", ["x", "w"], ["y"])],
 *   initializers: [{
 *     name: "w",
 *     dims: [2],
 *     dataType: DataType.FLOAT,
 *     dataLocation: 1, // EXTERNAL
 *     externalData: [
 *       { key: "location", value: "w.bin" },
 *       { key: "offset", value: "0" },
 *       { key: "length", value: "8" },
 *     ],
 *   }],
 * }));
 * const [entry] = externalDataEntries(bytes, "unet.onnx");
 * // { tensor: "w", location: "w.bin", offset: "0", length: "8" }
 * assert(entry.tensor === "w" && entry.location === "w.bin" && entry.length === "8");
 * ```
 */
export function externalDataEntries(bytes: Uint8Array, source = "model"): ExternalDataEntry[] {
  const seen: ExternalDataEntry[] = [];
  const fail = (at: number, why: string): never => {
    throw new AttnkitError(source, `malformed ONNX protobuf at byte offset ${at}: ${why}`);
  };
  let pos = 0;
  const varint = (end: number): number => {
    const at = pos;
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) fail(at, "truncated varint");
      const b = bytes[pos++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return v;
    }
    return fail(at, "varint longer than 10 bytes");
  };
  /** A tag or a length: at most 5 bytes, canonical, below 2^32 (see the module doc). */
  const small = (end: number, what: "tag" | "length"): number => {
    const at = pos;
    let v = 0;
    for (let i = 0; i < 5; i++) {
      if (pos >= end) fail(at, `truncated ${what}`);
      const b = bytes[pos++];
      v += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) {
        if (b === 0 && i > 0) fail(at, `over-long ${what} varint (non-canonical encoding)`);
        if (v >= 2 ** 32) fail(at, `${what} ${v} is 2^32 or more (onnxruntime would truncate it)`);
        return v;
      }
    }
    return fail(at, `${what} varint longer than 5 bytes`);
  };
  const tagOf = (end: number): { field: number; wire: number; at: number } => {
    const at = pos;
    const tag = small(end, "tag");
    return { field: Math.floor(tag / 8), wire: tag % 8, at };
  };
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const text = (from: number, to: number): string => {
    try {
      return utf8.decode(bytes.subarray(from, to));
    } catch {
      return fail(from, "a tensor name or external_data entry is not valid UTF-8");
    }
  };
  const walk = (kind: Kind, end: number, depth: number): void => {
    if (depth > MAX_DEPTH) fail(pos, `messages nested deeper than ${MAX_DEPTH}`);
    const children = CHILDREN[kind];
    const locations: string[] = [];
    let isExternal = false;
    let tensorName = "";
    let offset: string | undefined;
    let length: string | undefined;
    while (pos < end) {
      const { field, wire, at: tagAt } = tagOf(end);
      if (field === 0) fail(tagAt, "field number 0");
      if (wire === 0) {
        const v = varint(end);
        // C++ casts the enum to int32: only the low 32 bits count.
        if (kind === "tensor" && field === 14) isExternal = v % 2 ** 32 === 1;
      } else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const n = small(end, "length");
        const e = pos + n;
        if (e > end) fail(tagAt, `truncated field ${field}: needs ${n} bytes, ${end - pos} left`);
        const child = children[field];
        if (child) walk(child, e, depth + 1);
        else if (kind === "tensor" && field === 8) tensorName = text(pos, e);
        else if (kind === "tensor" && field === 13) {
          // StringStringEntryProto { key = 1; value = 2; }
          let key = "", value = "";
          while (pos < e) {
            const t = tagOf(e);
            if (t.wire !== 2) fail(t.at, "external_data entry is not a key/value pair");
            const m = small(e, "length");
            if (pos + m > e) fail(pos, "truncated external_data entry");
            const s = text(pos, pos + m);
            if (t.field === 1) key = s;
            else if (t.field === 2) value = s;
            pos += m;
          }
          // Every location is listed, not only the last: whichever one onnxruntime keeps must
          // have been supplied.
          if (key === "location") locations.push(value);
          else if (key === "offset") offset = value;
          else if (key === "length") length = value;
        }
        pos = e;
      } else {
        // Groups (3/4) are not used by onnx.proto; refusing them keeps the walk simple and exact.
        fail(tagAt, `unsupported wire type ${wire} for field ${field}`);
      }
      if (pos > end) fail(end, `field ${field} overruns its message`);
    }
    if (kind === "tensor") {
      if (isExternal && locations.length === 0) {
        throw new AttnkitError(source, "a tensor is marked as external data but names no location");
      }
      // A location on a tensor not marked EXTERNAL is listed too: erring towards "must be supplied".
      for (const location of locations) {
        const entry: ExternalDataEntry = { tensor: tensorName, location };
        if (offset !== undefined) entry.offset = offset;
        if (length !== undefined) entry.length = length;
        seen.push(entry);
      }
    }
  };
  walk("model", bytes.length, 0);
  return seen;
}
