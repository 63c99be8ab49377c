/**
 * The shape of one differentiation rule: which inputs and outputs of a node carry gradients, and
 * a function that writes the backward nodes for one forward node.
 *
 * @module
 */
import type { NodeProto } from "../types.ts";
import { nodeLabel } from "./attrs.ts";
import type { Emitter } from "./emit.ts";
import { AttnkitError } from "../../errors.ts";

/** What a rule's `grad` function receives for one forward node. */
export interface GradContext {
  /** The forward node. */
  readonly node: NodeProto;
  /** Writer for the backward nodes. */
  readonly em: Emitter;
  /** Cotangent of each output (`undefined` where nothing flows back). */
  readonly dy: readonly (string | undefined)[];
  /** Whether the gradient of each input is needed. */
  readonly wants: readonly boolean[];
}

/** Gradients for each input, `undefined` where none is produced. */
export type InputGrads = (string | undefined)[];

/** One operator's rule. */
export interface GradRule {
  /** Input slots a gradient can flow to (default: all); indices, shapes, conditions are not. */
  readonly inputs?: (node: NodeProto) => readonly number[];
  /** Output slots that carry differentiable values (default: all). */
  readonly outputs?: (node: NodeProto) => readonly number[];
  /** Writes the backward nodes; absent for ops whose outputs are constants of the inputs. */
  readonly grad?: (ctx: GradContext) => InputGrads;
}

/** Rules keyed by operator type. */
export type RuleTable = Readonly<Record<string, GradRule>>;

/** An error naming the node a rule cannot handle. */
export function ruleError(node: NodeProto, message: string): AttnkitError {
  return new AttnkitError(nodeLabel(node), message);
}

/** Rank of a tensor, or an error naming the node when the fact pass does not know it. */
export function needRank(ctx: GradContext, name: string): number {
  const r = ctx.em.rank(name);
  if (r === undefined) {
    throw ruleError(ctx.node, `the rank of "${name}" is unknown; give the graph input shapes`);
  }
  return r;
}

/** A rule with no gradient: its outputs are treated as constants. */
export const constant: GradRule = { inputs: () => [] };
