/**
 * The one error type attnkit throws for bad input: it names the argument and what was expected,
 * so a user sees "cross: expected shape [HW, L] …" rather than a RangeError from inside a loop.
 *
 * @module
 */

/**
 * An error caused by an argument a caller passed; `argument` names it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AttnkitError, tensor } from "@attnkit/attnkit";
 * try {
 *   tensor([2, 2], [1, 2, 3]);
 *   assert.fail("expected an AttnkitError");
 * } catch (e) {
 *   assert.ok(e instanceof AttnkitError);
 *   assert.equal(e.argument, "data"); // the message starts with "data: "
 * }
 * ```
 */
export class AttnkitError extends Error {
  /** The argument (or file, or option) that was wrong. */
  readonly argument: string;
  /** Builds an error whose message starts with the argument's name. */
  constructor(argument: string, message: string) {
    super(`${argument}: ${message}`);
    this.name = "AttnkitError";
    this.argument = argument;
  }
}

/** Throws an {@link AttnkitError} for `argument` unless `ok` holds. */
export function check(ok: boolean, argument: string, message: string | (() => string)): asserts ok {
  if (!ok) throw new AttnkitError(argument, typeof message === "string" ? message : message());
}
