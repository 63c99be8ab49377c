/**
 * A tiny builder for small ONNX graphs (tests, examples, hand-written subgraphs): plain functions
 * that return the plain-data types of `types.ts`.
 *
 * Attribute values are inferred from JS types: an integer `number` or a `bigint` is INT, any
 * other `number` FLOAT, a `string` STRING, arrays INTS / FLOATS / STRINGS likewise, a TensorProto
 * TENSOR, a GraphProto GRAPH. Use {@link floatAttr} / {@link floatsAttr} for a float that happens
 * to be whole (e.g. `alpha = 1.0`).
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { fromBigInt64, fromFloat32, fromInt32 } from "./tensor_data.ts";
import {
  type AttributeProto,
  AttributeType,
  DataType,
  type Dim,
  type GraphProto,
  type Model,
  type NodeProto,
  type OperatorSetId,
  type TensorProto,
  type ValueInfoProto,
} from "./types.ts";

/** A float attribute value that stays FLOAT even when whole. */
export interface FloatAttr {
  /** The value. */
  readonly float: number;
}

/** A float-list attribute value that stays FLOATS even when all values are whole. */
export interface FloatsAttr {
  /** The values. */
  readonly floats: readonly number[];
}

/** Values {@link node} accepts for attributes. */
export type AttrValue =
  | number
  | bigint
  | string
  | readonly number[]
  | readonly bigint[]
  | readonly string[]
  | TensorProto
  | GraphProto
  | FloatAttr
  | FloatsAttr;

/** Marks `v` as a FLOAT attribute. */
export function floatAttr(v: number): FloatAttr {
  return { float: v };
}

/** Marks `v` as a FLOATS attribute. */
export function floatsAttr(v: readonly number[]): FloatsAttr {
  return { floats: v };
}

const utf8 = new TextEncoder();

/** Turns one `name = value` pair into an AttributeProto. */
export function attribute(name: string, value: AttrValue): AttributeProto {
  if (typeof value === "bigint") return { name, type: AttributeType.INT, i: value };
  if (typeof value === "number") {
    return Number.isInteger(value)
      ? { name, type: AttributeType.INT, i: BigInt(value) }
      : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === "string") return { name, type: AttributeType.STRING, s: utf8.encode(value) };
  if (Array.isArray(value)) {
    const arr = value as readonly unknown[];
    if (arr.every((x) => typeof x === "string")) {
      return {
        name,
        type: AttributeType.STRINGS,
        strings: arr.map((x) => utf8.encode(x as string)),
      };
    }
    if (arr.every((x) => typeof x === "bigint" || (typeof x === "number" && Number.isInteger(x)))) {
      return { name, type: AttributeType.INTS, ints: arr.map((x) => BigInt(x as number | bigint)) };
    }
    if (arr.every((x) => typeof x === "number")) {
      return { name, type: AttributeType.FLOATS, floats: arr as number[] };
    }
    throw new AttnkitError(name, "attribute list must be all numbers, all bigints or all strings");
  }
  const v = value as object;
  if ("float" in v) return { name, type: AttributeType.FLOAT, f: (v as FloatAttr).float };
  if ("floats" in v) {
    return { name, type: AttributeType.FLOATS, floats: [...(v as FloatsAttr).floats] };
  }
  if ("dataType" in v) return { name, type: AttributeType.TENSOR, t: v as TensorProto };
  if ("node" in v) return { name, type: AttributeType.GRAPH, g: v as GraphProto };
  throw new AttnkitError(name, "unsupported attribute value");
}

/** Options for {@link node} beyond op, inputs, outputs and attributes. */
export interface NodeOptions {
  /** Node name (defaults to the first output's name). */
  name?: string;
  /** Operator domain, e.g. "com.microsoft" (default: the ONNX domain). */
  domain?: string;
}

/** One node: `op(inputs) -> outputs` with attributes. */
export function node(
  op: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Readonly<Record<string, AttrValue>> = {},
  opts: NodeOptions = {},
): NodeProto {
  const n: NodeProto = {
    input: [...inputs],
    output: [...outputs],
    name: opts.name ?? outputs[0] ?? op,
    opType: op,
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  };
  if (opts.domain !== undefined && opts.domain !== "") n.domain = opts.domain;
  return n;
}

/**
 * An initializer with raw little-endian data: FLOAT by default; INT64 for a BigInt64Array or
 * `dataType` INT64; INT32 for an Int32Array or `dataType` INT32.
 */
export function initializer(
  name: string,
  dims: readonly number[],
  data: Float32Array | Int32Array | BigInt64Array | readonly number[],
  dataType: number = data instanceof BigInt64Array
    ? DataType.INT64
    : data instanceof Int32Array
    ? DataType.INT32
    : DataType.FLOAT,
): TensorProto {
  if (dataType === DataType.INT64) {
    return fromBigInt64(name, dims, data instanceof BigInt64Array ? data : Array.from(data));
  }
  if (dataType === DataType.INT32) {
    return fromInt32(name, dims, data instanceof Int32Array ? data : Array.from(data, Number));
  }
  if (dataType === DataType.FLOAT) {
    return fromFloat32(
      name,
      dims,
      data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number),
    );
  }
  throw new AttnkitError(name, `initializer() writes FLOAT, INT32 or INT64, not type ${dataType}`);
}

/** A graph input/output description; dims are sizes, or strings for symbolic sizes. */
export function valueInfo(
  name: string,
  dims: readonly (number | string)[] | undefined,
  elemType: number = DataType.FLOAT,
): ValueInfoProto {
  if (dims === undefined) return { name, type: { tensorType: { elemType } } };
  const dim: Dim[] = dims.map((d) => typeof d === "number" ? { dimValue: d } : { dimParam: d });
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

/** Everything {@link model} needs. */
export interface ModelSpec {
  /** Graph inputs. */
  inputs: ValueInfoProto[];
  /** Graph outputs. */
  outputs: ValueInfoProto[];
  /** Nodes in topological order. */
  nodes: NodeProto[];
  /** Weights and constants. */
  initializers?: TensorProto[];
  /** Default-domain opset version (default 17). */
  opset?: number;
  /** Extra opset imports, e.g. `[{domain: "com.microsoft", version: 1n}]`. */
  extraOpsets?: OperatorSetId[];
  /** IR version (default: the one that goes with `opset`). */
  irVersion?: number;
  /** Graph name (default "graph"). */
  name?: string;
}

/** The IR version released with a default-domain opset. */
export function irVersionFor(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 10) return 5;
  if (opset <= 12) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

/** A whole model. A `com.microsoft` import is added when a node uses that domain. */
export function model(spec: ModelSpec): Model {
  const opset = spec.opset ?? 17;
  const imports: OperatorSetId[] = [{ domain: "", version: BigInt(opset) }];
  for (const o of spec.extraOpsets ?? []) imports.push({ ...o });
  const domains = new Set(spec.nodes.map((n) => n.domain ?? "").filter((d) => d !== ""));
  for (const d of domains) {
    if (!imports.some((o) => o.domain === d)) imports.push({ domain: d, version: 1n });
  }
  const graph: GraphProto = {
    name: spec.name ?? "graph",
    node: spec.nodes,
    initializer: spec.initializers ?? [],
    input: spec.inputs,
    output: spec.outputs,
    valueInfo: [],
  };
  return {
    irVersion: BigInt(spec.irVersion ?? irVersionFor(opset)),
    opsetImport: imports,
    producerName: "attnkit",
    graph,
  };
}
