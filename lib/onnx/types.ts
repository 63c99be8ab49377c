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
  /** Name of the tensor; node inputs refer to an initializer by this name. */
  name: string;
  /** Sizes of each axis. */
  dims: number[];
  /** Element type (a DataType code). */
  dataType: number;
  /** Packed little-endian values (the usual form). */
  rawData?: Uint8Array;
  /** Unpacked values of a FLOAT (or COMPLEX64) tensor, when `rawData` is not used. */
  floatData?: number[];
  /** Unpacked values of INT32, INT16, INT8, UINT16, UINT8, BOOL and FLOAT16 (as bits) tensors. */
  int32Data?: number[];
  /** Unpacked values of an INT64 tensor, when `rawData` is not used. */
  int64Data?: bigint[];
  /** Unpacked values of a DOUBLE (or COMPLEX128) tensor, when `rawData` is not used. */
  doubleData?: number[];
  /** External data entries (key/value), for weights stored beside the model. */
  externalData?: { key: string; value: string }[];
  /** 1 = external. */
  dataLocation?: number;
  /** Free-form documentation of the tensor. */
  docString?: string;
}

/** A dimension of a tensor type: a fixed size or a named symbolic size. */
export interface Dim {
  /** Fixed size of this axis. */
  dimValue?: number;
  /** Symbolic size fixed only at run time (e.g. `batch`); equal names mean equal sizes. */
  dimParam?: string;
}

/** Type of a graph value (only tensors are modelled). */
export interface TypeProto {
  /** Tensor type: element type (`elemType`, a DataType code) and, when known, the shape. */
  tensorType?: { elemType: number; shape?: { dim: Dim[] } };
}

/** A graph input, output or intermediate value description. */
export interface ValueInfoProto {
  /** Name of the value, as node inputs and outputs refer to it. */
  name: string;
  /** Element type and shape of the value, when recorded. */
  type?: TypeProto;
  /** Free-form documentation of the value. */
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
  /** Attribute name, as the operator defines it (e.g. `axis`, `perm`). */
  name: string;
  /** Which value field is set (an AttributeType code). */
  type: number;
  /** Value of a FLOAT attribute. */
  f?: number;
  /** Value of an INT attribute. */
  i?: bigint;
  /** Value of a STRING attribute, as UTF-8 bytes. */
  s?: Uint8Array;
  /** Value of a TENSOR attribute (e.g. a `Constant` node's value). */
  t?: TensorProto;
  /** Value of a GRAPH attribute (a subgraph, e.g. an `If` branch or `Loop` body). */
  g?: GraphProto;
  /** Value of a FLOATS attribute. */
  floats?: number[];
  /** Value of an INTS attribute. */
  ints?: bigint[];
  /** Value of a STRINGS attribute, each as UTF-8 bytes. */
  strings?: Uint8Array[];
  /** Free-form documentation of the attribute. */
  docString?: string;
}

/** One operator application. */
export interface NodeProto {
  /** Names of the values the node reads, in the operator's order; "" skips an optional input. */
  input: string[];
  /** Names of the values the node produces, in the operator's order. */
  output: string[];
  /** Node name, unique in the graph when set (for diagnostics). */
  name?: string;
  /** Operator name within `domain` (e.g. `MatMul`, `Softmax`). */
  opType: string;
  /** Operator-set domain of `opType`; empty or absent is the default ONNX domain. */
  domain?: string;
  /** The operator's attribute values. */
  attribute: AttributeProto[];
  /** Free-form documentation of the node. */
  docString?: string;
}

/** A computation graph. */
export interface GraphProto {
  /** Name of the graph. */
  name: string;
  /** The nodes, in topological order. */
  node: NodeProto[];
  /** Constant tensors (weights), usable as values by their names. */
  initializer: TensorProto[];
  /** The graph's inputs, with their types. */
  input: ValueInfoProto[];
  /** The graph's outputs, with their types. */
  output: ValueInfoProto[];
  /** Types and shapes of intermediate values (optional, e.g. from shape inference). */
  valueInfo: ValueInfoProto[];
  /** Free-form documentation of the graph. */
  docString?: string;
}

/** An operator-set import. */
export interface OperatorSetId {
  /** Operator-set domain; empty is the default ONNX domain (`ai.onnx`). */
  domain: string;
  /** Version of that operator set the model is written against. */
  version: bigint;
}

/** A whole model file. */
export interface Model {
  /** Version of the ONNX IR (file format) the model follows. */
  irVersion: bigint;
  /** Operator sets (domain and version) the graph uses. */
  opsetImport: OperatorSetId[];
  /** Name of the tool that wrote the model (e.g. `pytorch`). */
  producerName?: string;
  /** Version of that tool. */
  producerVersion?: string;
  /** Reverse-DNS namespace of the model (e.g. `com.example`). */
  domain?: string;
  /** Version of the model itself. */
  modelVersion?: bigint;
  /** Free-form documentation of the model. */
  docString?: string;
  /** The model's computation graph. */
  graph: GraphProto;
  /** Free-form key/value metadata. */
  metadataProps?: { key: string; value: string }[];
}
