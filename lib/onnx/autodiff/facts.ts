/**
 * Static facts about the tensors of a graph: element type, dims (a number, a symbolic name, or
 * unknown per axis) and, for small constant tensors (shapes, axes, scales), their values.
 *
 * The differentiation rules need ranks (a transpose of the last two axes needs a full perm) and
 * like to know shapes (a broadcast gradient is reduced with constant axes when they are known
 * and with run-time Shape arithmetic when they are not). Torch exports build most reshape
 * targets from `Shape -> Gather -> Unsqueeze -> Concat`, so a little constant folding of small
 * integer tensors turns most of them back into static shapes. Anything this pass does not know
 * stays `undefined`; it never guesses.
 *
 * @module
 */
import type { GraphProto, NodeProto, TensorProto, ValueInfoProto } from "../types.ts";
import { DataType } from "../types.ts";
import { toNumbers } from "../tensor_data.ts";
import { attrInt, attrInts, attrString } from "./attrs.ts";

/** One axis: a size, a symbolic size name, or unknown. */
export type DimV = number | string | undefined;

/** What is known about one tensor. */
export interface Facts {
  /** onnx.TensorProto.DataType code. */
  elemType?: number;
  /** Axis sizes; `undefined` when even the rank is unknown. */
  dims?: DimV[];
  /**
   * Row-major values of a small constant tensor. Integer shape vectors may hold symbolic sizes
   * (strings, e.g. "batch" or "(batch*8)") and unknown entries.
   */
  value?: DimV[];
}

/** Facts for every tensor name the pass could say something about. */
export type FactMap = Map<string, Facts>;

const VALUE_LIMIT = 4096;

/** Facts from a TensorProto (an initializer or a Constant's value). */
export function tensorFacts(t: TensorProto): Facts {
  const n = t.dims.reduce((a, b) => a * b, 1);
  const f: Facts = { elemType: t.dataType, dims: [...t.dims] };
  if (n <= VALUE_LIMIT && t.dataLocation !== 1) {
    try {
      f.value = toNumbers(t);
    } catch {
      // Values that cannot be read (external data, odd types) simply stay unknown.
    }
  }
  return f;
}

function valueInfoFacts(v: ValueInfoProto): Facts {
  const tt = v.type?.tensorType;
  if (!tt) return {};
  const f: Facts = { elemType: tt.elemType };
  if (tt.shape) {
    f.dims = tt.shape.dim.map((d) =>
      d.dimValue !== undefined ? Number(d.dimValue) : d.dimParam ? d.dimParam : undefined
    );
  }
  return f;
}

/** The values of a constant when all of them are known numbers. */
export function knownNumbers(f: Facts | undefined): number[] | undefined {
  const v = f?.value;
  return v !== undefined && v.every((x) => typeof x === "number") ? (v as number[]) : undefined;
}

/** Whether every dim is a known number. */
export function isStatic(dims: readonly DimV[] | undefined): dims is number[] {
  return dims !== undefined && dims.every((d) => typeof d === "number");
}

/** Whether two dims are provably equal (same size or same symbol). */
export function sameDim(a: DimV, b: DimV): boolean {
  return a !== undefined && a === b;
}

/** Number of elements, when static. */
export function countOf(dims: readonly DimV[] | undefined): number | undefined {
  if (!isStatic(dims)) return undefined;
  return dims.reduce((a, b) => a * b, 1);
}

/** Broadcast of two dims lists (numpy rules); unknown axes stay unknown. */
export function broadcastDims(a: readonly DimV[], b: readonly DimV[]): DimV[] {
  const r = Math.max(a.length, b.length);
  const out: DimV[] = [];
  for (let i = 0; i < r; i++) {
    const x = i - (r - a.length) >= 0 ? a[i - (r - a.length)] : 1;
    const y = i - (r - b.length) >= 0 ? b[i - (r - b.length)] : 1;
    if (x === 1) out.push(y);
    else if (y === 1) out.push(x);
    else if (typeof x === "number") out.push(x);
    else if (typeof y === "number") out.push(y);
    else out.push(x === y ? x : undefined);
  }
  return out;
}

