/**
 * ONNX models as plain data: the fields of onnx.proto (ModelProto, GraphProto, NodeProto,
 * TensorProto, AttributeProto, ValueInfoProto) in camelCase, with no classes and no methods.
 * `proto.ts` turns bytes into these objects and back; everything else (hooks, autodiff) is a pure
 * function from one `Model` to another.
 *
 * @module
 */

/** onnx.TensorProto.DataType codes used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

/** A tensor initializer or constant (onnx.TensorProto). Raw bytes are little-endian. */
export interface TensorProto {
  name: string;
  dims: number[];
  dataType: number;
  /** Packed little-endian values (the usual form). */
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: bigint[];
  doubleData?: number[];
  /** External data entries (key/value), for weights stored beside the model. */
  externalData?: { key: string; value: string }[];
  /** 1 = external. */
  dataLocation?: number;
  docString?: string;
}

/** A dimension of a tensor type: a fixed size or a named symbolic size. */
export interface Dim {
  dimValue?: number;
  dimParam?: string;
}

/** Type of a graph value (only tensors are modelled). */
export interface TypeProto {
  tensorType?: { elemType: number; shape?: { dim: Dim[] } };
}

/** A graph input, output or intermediate value description. */
export interface ValueInfoProto {
  name: string;
  type?: TypeProto;
  docString?: string;
}

/** AttributeProto.AttributeType codes. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

/** A node attribute; exactly one value field is set, as `type` says. */
export interface AttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: bigint;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: bigint[];
  strings?: Uint8Array[];
  docString?: string;
}

/** One operator application. */
export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute: AttributeProto[];
  docString?: string;
}

/** A computation graph. */
export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  docString?: string;
}

/** An operator-set import. */
export interface OperatorSetId {
  domain: string;
  version: bigint;
}

/** A whole model file. */
export interface Model {
  irVersion: bigint;
  opsetImport: OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: bigint;
  docString?: string;
  graph: GraphProto;
  metadataProps?: { key: string; value: string }[];
}
