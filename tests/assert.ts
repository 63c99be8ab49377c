/**
 * Test helpers over node:assert/strict (jsr:@std/assert is out of reach here).
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts `cond`. */
export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Asserts that `fn` throws an instance of `cls` and returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  cls: new (...args: never[]) => E,
): E {
  try {
    fn();
  } catch (e) {
    nodeAssert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e as E;
  }
  throw new nodeAssert.AssertionError({ message: `expected ${cls.name} to be thrown` });
}
