/**
 * The node writer the differentiation rules share: fresh names, constants as initializers,
 * opset-aware forms of the ops whose signature changed (axes moved from attribute to input in
 * opset 13 for ReduceSum/Squeeze/Unsqueeze/Split and in 18 for the other reductions), and the
 * one helper almost every rule needs — summing a broadcast gradient back to an input's shape.
 *
 * Shapes are used when the fact pass knows them (constant axes, constant reshape targets) and
 * computed in the emitted graph with Shape ops when it does not.
 *
 * @module
 */
import { type AttrValue, node as makeNode } from "../build.ts";
import { fromBigInt64, fromFloat32 } from "../tensor_data.ts";
import { type AttributeProto, DataType, type NodeProto, type TensorProto } from "../types.ts";
import {
  type DimV,
  type FactMap,
  type Facts,
  isStatic,
  knownNumbers,
  normAxis,
  sameDim,
} from "./facts.ts";

/** Options of {@link Emitter.op}. */
export interface OpOptions {
  /** Operator domain ("" = ONNX). */
  domain?: string;
  /** Known dims of the (first) output, recorded for later rules. */
  dims?: DimV[];
  /** Element type of the (first) output when it differs from float. */
  elemType?: number;
}

/** Writes the backward nodes of a VJP graph. */
export class Emitter {
  /** Nodes written so far, in order. */
  readonly nodes: NodeProto[] = [];
  /** Constants written so far. */
  readonly initializers: TensorProto[] = [];
  /** Default-domain opset of the model (≥ 13). */
  readonly opset: number;
  private readonly facts: FactMap;
  private readonly local: FactMap = new Map();
  private readonly used: Set<string>;
  private readonly prefix: string;
  private readonly cache = new Map<string, string>();
  private counter = 0;

  /** A writer for a graph whose existing names are `usedNames`. */
  constructor(facts: FactMap, opset: number, usedNames: Set<string>, prefix = "vjp") {
    this.facts = facts;
    this.opset = opset;
    this.used = usedNames;
    this.prefix = prefix;
  }

  /** A name not used anywhere in the graph. */
  fresh(hint: string): string {
    let name: string;
    do name = `${this.prefix}/${hint}_${this.counter++}`; while (this.used.has(name));
    this.used.add(name);
    return name;
  }

  /** Facts known for a forward or emitted tensor. */
  factsOf(name: string): Facts {
    return this.local.get(name) ?? this.facts.get(name) ?? {};
  }

  /** Known dims of a tensor, if its rank is known. */
  dims(name: string): DimV[] | undefined {
    return this.factsOf(name).dims;
  }

  /** Values of a small constant tensor when all are known numbers. */
  numbers(name: string): number[] | undefined {
    return knownNumbers(this.factsOf(name));
  }

  /** Known rank of a tensor. */
  rank(name: string): number | undefined {
    return this.dims(name)?.length;
  }

  /** Records dims of an emitted tensor. */
  note(name: string, dims: DimV[] | undefined, elemType?: number): string {
    if (dims !== undefined || elemType !== undefined) this.local.set(name, { dims, elemType });
    return name;
  }

