/**
 * ISAC Eq. 3 on the GPU: `CA_prop = SA · CA` (`[HW, HW] × [HW, L]`) with the tiled matmul of
 * `matmul.wgsl.ts`, and `propagateAuto`, which picks it or the CPU reference `propagate`.
 *
 * @module
 */
import { propagate } from "../lib/isac/propagate.ts";
import { AttnkitError } from "../lib/errors.ts";
import { expectFinite, expectShape, type Tensor } from "../lib/tensor.ts";
import { deviceFor, type KernelOptions } from "./backend.ts";
import { matmulGpu } from "./matmul.ts";

/** `self · cross` on a WebGPU device (default: attnkit's); same result as `propagate`. */
export async function propagateGpu(
  self: Tensor,
  cross: Tensor,
  device?: GPUDevice,
): Promise<Tensor> {
  expectShape(self, [-1, -1], "self", "[HW, HW]");
  const n = self.shape[0];
  if (self.shape[1] !== n) {
    throw new AttnkitError("self", `expected a square [HW, HW] map, got [${self.shape}]`);
  }
  expectShape(cross, [n, -1], "cross", `[HW, L] with HW = ${n} from self`);
  expectFinite(self, "self");
  expectFinite(cross, "cross");
  return await matmulGpu(self, cross, device);
}

/** ISAC Eq. 3 on the chosen backend: the tiled WGSL matmul on "gpu", `propagate` on "cpu". */
export async function propagateAuto(
  self: Tensor,
  cross: Tensor,
  opts: KernelOptions = {},
): Promise<Tensor> {
  const device = await deviceFor(opts);
  return device ? propagateGpu(self, cross, device) : propagate(self, cross);
}