/** Normalises a possibly negative axis against a rank. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/**
 * An axes-like argument that may be an attribute (older opsets) or an input (newer ones):
 * `null` when absent, `undefined` when present but not a known constant.
 */
export function axesArg(
  node: NodeProto,
  attrName: string,
  inputSlot: number,
  facts: FactMap,
): number[] | null | undefined {
  const a = attrInts(node, attrName);
  if (a !== undefined) return a;
  const name = node.input[inputSlot];
  if (name === undefined || name === "") return null;
  return knownNumbers(facts.get(name));
}

type Infer = (node: NodeProto, ins: Facts[], facts: FactMap) => Facts[];

const same: Infer = (_n, ins) => [{ elemType: ins[0]?.elemType, dims: ins[0]?.dims }];

/** Symbolic arithmetic on sizes: the expression string, so equal computations compare equal. */
function symbolic(sym: string, a: DimV, b: DimV): DimV {
  if (a === undefined || b === undefined) return undefined;
  if ((sym === "*" || sym === "/") && b === 1) return a;
  if (sym === "*" && a === 1) return b;
  if ((sym === "+" || sym === "-") && b === 0) return a;
  if (sym === "+" && a === 0) return b;
  return `(${a}${sym}${b})`;
}

function elementwise(op: (a: number, b: number) => number, elemType?: number, sym?: string): Infer {
  return (_n, ins) => {
    const dims = ins.every((f) => f.dims)
      ? ins.map((f) => f.dims!).reduce((a, b) => broadcastDims(a, b))
      : undefined;
    const out: Facts = { elemType: elemType ?? ins[0]?.elemType, dims };
    const [a, b] = ins;
    if (ins.length === 2 && a.value && b.value && isStatic(dims)) {
      const n = countOf(dims)!;
      const av = a.value;
      const bv = b.value;
      if ((av.length === n || av.length === 1) && (bv.length === n || bv.length === 1)) {
        out.value = Array.from({ length: n }, (_, i) => {
          const x = av[av.length === 1 ? 0 : i];
          const y = bv[bv.length === 1 ? 0 : i];
          if (typeof x === "number" && typeof y === "number") return op(x, y);
          return sym ? symbolic(sym, x, y) : undefined;
        });
      }
    }
    return [out];
  };
}

const isIntType = (t?: number): boolean =>
  t === DataType.INT64 || t === DataType.INT32 || t === DataType.INT8 || t === DataType.UINT8;

const divide: Infer = (n, ins, f) =>
  elementwise((a, b) => (isIntType(ins[0]?.elemType) ? Math.trunc(a / b) : a / b), undefined, "/")(
    n,
    ins,
    f,
  );

function unaryValue(op: (a: number) => number, keepSymbols = false): Infer {
  return (_n, ins) => {
    const out: Facts = { elemType: ins[0]?.elemType, dims: ins[0]?.dims };
    if (ins[0]?.value) {
      out.value = ins[0].value.map((v) =>
        typeof v === "number" ? op(v) : keepSymbols ? v : undefined
      );
    }
    return [out];
  };
}

const compare = (op: (a: number, b: number) => boolean): Infer =>
  elementwise((a, b) => (op(a, b) ? 1 : 0), DataType.BOOL);

