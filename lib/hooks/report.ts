/**
 * The load-time verdict on a model's attention: which layers were found, which attention-like
 * nodes were skipped and why, and — when a control needs layers that cannot be tapped — one
 * error that says all of that and what to do, instead of a shape error deep inside a control.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import type { AttentionCore, SkippedAttention } from "./find.ts";

/**
 * Which attention layers a caller needs tapped: `"all"` (ISAC and other controls that read self-
 * and cross-attention: every attention-like node must be tapped), `"cross"` (controls that read
 * cross-attention only: at least one cross core, skipped nodes tolerated), `"none"` (no taps
 * needed: never refuses).
 */
export type AttentionNeed = "all" | "cross" | "none";

function layerName(node: { name?: string; output: string[] }): string {
  return node.name ? node.name : node.output[0];
}

/**
 * A readable list of the cores found and the nodes skipped, one per line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanAttention } from "@attnkit/attnkit";
 * import { describeAttention } from "./report.ts";
 * import { model, node, valueInfo } from "../onnx/build.ts";
 * // One opset-23 Attention over q, k, v of shape [B=1, heads=2, N=4, d=8].
 * const m = model({
 *   opset: 23,
 *   inputs: ["q", "k", "v"].map((name) => valueInfo(name, [1, 2, 4, 8])),
 *   outputs: [valueInfo("y", [1, 2, 4, 8])],
 *   nodes: [node("Attention", ["q", "k", "v"], ["y"])],
 * });
 * const text = describeAttention(scanAttention(m));
 * console.log(text); // found 1 attention layer(s): #0 self-attention (Attention, 2 heads) at "y"
 * assert(text.includes("found 1 attention layer(s)"));
 * ```
 */
export function describeAttention(
  scan: { cores: readonly AttentionCore[]; skipped: readonly SkippedAttention[] },
): string {
  const found = scan.cores.map((c) => {
    const n = c.softmax ?? c.fused;
    const at = n ? ` at "${layerName(n)}"` : "";
    return `  #${c.index} ${c.kind}-attention (${c.form}, ${c.heads ?? "?"} heads)${at}`;
  });
  const skipped = scan.skipped.map((s) => {
    const domain = s.node.domain ? `${s.node.domain} ` : "";
    return `  "${layerName(s.node)}" (${domain}${s.node.opType}): ${s.reason}`;
  });
  return [
    `found ${scan.cores.length} attention layer(s)${found.length ? ":" : ""}`,
    ...found,
    `skipped ${scan.skipped.length}${skipped.length ? ":" : ""}`,
    ...skipped,
  ].join("\n");
}

/**
 * Throws one {@link AttnkitError} naming `source` when the scan cannot serve a control that needs
 * `need` (see {@link AttentionNeed}); returns quietly otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanAttention } from "@attnkit/attnkit";
 * import { requireAttention } from "./report.ts";
 * import { model, node, valueInfo } from "../onnx/build.ts";
 * // One opset-23 Attention over q, k, v of shape [B=1, heads=2, N=4, d=8].
 * const m = model({
 *   opset: 23,
 *   inputs: ["q", "k", "v"].map((name) => valueInfo(name, [1, 2, 4, 8])),
 *   outputs: [valueInfo("y", [1, 2, 4, 8])],
 *   nodes: [node("Attention", ["q", "k", "v"], ["y"])],
 * });
 * requireAttention(scanAttention(m), "all", "unet.onnx"); // throws if any layer was skipped
 * let threw = false;
 * try {
 *   requireAttention(scanAttention(m), "cross", "self_only.onnx");
 * } catch {
 *   threw = true; // AttnkitError naming self_only.onnx: no cross-attention layer was found
 * }
 * assert(threw);
 * ```
 */
export function requireAttention(
  scan: { cores: readonly AttentionCore[]; skipped: readonly SkippedAttention[] },
  need: AttentionNeed,
  source: string,
): void {
  if (need === "none") return;
  const cross = scan.cores.filter((c) => c.kind === "cross").length;
  let problem: string | undefined;
  if (need === "all" && scan.skipped.length > 0) {
    problem = `${scan.skipped.length} attention layer(s) cannot be tapped`;
  } else if (scan.cores.length === 0) problem = "no attention layers were found";
  else if (need === "cross" && cross === 0) problem = "no cross-attention layer was found";
  if (problem === undefined) return;
  const advice = [
    "what to do: export the denoiser without attention fusion (torch.onnx.export of the diffusers",
    "model as is; skip onnxruntime.transformers.optimizer, or run it with",
    "FusionOptions.enable_attention = False), or with the attention written as MatMul/Einsum +",
    "Softmax, MultiHeadAttention or opset-23 Attention;",
    'a control that reads cross-attention only can load with { attention: "cross" }.',
  ].join(" ");
  throw new AttnkitError(
    source,
    `${problem} for attention control;\n${describeAttention(scan)}\n${advice}`,
  );
}
