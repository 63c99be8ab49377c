/**
 * Stable Diffusion 1.5-class ONNX models in the Hugging Face layout: download cache, layout
 * resolution, the CLIP tokenizer and the loader. The lead folds these exports into `mod.ts`.
 *
 * @module
 */
export * from "./cache.ts";
export * from "./download.ts";
export * from "./clip_tokenizer.ts";
export * from "./hf_layout.ts";
export * from "./sd15.ts";
