/**
 * sign(τi, τj) of ISAC's Phase-2 loss L_cls = max_{i<j} sign(τi, τj) · MPO(CA[i], CA[j]) (§5.2):
 * +1 for token pairs that must not co-refer, so their maps repel (two classes; an attribute and
 * another object; attributes of different objects), −1 for pairs that must (an attribute and the
 * object it modifies; two attributes of one object), so their maps bind. The diagonal is 0.
 *
 * @module
 */
import { check } from "../errors.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { TokenTarget } from "./types.ts";

/** The sign matrix and the flat token list its rows and columns refer to. */
export interface SignMatrix {
  /** Token indices: per target, its class token then its attribute tokens. */
  readonly tokens: readonly number[];
  /** The word of each token. */
  readonly words: readonly string[];
  /** Whether each token is a class noun or an attribute. */
  readonly roles: readonly ("class" | "attribute")[];
  /** Index of the target each token belongs to. */
  readonly owners: readonly number[];
  /** k×k signs, `sign[i][j]` for tokens i and j. */
  readonly sign: readonly (readonly number[])[];
  /** The same as a [k, k] tensor. */
  readonly matrix: Tensor;
}

/** The k×k sign(τi, τj) matrix over the targets' class and attribute tokens. */
export function signs(targets: readonly TokenTarget[]): SignMatrix {
  check(Array.isArray(targets) && targets.length > 0, "targets", "expected at least one target");
  const tokens: number[] = [], words: string[] = [], owners: number[] = [];
  const roles: ("class" | "attribute")[] = [];
  targets.forEach((t, n) => {
    tokens.push(t.classToken), words.push(t.word), roles.push("class"), owners.push(n);
    for (const a of t.attributes) {
      tokens.push(a.token), words.push(a.word), roles.push("attribute"), owners.push(n);
    }
  });
  const seen = new Map<number, number>();
  tokens.forEach((tok, i) => {
    const j = seen.get(tok);
    check(
      j === undefined,
      "targets",
      () => `token ${tok} stands for both "${words[j!]}" and "${words[i]}"; each needs its own`,
    );
    seen.set(tok, i);
  });
  const k = tokens.length;
  const sign = owners.map((oi, i) => owners.map((oj, j) => (i === j ? 0 : oi === oj ? -1 : 1)));
  return { tokens, words, roles, owners, sign, matrix: tensor([k, k], sign.flat()) };
}
