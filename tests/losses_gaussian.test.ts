/** The A&E Gaussian smoothing against hand-computed kernels, reflect borders and its adjoint. */
import assert from "node:assert/strict";
import { gaussianKernel1d, smooth2d, smooth2dBackward } from "../lib/losses/gaussian.ts";
import { mulberry32 } from "../lib/random.ts";
import { throwsNaming } from "./losses_support.ts";

const near = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

// Spec §0: exp(−((x − 1)/(2·0.5))²) at x = 0, 1, 2 is e⁻¹, 1, e⁻¹, normalised.
const E = Math.exp(-1);
const K0 = E / (1 + 2 * E);
const K1 = 1 / (1 + 2 * E);

Deno.test("kernel: size 3, σ = 0.5 is [0.2119, 0.5761, 0.2119] (the (x−μ)/(2σ) exponent)", () => {
  const k = gaussianKernel1d(3, 0.5);
  assert.equal(k.length, 3);
  near(k[0], K0, 1e-15, "k[0]");
  near(k[1], K1, 1e-15, "k[1]");
  near(k[2], K0, 1e-15, "k[2]");
  near(k[0], 0.2119, 1e-4, "k[0] vs the spec's rounded value");
  near(k[1], 0.5761, 1e-4, "k[1] vs the spec's rounded value");
  // Size 5, σ = 1: exp(−(d/2)²) for d = −2 … 2.
  const k5 = gaussianKernel1d(5, 1);
  const raw = [-2, -1, 0, 1, 2].map((d) => Math.exp(-((d / 2) ** 2)));
  const s = raw.reduce((a, b) => a + b, 0);
  raw.forEach((r, i) => near(k5[i], r / s, 1e-15, `k5[${i}]`));
});

Deno.test("smooth2d: a centred delta gives the 2-D kernel (centre 0.3319, edge 0.1221, corner 0.0449)", () => {
  const m = new Float64Array(25);
  m[12] = 1;
  const out = smooth2d(m, 5, 5);
  near(out[12], K1 * K1, 1e-12, "centre");
  near(out[7], K0 * K1, 1e-12, "edge above");
  near(out[13], K0 * K1, 1e-12, "edge right");
  near(out[6], K0 * K0, 1e-12, "corner");
  near(out[12], 0.3319, 1e-4, "centre (spec)");
  near(out[7], 0.1221, 1e-4, "edge (spec)");
  near(out[6], 0.0449, 1e-4, "corner (spec)");
  near(out.reduce((a, b) => a + b, 0), 1, 1e-12, "mass");
  assert.equal(out[0], 0);
});

Deno.test("smooth2d: reflect borders do not repeat the edge pixel", () => {
  // A delta at the corner (0, 0) of 4×4: index −1 reflects to 1, so only offset 0 reaches it.
  const a = new Float64Array(16);
  a[0] = 1;
  const outA = smooth2d(a, 4, 4);
  near(outA[0], K1 * K1, 1e-12, "corner to itself");
  near(outA[1], K1 * K0, 1e-12, "corner to its right");
  near(outA[5], K0 * K0, 1e-12, "corner to (1, 1)");
  // A delta at (1, 1): pixel (0, 0) reads rows −1 → 1 and 1, so both outer weights land on it.
  const b = new Float64Array(16);
  b[5] = 1;
  near(smooth2d(b, 4, 4)[0], (2 * K0) ** 2, 1e-12, "(0, 0) from (1, 1)");
  // A constant map stays constant.
  smooth2d(new Float64Array(12).fill(0.7), 3, 4).forEach((v, i) =>
    near(v, 0.7, 1e-12, `const ${i}`)
  );
});

Deno.test("smooth2dBackward is the adjoint: <S x, y> = <x, Sᵀ y>", () => {
  const rng = mulberry32(3);
  for (const [h, w, size, sigma] of [[5, 7, 3, 0.5], [6, 4, 5, 0.8], [3, 3, 3, 2]]) {
    const k = gaussianKernel1d(size, sigma);
    const x = Float64Array.from({ length: h * w }, () => rng() - 0.5);
    const y = Float64Array.from({ length: h * w }, () => rng() - 0.5);
    const sx = smooth2d(x, h, w, k);
    const sty = smooth2dBackward(y, h, w, k);
    let lhs = 0, rhs = 0;
    for (let i = 0; i < h * w; i++) {
      lhs += sx[i] * y[i];
      rhs += x[i] * sty[i];
    }
    near(lhs, rhs, 1e-12, `${h}×${w}, size ${size}`);
  }
});

Deno.test("bad input names the argument", () => {
  throwsNaming(() => gaussianKernel1d(4, 0.5), "kernelSize");
  throwsNaming(() => gaussianKernel1d(3, 0), "sigma");
  throwsNaming(() => smooth2d(new Float64Array(5), 2, 3), "map");
  throwsNaming(() => smooth2d(new Float64Array(4), 2, 2, gaussianKernel1d(5, 1)), "kernelSize");
});
