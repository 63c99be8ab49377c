/**
 * ONNX models as plain data: decode/encode the protobuf, sessions on onnxruntime (node, wasm or
 * WebGPU), and reverse-mode autodiff that emits a VJP graph.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { onnx } from "@attnkit/attnkit";
 * const bytes = await Deno.readFile(new URL("../../weights/shapes/vae_decoder.onnx", import.meta.url));
 * const m = onnx.decodeModel(bytes, "vae_decoder.onnx");
 * assert(m.graph.node.length > 0);
 * ```
 *
 * @module
 */
export type * from "../onnx/types.ts";
export { AttributeType, DataType } from "../onnx/types.ts";
export { decodeModel, encodeModel } from "../onnx/proto.ts";
export { createSession, type CreateSessionOptions, ort, type Session } from "../onnx/ort.ts";
export type { ExecutionProvider } from "../onnx/ort.ts";
export * from "../onnx/autodiff/mod.ts";
export { type Float32Io, upcastToFloat32, withFloat32Io } from "../onnx/float_io.ts";
export { elemTypes } from "../onnx/elem_type.ts";
export { splitVjp, type VjpHalves } from "../onnx/autodiff/split.ts";