function reduceDims(
  dims: DimV[] | undefined,
  axes: number[] | null | undefined,
  keepdims: boolean,
): DimV[] | undefined {
  if (dims === undefined) return undefined;
  if (axes === undefined) return keepdims ? dims.map(() => undefined) : undefined;
  const r = dims.length;
  const set = new Set((axes ?? dims.map((_, i) => i)).map((a) => normAxis(a, r)));
  const out: DimV[] = [];
  dims.forEach((d, i) => {
    if (!set.has(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

const reduce: Infer = (node, ins, facts) => {
  const inputAxes = node.opType === "ReduceSum" || node.input.length > 1;
  const axes = inputAxes ? axesArg(node, "axes", 1, facts) : attrInts(node, "axes") ?? null;
  const noop = attrInt(node, "noop_with_empty_axes", 0) === 1;
  const keep = attrInt(node, "keepdims", 1) === 1;
  if (axes !== undefined && axes !== null && axes.length === 0 && noop) {
    return same(node, ins, facts);
  }
  const effective = axes !== null && axes !== undefined && axes.length === 0 ? null : axes;
  return [{ elemType: ins[0]?.elemType, dims: reduceDims(ins[0]?.dims, effective, keep) }];
};

function convSpatial(
  node: NodeProto,
  x: DimV[],
  w: DimV[] | undefined,
): DimV[] {
  const sp = x.length - 2;
  const kernel = attrInts(node, "kernel_shape") ?? w?.slice(2);
  const strides = attrInts(node, "strides") ?? Array(sp).fill(1);
  const dil = attrInts(node, "dilations") ?? Array(sp).fill(1);
  const pads = attrInts(node, "pads") ?? Array(2 * sp).fill(0);
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  return x.slice(2).map((d, i) => {
    const k = kernel?.[i];
    if (typeof d !== "number") return undefined;
    if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") return Math.ceil(d / strides[i]);
    if (typeof k !== "number") return undefined;
    const p = autoPad === "VALID" ? 0 : pads[i] + pads[i + sp];
    return Math.floor((d + p - dil[i] * (k - 1) - 1) / strides[i]) + 1;
  });
}

const conv: Infer = (node, ins) => {
  const x = ins[0]?.dims;
  const w = ins[1]?.dims;
  if (!x) return [{ elemType: ins[0]?.elemType }];
  return [{ elemType: ins[0]?.elemType, dims: [x[0], w?.[0], ...convSpatial(node, x, w)] }];
};

const convTranspose: Infer = (node, ins) => {
  const x = ins[0]?.dims;
  const w = ins[1]?.dims;
  if (!x) return [{ elemType: ins[0]?.elemType }];
  const sp = x.length - 2;
  const group = attrInt(node, "group", 1);
  const cOut = typeof w?.[1] === "number" ? w[1] * group : undefined;
  const outShape = attrInts(node, "output_shape");
  if (outShape) return [{ elemType: ins[0]?.elemType, dims: [x[0], cOut, ...outShape.slice(-sp)] }];
  const kernel = attrInts(node, "kernel_shape") ?? w?.slice(2);
  const strides = attrInts(node, "strides") ?? Array(sp).fill(1);
  const dil = attrInts(node, "dilations") ?? Array(sp).fill(1);
  const pads = attrInts(node, "pads") ?? Array(2 * sp).fill(0);
  const opad = attrInts(node, "output_padding") ?? Array(sp).fill(0);
  const spatial = x.slice(2).map((d, i) => {
    const k = kernel?.[i];
    if (typeof d !== "number" || typeof k !== "number") return undefined;
    return strides[i] * (d - 1) + opad[i] + (k - 1) * dil[i] + 1 - pads[i] - pads[i + sp];
  });
  return [{ elemType: ins[0]?.elemType, dims: [x[0], cOut, ...spatial] }];
};

const matmul: Infer = (_n, ins) => {
  const a = ins[0]?.dims;
  const b = ins[1]?.dims;
  if (!a || !b) return [{ elemType: ins[0]?.elemType }];
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcastDims(a2.slice(0, -2), b2.slice(0, -2));
  const dims: DimV[] = [...batch];
  if (a.length > 1) dims.push(a2[a2.length - 2]);
  if (b.length > 1) dims.push(b2[b2.length - 1]);
  return [{ elemType: ins[0]?.elemType, dims }];
};

const gemm: Infer = (node, ins) => {
  const a = ins[0]?.dims;
  const b = ins[1]?.dims;
  const m = a ? (attrInt(node, "transA", 0) ? a[1] : a[0]) : undefined;
  const n = b ? (attrInt(node, "transB", 0) ? b[0] : b[1]) : undefined;
  return [{ elemType: ins[0]?.elemType, dims: [m, n] }];
};

/**
 * Target shape of a Reshape with a constant (possibly symbolic) `shape`: 0 copies the input's
 * size, −1 takes what is left — also when both sides share the same symbolic factors.
 */
export function reshapeDims(
  input: DimV[] | undefined,
  shape: DimV[],
  allowZero: boolean,
): DimV[] {
  const out: DimV[] = shape.map((s, i) => (s === 0 && !allowZero ? input?.[i] : s));
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    out[neg] = undefined;
    const rest = out.filter((_, i) => i !== neg);
    if (
      input !== undefined && input.every((d) => d !== undefined) &&
      rest.every((d) => d !== undefined)
    ) {
      const symIn = input.filter((d) => typeof d === "string").sort();
      const symOut = rest.filter((d) => typeof d === "string").sort();
      const num = (ds: DimV[]): number =>
        ds.reduce<number>((a, d) => a * (typeof d === "number" ? d : 1), 1);
      if (symIn.join("\u0000") === symOut.join("\u0000")) {
        out[neg] = num(input) / Math.max(1, num(rest));
      }
    }
  }
  return out;
}

const reshape: Infer = (node, ins) => {
  const shape = ins[1]?.value;
  const out: Facts = { elemType: ins[0]?.elemType };
  if (shape) out.dims = reshapeDims(ins[0]?.dims, shape, attrInt(node, "allowzero", 0) === 1);
  else if (isStatic(ins[1]?.dims)) out.dims = Array(ins[1].dims![0]).fill(undefined);
  if (ins[0]?.value && out.dims) out.value = ins[0].value;
  return [out];
};

const flatten: Infer = (node, ins) => {
  const d = ins[0]?.dims;
  if (!d) return [{ elemType: ins[0]?.elemType }];
  const axis = normAxis(attrInt(node, "axis", 1), d.length);
  return [{
    elemType: ins[0]?.elemType,
    dims: [countOf(d.slice(0, axis)), countOf(d.slice(axis))],
  }];
};

const transpose: Infer = (node, ins) => {
  const d = ins[0]?.dims;
  if (!d) return [{ elemType: ins[0]?.elemType }];
  const perm = attrInts(node, "perm") ?? d.map((_, i) => d.length - 1 - i);
  return [{ elemType: ins[0]?.elemType, dims: perm.map((p) => d[p]) }];
};

const unsqueeze: Infer = (node, ins, facts) => {
  const d = ins[0]?.dims;
  const axes = axesArg(node, "axes", 1, facts);
  if (!d || !axes) return [{ elemType: ins[0]?.elemType }];
  const r = d.length + axes.length;
  const set = new Set(axes.map((a) => normAxis(a, r)));
  const out: DimV[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(set.has(i) ? 1 : d[j++]);
  return [{ elemType: ins[0]?.elemType, dims: out, value: ins[0]?.value }];
};

const squeeze: Infer = (node, ins, facts) => {
  const d = ins[0]?.dims;
  const axes = axesArg(node, "axes", 1, facts);
  if (!d || axes === undefined) return [{ elemType: ins[0]?.elemType }];
  const set = axes === null
    ? new Set(d.flatMap((x, i) => (x === 1 ? [i] : [])))
    : new Set(axes.map((a) => normAxis(a, d.length)));
  if (axes === null && d.some((x) => typeof x !== "number")) {
    return [{ elemType: ins[0]?.elemType }];
  }
  return [{
    elemType: ins[0]?.elemType,
    dims: d.filter((_, i) => !set.has(i)),
    value: ins[0]?.value,
  }];
};

const concat: Infer = (node, ins) => {
  if (ins.some((f) => !f.dims)) return [{ elemType: ins[0]?.elemType }];
  const r = ins[0].dims!.length;
  const axis = normAxis(attrInt(node, "axis", 0), r);
  const dims = [...ins[0].dims!];
  let total: DimV = 0;
  for (const f of ins) {
    const d = f.dims![axis];
    total = typeof total === "number" && typeof d === "number" ? total + d : undefined;
  }
  dims[axis] = total;
  for (let i = 0; i < r; i++) {
    if (i !== axis && dims[i] === undefined) {
      dims[i] = ins.map((f) => f.dims![i]).find((d) => d !== undefined);
    }
  }
  const out: Facts = { elemType: ins[0].elemType, dims };
  if (r === 1 && ins.every((f) => f.value)) out.value = ins.flatMap((f) => f.value!);
  return [out];
};

const split: Infer = (node, ins, facts) => {
  const d = ins[0]?.dims;
  const n = node.output.length;
  if (!d) return node.output.map(() => ({ elemType: ins[0]?.elemType }));
  const axis = normAxis(attrInt(node, "axis", 0), d.length);
  const sizes = axesArg(node, "split", 1, facts);
  const total = d[axis];
  const parts: DimV[] = sizes
    ? sizes
    : typeof total === "number"
    ? Array.from({ length: n }, (_, i) => {
      const chunk = Math.ceil(total / n);
      return Math.max(0, Math.min(chunk, total - i * chunk));
    })
    : Array(n).fill(undefined);
  return parts.map((p) => {
    const dims = [...d];
    dims[axis] = p;
    return { elemType: ins[0]?.elemType, dims };
  });
};

/** Clamped [start, end) and step for one sliced axis of size `dim` (ONNX Slice semantics). */
export function sliceRange(
  start: number,
  end: number,
  step: number,
  dim: number,
): { start: number; end: number; count: number } {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  const count = Math.max(0, Math.ceil((e - s) / step));
  return { start: s, end: e, count };
}

const slice: Infer = (node, ins) => {
  const d = ins[0]?.dims;
  if (!d) return [{ elemType: ins[0]?.elemType }];
  const starts = knownNumbers(ins[1]);
  const ends = knownNumbers(ins[2]);
  const axes = node.input[3] ? knownNumbers(ins[3]) : starts?.map((_, i) => i);
  const steps = node.input[4] ? knownNumbers(ins[4]) : starts?.map(() => 1);
  if (!starts || !ends || !axes || !steps) {
    return [{ elemType: ins[0]?.elemType, dims: d.map(() => undefined) }];
  }
  const dims = [...d];
  axes.forEach((a, i) => {
    const ax = normAxis(a, d.length);
    const dim = d[ax];
    dims[ax] = typeof dim === "number"
      ? sliceRange(starts[i], ends[i], steps[i], dim).count
      : undefined;
  });
  const out: Facts = { elemType: ins[0]?.elemType, dims };
  if (d.length === 1 && ins[0]?.value && typeof d[0] === "number") {
    const r = sliceRange(starts[0], ends[0], steps[0], d[0]);
    out.value = Array.from({ length: r.count }, (_, i) => ins[0].value![r.start + i * steps[0]]);
  }
  return [out];
};

const gather: Infer = (node, ins) => {
  const d = ins[0]?.dims;
  const idx = ins[1]?.dims;
  if (!d || !idx) return [{ elemType: ins[0]?.elemType }];
  const axis = normAxis(attrInt(node, "axis", 0), d.length);
  const out: Facts = {
    elemType: ins[0]?.elemType,
    dims: [...d.slice(0, axis), ...idx, ...d.slice(axis + 1)],
  };
  const idx2 = knownNumbers(ins[1]);
  if (d.length === 1 && ins[0].value && idx2) {
    const n = ins[0].value.length;
    out.value = idx2.map((i) => ins[0].value![i < 0 ? i + n : i]);
  }
  return [out];
};

const shapeOp: Infer = (node, ins) => {
  const d = ins[0]?.dims;
  if (!d) return [{ elemType: DataType.INT64, dims: [undefined] }];
  const r = d.length;
  const start = Math.min(Math.max(normAxis(attrInt(node, "start", 0), r), 0), r);
  const end = Math.min(Math.max(normAxis(attrInt(node, "end", r), r), 0), r);
  const part = d.slice(start, Math.max(start, end));
  return [{ elemType: DataType.INT64, dims: [part.length], value: part }];
};

const expand: Infer = (_n, ins) => {
  const shape = ins[1]?.value;
  const d = ins[0]?.dims;
  if (shape && d) return [{ elemType: ins[0]?.elemType, dims: broadcastDims(d, shape) }];
  if (d && isStatic(ins[1]?.dims)) {
    const r = Math.max(d.length, ins[1].dims![0] as number);
    return [{ elemType: ins[0]?.elemType, dims: Array(r).fill(undefined) }];
  }
  return [{ elemType: ins[0]?.elemType }];
};

const resize: Infer = (node, ins) => {
  const d = ins[0]?.dims;
  if (!d) return [{ elemType: ins[0]?.elemType }];
  const scales = node.input[2] ? knownNumbers(ins[2]) : undefined;
  const sizes = node.input[3] ? ins[3]?.value : undefined;
  if (sizes && sizes.length === d.length) return [{ elemType: ins[0]?.elemType, dims: sizes }];
  if (scales && scales.length === d.length) {
    return [{
      elemType: ins[0]?.elemType,
      dims: d.map((x, i) =>
        scales[i] === 1 ? x : typeof x === "number" ? Math.floor(x * scales[i]) : undefined
      ),
    }];
  }
  return [{ elemType: ins[0]?.elemType, dims: d.map(() => undefined) }];
};

const castOp: Infer = (node, ins) => {
  const to = attrInt(node, "to", DataType.FLOAT);
  const out: Facts = { elemType: to, dims: ins[0]?.dims };
  if (ins[0]?.value) {
    out.value = ins[0].value.map((
      v,
    ) => (typeof v === "number" && isIntType(to) ? Math.trunc(v) : v));
  }
  return [out];
};

const constantOp: Infer = (node) => {
  const a = node.attribute[0];
  if (!a) return [{}];
  if (a.t) return [tensorFacts(a.t)];
  if (a.name === "value_int") return [{ elemType: DataType.INT64, dims: [], value: [Number(a.i)] }];
  if (a.name === "value_ints") {
    return [{ elemType: DataType.INT64, dims: [a.ints!.length], value: a.ints!.map(Number) }];
  }
  if (a.name === "value_float") return [{ elemType: DataType.FLOAT, dims: [], value: [a.f!] }];
  if (a.name === "value_floats") {
    return [{ elemType: DataType.FLOAT, dims: [a.floats!.length], value: a.floats! }];
  }
  return [{}];
};

const constantOfShape: Infer = (node, ins) => {
  const t = node.attribute.find((a) => a.name === "value")?.t;
  const fill = t ? tensorFacts(t) : { elemType: DataType.FLOAT, value: [0] };
  const shape = ins[0]?.value;
  const out: Facts = { elemType: fill.elemType };
  if (shape) {
    out.dims = shape;
    const n = isStatic(shape) ? shape.reduce((a, b) => a * b, 1) : Infinity;
    if (isStatic(shape) && n <= VALUE_LIMIT && fill.value) out.value = Array(n).fill(fill.value[0]);
  } else if (isStatic(ins[0]?.dims)) out.dims = Array(ins[0].dims![0]).fill(undefined);
  return [out];
};

const range: Infer = (_n, ins) => {
  const [s, l, d] = ins.map((f) => knownNumbers(f)?.[0]);
  const out: Facts = { elemType: ins[0]?.elemType, dims: [undefined] };
  if (s !== undefined && l !== undefined && d !== undefined && d !== 0) {
    const n = Math.max(Math.ceil((l - s) / d), 0);
    out.dims = [n];
    if (n <= VALUE_LIMIT) out.value = Array.from({ length: n }, (_, i) => s + i * d);
  }
  return [out];
};

const layerNorm: Infer = (node, ins) => {
  const d = ins[0]?.dims;
  const out: Facts[] = [{ elemType: ins[0]?.elemType, dims: d }];
  if (d) {
    const axis = normAxis(attrInt(node, "axis", -1), d.length);
    const stat = d.map((x, i) => (i < axis ? x : 1));
    out.push({ elemType: DataType.FLOAT, dims: stat }, { elemType: DataType.FLOAT, dims: stat });
  }
  return out;
};

const whereOp: Infer = (_n, ins) => {
  const dims = ins.every((f) => f.dims)
    ? ins.map((f) => f.dims!).reduce((a, b) => broadcastDims(a, b))
    : undefined;
  return [{ elemType: ins[1]?.elemType ?? ins[2]?.elemType, dims }];
};

const pad: Infer = (node, ins) => {
  const d = ins[0]?.dims;
  const pads = attrInts(node, "pads") ?? knownNumbers(ins[1]);
  if (!d) return [{ elemType: ins[0]?.elemType }];
  if (!pads || pads.length !== 2 * d.length) {
    return [{
      elemType: ins[0]?.elemType,
      dims: d.map(() => undefined),
    }];
  }
  return [{
    elemType: ins[0]?.elemType,
    dims: d.map((x, i) => (typeof x === "number" ? x + pads[i] + pads[i + d.length] : undefined)),
  }];
};

const tile: Infer = (_n, ins) => {
  const d = ins[0]?.dims;
  const reps = knownNumbers(ins[1]);
  if (!d) return [{ elemType: ins[0]?.elemType }];
  return [{
    elemType: ins[0]?.elemType,
    dims: d.map((
      x,
      i,
    ) => (typeof x === "number" && reps ? x * reps[i] : reps?.[i] === 1 ? x : undefined)),
  }];
};

const pool: Infer = (node, ins) => {
  const x = ins[0]?.dims;
  if (!x) return [{ elemType: ins[0]?.elemType }];
  if (node.opType.startsWith("Global")) {
    return [{ elemType: ins[0]?.elemType, dims: [x[0], x[1], ...x.slice(2).map(() => 1)] }];
  }
  return [{ elemType: ins[0]?.elemType, dims: [x[0], x[1], ...convSpatial(node, x, undefined)] }];
};

const sizeOp: Infer = (_n, ins) => {
  const c = countOf(ins[0]?.dims);
  return [{ elemType: DataType.INT64, dims: [], value: c === undefined ? undefined : [c] }];
};

const INFER: Record<string, Infer> = {
  Add: elementwise((a, b) => a + b, undefined, "+"),
  Sub: elementwise((a, b) => a - b, undefined, "-"),
  Mul: elementwise((a, b) => a * b, undefined, "*"),
  Div: divide,
  Pow: elementwise((a, b) => a ** b),
  Max: elementwise(Math.max),
  Min: elementwise(Math.min),
  Sum: elementwise((a, b) => a + b),
  Mod: elementwise((a, b) => a % b),
  PRelu: elementwise(() => NaN),
  Equal: compare((a, b) => a === b),
  Less: compare((a, b) => a < b),
  Greater: compare((a, b) => a > b),
  LessOrEqual: compare((a, b) => a <= b),
  GreaterOrEqual: compare((a, b) => a >= b),
  And: compare((a, b) => !!a && !!b),
  Or: compare((a, b) => !!a || !!b),
  Xor: compare((a, b) => !!a !== !!b),
  Not: (
    n,
    ins,
    f,
  ) => [{ ...unaryValue((a) => (a ? 0 : 1))(n, ins, f)[0], elemType: DataType.BOOL }],
  Neg: unaryValue((a) => -a),
  Abs: unaryValue(Math.abs),
  Floor: unaryValue(Math.floor),
  Ceil: unaryValue(Math.ceil),
  Sqrt: unaryValue(Math.sqrt),
  Identity: unaryValue((a) => a, true),
  Where: whereOp,
  MatMul: matmul,
  Gemm: gemm,
  Conv: conv,
  ConvTranspose: convTranspose,
  Reshape: reshape,
  Flatten: flatten,
  Transpose: transpose,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Concat: concat,
  Split: split,
  Slice: slice,
  Gather: gather,
  Shape: shapeOp,
  Size: sizeOp,
  Expand: expand,
  Resize: resize,
  Cast: castOp,
  Constant: constantOp,
  ConstantOfShape: constantOfShape,
  Range: range,
  LayerNormalization: layerNorm,
  ReduceSum: reduce,
  ReduceMean: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  ReduceProd: reduce,
  ReduceL2: reduce,
  ReduceSumSquare: reduce,
  Pad: pad,
  Tile: tile,
  AveragePool: pool,
  MaxPool: pool,
  GlobalAveragePool: pool,
  GlobalMaxPool: pool,
  NonZero: (_n, ins) => [{ elemType: DataType.INT64, dims: [ins[0]?.dims?.length, undefined] }],
  EyeLike: (
    node,
    ins,
  ) => [{ elemType: attrInt(node, "dtype", ins[0]?.elemType ?? 1), dims: ins[0]?.dims }],
  GatherElements: (_n, ins) => [{ elemType: ins[0]?.elemType, dims: ins[1]?.dims }],
  ArgMax: (node, ins) => [{
    elemType: DataType.INT64,
    dims: reduceDims(ins[0]?.dims, [attrInt(node, "axis", 0)], attrInt(node, "keepdims", 1) === 1),
  }],
  Dropout: (_n, ins) => [
    { elemType: ins[0]?.elemType, dims: ins[0]?.dims },
    { elemType: DataType.BOOL, dims: ins[0]?.dims },
  ],
};

const SAME_SHAPE = [
  "Relu",
  "Sigmoid",
  "Tanh",
  "Erf",
  "Exp",
  "Log",
  "Reciprocal",
  "Sin",
  "Cos",
  "Softmax",
  "LogSoftmax",
  "Gelu",
  "InstanceNormalization",
  "BatchNormalization",
  "LeakyRelu",
  "Elu",
  "Softplus",
  "Round",
  "Sign",
  "Clip",
  "HardSigmoid",
  "Mish",
  "IsNaN",
  "IsInf",
  "Selu",
  "HardSwish",
  "FastGelu",
  "QuickGelu",
  "GroupNormalization",
  "Trilu",
  "CumSum",
];

/** Facts for every tensor of `graph`, from value_info, initializers and a forward pass. */
export function inferFacts(graph: GraphProto): FactMap {
  const facts: FactMap = new Map();
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) {
    facts.set(v.name, valueInfoFacts(v));
  }
  for (const t of graph.initializer) facts.set(t.name, tensorFacts(t));
  for (const node of graph.node) {
    const ins = node.input.map((n) => (n === "" ? {} : facts.get(n) ?? {}));
    const rule = INFER[node.opType] ?? (SAME_SHAPE.includes(node.opType) ? same : undefined);
    let outs: Facts[] = [];
    if (rule) {
      try {
        outs = rule(node, ins, facts);
      } catch {
        outs = [];
      }
    }
    node.output.forEach((name, i) => {
      if (name === "") return;
      facts.set(name, merge(facts.get(name), outs[i]));
    });
  }
  return facts;
}

/** Combines declared facts (value_info) with inferred ones, preferring what is known. */
function merge(declared: Facts | undefined, inferred: Facts | undefined): Facts {
  if (!declared) return inferred ?? {};
  if (!inferred) return declared;
  const out: Facts = { ...inferred };
  out.elemType = inferred.elemType ?? declared.elemType;
  const a = declared.dims;
  const b = inferred.dims;
  if (!b) out.dims = a;
  else if (a && a.length === b.length) {
    out.dims = b.map((d, i) => (typeof d === "number" ? d : a[i] ?? d));
  }
  return out;
}