  /** Writes one single-output node and returns its output name. */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, AttrValue>> = {},
    opts: OpOptions = {},
  ): string {
    return this.opN(opType, inputs, 1, attrs, opts)[0];
  }

  /** Writes one node with `outputs` outputs. */
  opN(
    opType: string,
    inputs: readonly string[],
    outputs: number,
    attrs: Readonly<Record<string, AttrValue>> = {},
    opts: OpOptions = {},
  ): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(opType));
    const n = makeNode(opType, inputs, outs, attrs, { name: outs[0], domain: opts.domain });
    this.nodes.push(n);
    this.note(outs[0], opts.dims, opts.elemType);
    return outs;
  }

  /** Writes a single-output node with attributes copied verbatim (e.g. from a forward node). */
  opWithAttributes(opType: string, inputs: readonly string[], attribute: AttributeProto[]): string {
    const out = this.fresh(opType);
    this.nodes.push({
      input: [...inputs],
      output: [out],
      name: out,
      opType,
      attribute: attribute.map((a) => ({ ...a })),
    });
    return out;
  }

  /** A float32 constant (scalar when `dims` is omitted and one value is given). */
  f32(values: number | readonly number[], dims?: readonly number[]): string {
    const v = typeof values === "number" ? [values] : values;
    const d = dims ?? (typeof values === "number" ? [] : [v.length]);
    const key = `f:${d}:${v}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const name = this.fresh("const");
    this.initializers.push(fromFloat32(name, d, v));
    this.note(name, [...d], DataType.FLOAT);
    this.local.get(name)!.value = [...v];
    this.cache.set(key, name);
    return name;
  }

  /** An int64 constant (1-D unless `dims` says otherwise). */
  i64(values: readonly number[], dims?: readonly number[]): string {
    const d = dims ?? [values.length];
    const key = `i:${d}:${values}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const name = this.fresh("const");
    const clamped = values.map((x) =>
      x >= 2 ** 63 ? 2n ** 63n - 1n : x <= -(2 ** 63) ? -(2n ** 63n) + 1n : BigInt(x)
    );
    this.initializers.push(fromBigInt64(name, d, clamped));
    this.note(name, [...d], DataType.INT64);
    this.local.get(name)!.value = [...values];
    this.cache.set(key, name);
    return name;
  }

  /** Shape of a forward tensor: a constant when static, a (shared) Shape node otherwise. */
  shapeOf(x: string): string {
    const d = this.dims(x);
    if (isStatic(d)) return this.i64(d);
    const key = `shape:${x}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const s = this.op("Shape", [x], {}, {
      dims: [d?.length],
      elemType: DataType.INT64,
    });
    this.cache.set(key, s);
    return s;
  }

  /** Size of axis `axis` of `x` as a 1-element int64 vector. */
  dimOf(x: string, axis: number): string {
    const d = this.dims(x);
    const r = d?.length;
    const a = r !== undefined ? normAxis(axis, r) : axis;
    const known = d?.[a];
    if (typeof known === "number") return this.i64([known]);
    return this.op("Gather", [this.shapeOf(x), this.i64([a])], { axis: 0 }, {
      dims: [1],
      elemType: DataType.INT64,
    });
  }

  /** `Reshape(g, shape of x)`. */
  reshapeLike(g: string, x: string): string {
    return this.op("Reshape", [g, this.shapeOf(x)], {}, { dims: this.dims(x) });
  }

  /** ReduceSum over `axes` (axes as an input, opset ≥ 13). */
  reduceSum(x: string, axes: readonly number[], keepdims: boolean, dims?: DimV[]): string {
    return this.op("ReduceSum", [x, this.i64(axes)], { keepdims: keepdims ? 1 : 0 }, { dims });
  }

  /** ReduceMean over `axes` (attribute before opset 18, input from 18). */
  reduceMean(x: string, axes: readonly number[], keepdims: boolean, dims?: DimV[]): string {
    const k = keepdims ? 1 : 0;
    return this.opset >= 18
      ? this.op("ReduceMean", [x, this.i64(axes)], { keepdims: k }, { dims })
      : this.op("ReduceMean", [x], { axes: [...axes], keepdims: k }, { dims });
  }

  /** Unsqueeze at `axes` (axes input, opset ≥ 13). */
  unsqueeze(x: string, axes: readonly number[], dims?: DimV[]): string {
    return this.op("Unsqueeze", [x, this.i64(axes)], {}, { dims });
  }

  /** Squeeze at `axes` (axes input, opset ≥ 13). */
  squeeze(x: string, axes: readonly number[], dims?: DimV[]): string {
    return this.op("Squeeze", [x, this.i64(axes)], {}, { dims });
  }

  /** Transpose with `perm`; an identity perm writes nothing. */
  transpose(x: string, perm: readonly number[]): string {
    if (perm.every((p, i) => p === i)) return x;
    const d = this.dims(x);
    return this.op("Transpose", [x], { perm: [...perm] }, { dims: d && perm.map((p) => d[p]) });
  }

  /** Zeros with the shape of forward tensor `x`. */
  zerosLike(x: string): string {
    return this.op("ConstantOfShape", [this.shapeOf(x)], { value: fromFloat32("", [1], [0]) }, {
      dims: this.dims(x),
    });
  }

  /** a + b (dims default to those of `a`). */
  add(a: string, b: string, dims: DimV[] | undefined = this.dims(a)): string {
    return this.op("Add", [a, b], {}, { dims });
  }

  /** a − b (dims default to those of `a`). */
  sub(a: string, b: string, dims: DimV[] | undefined = this.dims(a)): string {
    return this.op("Sub", [a, b], {}, { dims });
  }

  /** a · b (dims default to those of `a`). */
  mul(a: string, b: string, dims: DimV[] | undefined = this.dims(a)): string {
    return this.op("Mul", [a, b], {}, { dims });
  }

  /** a / b (dims default to those of `a`). */
  div(a: string, b: string, dims: DimV[] | undefined = this.dims(a)): string {
    return this.op("Div", [a, b], {}, { dims });
  }

  /** −a. */
  neg(a: string): string {
    return this.op("Neg", [a], {}, { dims: this.dims(a) });
  }

  /**
   * Sums gradient `g` (whose shape is `gDims`, the broadcast shape) back to the shape of forward
   * tensor `x`: ReduceSum over the broadcast axes, then Reshape. Constant axes when the facts
   * decide them; otherwise the axes where x (left-padded with ones) has size 1 are found at run
   * time with Shape/Equal/NonZero.
   */
  sumTo(g: string, gDims: DimV[] | undefined, x: string): string {
    const xd = this.dims(x);
    if (gDims !== undefined && xd !== undefined && gDims.length >= xd.length) {
      const r = gDims.length;
      const padded: DimV[] = [...Array(r - xd.length).fill(1), ...xd];
      if (r === xd.length && padded.every((d, i) => sameDim(d, gDims[i]))) return g;
      const axes: number[] = [];
      let decided = true;
      padded.forEach((d, i) => {
        if (sameDim(d, gDims[i])) return;
        if (d === 1) axes.push(i);
        else if (typeof d !== "number") decided = false;
      });
      if (decided) {
        const reduced = axes.length > 0
          ? this.reduceSum(g, axes, true, gDims.map((d, i) => (axes.includes(i) ? 1 : d)))
          : g;
        // Equal ranks: keepdims already left x's shape; otherwise drop the leading axes.
        return r === xd.length ? reduced : this.reshapeLike(reduced, x);
      }
    }
    return this.sumToAtRunTime(g, x);
  }

  /** sumTo with the reduction axes found in the emitted graph (Shape/Equal/NonZero). */
  private sumToAtRunTime(g: string, x: string): string {
    const sg = this.op("Shape", [g], {}, { elemType: DataType.INT64 });
    const sx = this.shapeOf(x);
    const rankDiff = this.op("Sub", [
      this.op("Shape", [sg], {}, { elemType: DataType.INT64 }),
      this.op("Shape", [sx], {}, { elemType: DataType.INT64 }),
    ]);
    const ones = this.op("ConstantOfShape", [rankDiff], { value: fromBigInt64("", [1], [1n]) });
    const padded = this.op("Concat", [ones, sx], { axis: 0 });
    const isOne = this.op("Equal", [padded, this.i64([1], [])]);
    const axes = this.op("Reshape", [this.op("NonZero", [isOne]), this.i64([-1])]);
    const reduced = this.op("ReduceSum", [g, axes], { keepdims: 1, noop_with_empty_axes: 1 });
    return this.reshapeLike(reduced, x);
  }
}
