/**
 * Shared set-up for the kernel parity tests: whether a WebGPU adapter exists (the tests force
 * the GPU backend even on the software adapter, which is how they run on machines without a
 * GPU), a visible skip when none exists, random inputs, and closeness checks with a report of
 * the worst element.
 *
 * @module
 */
import assert from "node:assert/strict";
import { adapterReport } from "../kernels/backend.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";

/** What the adapter probe found, once per test file. */
export const ADAPTER: Awaited<ReturnType<typeof adapterReport>> = await adapterReport();

const SKIP_NOTE = "SKIPPED: no WebGPU adapter on this machine, kernel not checked";
if (!ADAPTER.available) console.warn(`kernel tests: ${SKIP_NOTE}`);

/** Registers a GPU parity test, ignored (with the reason in its name) when there is no adapter. */
export function gpuTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  Deno.test({
    name: ADAPTER.available ? `${name} [${ADAPTER.description}]` : `${name} [${SKIP_NOTE}]`,
    ignore: !ADAPTER.available,
    fn,
  });
}

/** A tensor of standard normal values times `scale`, from `seed`. */
export function randomTensor(shape: readonly number[], seed: number, scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = gaussian(mulberry32(seed), n);
  for (let i = 0; i < n; i++) data[i] *= scale;
  return tensor(shape, data);
}

/** A tensor of uniform values in [0, 1) from `seed`. */
export function uniformTensor(shape: readonly number[], seed: number): Tensor {
  const rng = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng();
  return tensor(shape, data);
}

/** Asserts equal shapes and |a − b| ≤ atol + rtol·|b| everywhere, naming the worst element. */
export function assertClose(
  actual: Tensor,
  expected: Tensor,
  what: string,
  atol = 1e-6,
  rtol = 1e-4,
): void {
  assert.deepEqual([...actual.shape], [...expected.shape], `${what}: shape`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const a = actual.data[i];
    const b = expected.data[i];
    const excess = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${what}: element ${worst} is ${actual.data[worst]}, expected ${expected.data[worst]} ` +
        `(atol ${atol}, rtol ${rtol})`,
    );
  }
}

/** Largest absolute value in a tensor (to check a comparison is not vacuous). */
export function maxAbs(t: Tensor): number {
  let m = 0;
  for (const v of t.data) m = Math.max(m, Math.abs(v));
  return m;
}
