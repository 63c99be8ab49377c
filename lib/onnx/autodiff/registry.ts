/**
 * The table of differentiation rules, keyed by operator (and domain for contrib ops).
 *
 * @module
 */
import type { NodeProto } from "../types.ts";
import type { GradRule, RuleTable } from "./rule.ts";
import { activationRules } from "./rules/activation.ts";
import { constantRules } from "./rules/constant.ts";
import { convRules } from "./rules/conv.ts";
import { elementwiseRules } from "./rules/elementwise.ts";
import { matmulRules } from "./rules/matmul.ts";
import { normRules } from "./rules/norm.ts";
import { reduceRules } from "./rules/reduce.ts";
import { resizeRules } from "./rules/resize.ts";
import { selectRules } from "./rules/select.ts";
import { shapeRules } from "./rules/shape.ts";

/** Rules of the default ONNX domain. */
export const onnxRules: RuleTable = {
  ...constantRules,
  ...elementwiseRules,
  ...activationRules,
  ...matmulRules,
  ...convRules,
  ...normRules,
  ...reduceRules,
  ...resizeRules,
  ...selectRules,
  ...shapeRules,
};

/** Rules of the com.microsoft domain (contrib ops ORT's optimiser may introduce). */
export const microsoftRules: RuleTable = { Gelu: activationRules.Gelu };

/** The rule for a node, or `undefined` when there is none. */
export function ruleFor(node: NodeProto): GradRule | undefined {
  const domain = node.domain ?? "";
  if (domain === "" || domain === "ai.onnx") return onnxRules[node.opType];
  if (domain === "com.microsoft") return microsoftRules[node.opType];
  return undefined;
}

/**
 * Operator types with a rule, for reports (default domain, then com.microsoft).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { onnx } from "@attnkit/attnkit";
 * const { onnx: ops } = onnx.coveredOps();
 * assert.ok(ops.includes("Softmax") && ops.includes("MatMul"));
 * ```
 */
export function coveredOps(): { onnx: string[]; microsoft: string[] } {
  return { onnx: Object.keys(onnxRules).sort(), microsoft: Object.keys(microsoftRules).sort() };
}
