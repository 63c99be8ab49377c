/**
 * Reverse-mode automatic differentiation of ONNX graphs that emits a second ONNX graph (a
 * vector-Jacobian product) for the same runtime: {@link vjpGraph} builds it,
 * {@link checkDifferentiable} checks a graph/spec pair before anything runs, {@link gradCheck}
 * compares a VJP graph with finite differences in onnxruntime-web, {@link coveredOps} lists the
 * operators with rules.
 *
 * @module
 */
export {
  checkDifferentiable,
  type DifferentiabilityReport,
  vjpGraph,
  type VjpOptions,
  type VjpResult,
  type VjpSpec,
} from "./vjp.ts";
export { coveredOps } from "./registry.ts";
export {
  type DirectionCheck,
  type Feeds,
  gradCheck,
  type GradCheckOptions,
  type GradCheckResult,
} from "./gradcheck.ts";
