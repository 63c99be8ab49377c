/**
 * Prints the WebGPU adapter attnkit would use (description, software or not) and the limits the
 * kernels lean on; exits with status 3 when there is no real (non-fallback) GPU adapter, so
 * `bench/gpu.sh` stops before timing a software rasteriser as if it were a GPU.
 *
 *   deno run -A bench/gpu_adapter.ts [--allow-fallback]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { adapterReport, getDevice } from "../kernels/backend.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { "allow-fallback": { type: "boolean", default: false } },
});
const report = await adapterReport();
console.log(
  `adapter: ${report.available ? report.description : "none"}${
    report.fallback ? " (software fallback adapter)" : ""
  }`,
);
if (report.available) {
  const dev = await getDevice();
  const l = dev.limits;
  console.log(
    `limits: maxStorageBufferBindingSize ${l.maxStorageBufferBindingSize}, maxBufferSize ` +
      `${l.maxBufferSize}, maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize}`,
  );
}
const real = report.available && !report.fallback;
if (!real && !values["allow-fallback"]) {
  console.log(
    "no real GPU adapter: nothing to time (pass --dry-run to bench/gpu.sh to try anyway)",
  );
  Deno.exit(3);
}
Deno.exit(0);
