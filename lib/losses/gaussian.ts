/**
 * The Attend-and-Excite Gaussian smoothing (methods spec §0), shared by A&E, InitNO and the
 * step-selection (GSN) losses, with its exact adjoint.
 *
 * - Kernel: `k[x] ∝ exp(−((x − (n−1)/2) / (2σ))²)`, normalised to sum 1, 2-D kernel the outer
 *   product. This copies the reference code's exponent, `((x−μ)/(2σ))²` rather than
 *   `(x−μ)²/(2σ²)`, so the effective standard deviation is √2·σ; defaults n = 3, σ = 0.5 give
 *   `[0.2119, 0.5761, 0.2119]`.
 * - Borders: reflect padding by (n−1)/2 on every side (torch's `"reflect"`: the edge pixel is not
 *   repeated), then a valid correlation, so the output keeps the map's `[H, W]`.
 *
 * @module
 */
import { check } from "../errors.ts";

/** Defaults of A&E's `GaussianSmoothing`: kernel size 3, σ = 0.5. */
export const GAUSSIAN_DEFAULTS: { readonly size: number; readonly sigma: number } = {
  size: 3,
  sigma: 0.5,
};

/** The normalised 1-D kernel of odd length `size` (see the module doc for the exponent). */
export function gaussianKernel1d(size: number = 3, sigma: number = 0.5): Float64Array {
  check(
    Number.isInteger(size) && size >= 1 && size % 2 === 1,
    "kernelSize",
    `expected an odd positive integer, got ${size}`,
  );
  check(Number.isFinite(sigma) && sigma > 0, "sigma", `expected a positive number, got ${sigma}`);
  const mean = (size - 1) / 2;
  const k = new Float64Array(size);
  let sum = 0;
  for (let x = 0; x < size; x++) {
    const z = (x - mean) / (2 * sigma);
    k[x] = Math.exp(-z * z);
    sum += k[x];
  }
  for (let x = 0; x < size; x++) k[x] /= sum;
  return k;
}

/** Index `i` (possibly outside 0 … n−1 by less than n) reflected into range, edge not repeated. */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

function checkMap(map: ArrayLike<number>, h: number, w: number, kernel: Float64Array): number {
  check(
    Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0 && map.length === h * w,
    "map",
    () => `expected ${h}×${w} = ${h * w} values, got ${map.length}`,
  );
  const pad = (kernel.length - 1) / 2;
  check(
    (pad < h || h === 1) && (pad < w || w === 1),
    "kernelSize",
    () => `reflect padding by ${pad} needs a map larger than that, got ${h}×${w}`,
  );
  return pad;
}

/** Smooths a row-major `[h, w]` map with the separable kernel `kernel ⊗ kernel` (reflect borders). */
export function smooth2d(
  map: ArrayLike<number>,
  h: number,
  w: number,
  kernel: Float64Array = gaussianKernel1d(),
): Float64Array {
  const pad = checkMap(map, h, w, kernel);
  const n = kernel.length;
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let a = 0; a < n; a++) {
        const row = reflect(y + a - pad, h) * w;
        for (let b = 0; b < n; b++) s += kernel[a] * kernel[b] * map[row + reflect(x + b - pad, w)];
      }
      out[y * w + x] = s;
    }
  }
  return out;
}

/** The adjoint of {@link smooth2d}: the gradient with respect to the map for the cotangent `g`. */
export function smooth2dBackward(
  g: ArrayLike<number>,
  h: number,
  w: number,
  kernel: Float64Array = gaussianKernel1d(),
): Float64Array {
  const pad = checkMap(g, h, w, kernel);
  const n = kernel.length;
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const gv = g[y * w + x];
      if (gv === 0) continue;
      for (let a = 0; a < n; a++) {
        const row = reflect(y + a - pad, h) * w;
        for (let b = 0; b < n; b++) {
          out[row + reflect(x + b - pad, w)] += kernel[a] * kernel[b] * gv;
        }
      }
    }
  }
  return out;
}
