/**
 * Ops whose outputs are treated as constants of the differentiated inputs: shape arithmetic,
 * comparisons, integer-valued and piecewise-constant ops. Gradients stop at them (zero almost
 * everywhere, or no float dependence at all).
 *
 * @module
 */
import { constant, type RuleTable } from "../rule.ts";

const NAMES: readonly string[] = [
  "Shape",
  "Size",
  "Constant",
  "ConstantOfShape",
  "Range",
  "EyeLike",
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "ArgMax",
  "ArgMin",
  "NonZero",
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "IsNaN",
  "IsInf",
  "RandomNormal",
  "RandomNormalLike",
  "RandomUniform",
  "RandomUniformLike",
  "Multinomial",
  "Bernoulli",
  "OneHot",
];

/** Rules that stop the gradient. */
export const constantRules: RuleTable = Object.fromEntries(NAMES.map((n) => [n, constant]));
