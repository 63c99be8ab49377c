/**
 * Backend choice: explicit preferences, the ATTNKIT_BACKEND variable, the automatic rule
 * (software adapter → cpu), bad names, and a caller-supplied device.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  adapterReport,
  deviceFor,
  getBackend,
  getDevice,
  parsePreference,
  resetBackend,
  useDevice,
} from "../kernels/backend.ts";
import type { BackendPreference } from "../kernels/backend.ts";
import { AttnkitError } from "../lib/errors.ts";
import { ADAPTER, gpuTest } from "./kernels_support.ts";

function withEnv(value: string | undefined, fn: () => Promise<void>): Promise<void> {
  const old = Deno.env.get("ATTNKIT_BACKEND");
  if (value === undefined) Deno.env.delete("ATTNKIT_BACKEND");
  else Deno.env.set("ATTNKIT_BACKEND", value);
  return fn().finally(() => {
    if (old === undefined) Deno.env.delete("ATTNKIT_BACKEND");
    else Deno.env.set("ATTNKIT_BACKEND", old);
  });
}

Deno.test("kernels backend: cpu preference, env override, bad names", async (t) => {
  await t.step("prefer cpu is cpu whatever the adapter", async () => {
    assert.equal(await getBackend({ prefer: "cpu" }), "cpu");
    assert.equal(await deviceFor({ backend: "cpu" }), null);
  });
  await t.step("ATTNKIT_BACKEND=cpu applies when no option is given", async () => {
    await withEnv("cpu", async () => assert.equal(await getBackend(), "cpu"));
    await withEnv(" CPU ", async () => assert.equal(await getBackend(), "cpu"));
  });
  await t.step("an unknown backend name is an AttnkitError naming backend", async () => {
    const err = await getBackend({ prefer: "tpu" as BackendPreference }).catch((e) => e);
    assert.ok(err instanceof AttnkitError);
    assert.equal(err.argument, "backend");
    // The variable is parsed by the same function; setting a bad value in the shared process
    // environment could upset tests running beside this one, so the parser is checked directly.
    assert.throws(() => parsePreference("metal", "ATTNKIT_BACKEND"), /backend: ATTNKIT_BACKEND/);
    assert.equal(parsePreference(" GPU ", "ATTNKIT_BACKEND"), "gpu");
  });
  await t.step("auto takes the gpu only for a real adapter", async () => {
    const report = await adapterReport();
    const want = report.available && !report.fallback ? "gpu" : "cpu";
    await withEnv(undefined, async () => assert.equal(await getBackend(), want));
    assert.equal(await getBackend({ prefer: "auto" }), want);
  });
  await t.step("gpu forced without an adapter throws, with one it is honoured", async () => {
    if (ADAPTER.available) {
      assert.equal(await getBackend({ prefer: "gpu" }), "gpu");
    } else {
      await assert.rejects(() => getBackend({ prefer: "gpu" }), AttnkitError);
    }
  });
});

gpuTest("kernels backend: one device per process, and a caller's device wins", async () => {
  const a = await getDevice();
  const b = await getDevice();
  assert.equal(a, b, "the device is cached");
  assert.ok(a.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024, "raised binding limit");
  const adapter = await navigator.gpu.requestAdapter();
  const mine = await adapter!.requestDevice();
  try {
    useDevice(mine);
    assert.equal(await getDevice(), mine);
    assert.equal(await getBackend({ prefer: "auto" }), "gpu");
    assert.equal(await getBackend({ prefer: "cpu" }), "cpu");
  } finally {
    useDevice(undefined);
    mine.destroy();
  }
  assert.equal(await getDevice(), a);
  await resetBackend();
  const c = await getDevice();
  assert.notEqual(c, a, "reset gives a fresh device");
});
