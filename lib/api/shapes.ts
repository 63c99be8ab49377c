/**
 * The embedded model's shapes world: classes, colours and vocabulary, the renderer and captions,
 * the detector that judges generated images, and the ISAC-protocol benchmark prompts and scoring.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shapes } from "@attnkit/attnkit";
 * assert(shapes.CLASSES.includes("heart"));
 * ```
 *
 * @module
 */
export * from "../shapes/world.ts";
export { render, type Rendered } from "../shapes/render.ts";
export {
  type Background,
  type Group,
  type Scene,
  sceneFor,
  type ShapeObject,
} from "../shapes/scene.ts";
export { captionOf } from "../shapes/caption.ts";
export { detect, type DetectOptions, type Instance } from "../shapes/detect.ts";
export type { ShapeScore } from "../shapes/detect_shape.ts";
export { scoreGroups, scoreMultiClass, scoreMultiInstance } from "../shapes/score.ts";
export type { GroupScore, GroupsScore, Scored, ScoreOptions } from "../shapes/score.ts";
export { benchmarkPrompts, parsePromptFile } from "../shapes/benchmark_prompts.ts";
export type {
  BenchmarkPrompt,
  BenchmarkPromptOptions,
  BenchmarkSetting,
  FilePrompt,
} from "../shapes/benchmark_prompts.ts";
export { verdictOf } from "../shapes/verdict.ts";
export type { Verdict } from "../shapes/verdict.ts";
