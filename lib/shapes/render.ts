/**
 * Renders a scene to 64×64 RGB bytes, with 4×4 supersampled anti-aliasing, and the ground-truth
 * instance label map (0 = background, i + 1 = object i) the detector is scored against.
 *
 * @module
 */
import { INSIDE } from "./geometry.ts";
import { type Scene, SCENE_SIZE } from "./scene.ts";

/** A rendered scene: interleaved RGB bytes and the instance label map. */
export interface Rendered {
  /** Row-major, interleaved RGB, SCENE_SIZE² × 3 bytes. */
  rgb: Uint8Array;
  /** Row-major instance labels: 0 background, i + 1 for object i (coverage ≥ 1/2). */
  labels: Uint8Array;
}

const SS = 4;

/**
 * Renders a scene. Pure: the same scene gives the same bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers, shapes } from "@attnkit/attnkit";
 * const groups = [{ cls: "star", colour: "green", count: 1 }] as const;
 * const scene = shapes.sceneFor(samplers.mulberry32(1), groups, ["green"])!;
 * const { rgb } = shapes.render(scene);
 * assert.equal(rgb.length, 64 * 64 * 3); // 64 × 64 interleaved RGB
 * assert.deepEqual(shapes.render(scene).rgb, rgb); // pure
 * ```
 */
export function render(scene: Scene): Rendered {
  const n = SCENE_SIZE;
  const img = new Float32Array(n * n * 3);
  const { from, to, angle } = scene.background;
  const ca = Math.cos(angle), sa = Math.sin(angle);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const s = Math.min(
        1,
        Math.max(0, 0.5 + ((x / (n - 1) - 0.5) * ca + (y / (n - 1) - 0.5) * sa)),
      );
      const p = (y * n + x) * 3;
      for (let c = 0; c < 3; c++) img[p + c] = from[c] * (1 - s) + to[c] * s;
    }
  }
  const labels = new Uint8Array(n * n);
  scene.objects.forEach((o, index) => {
    const inside = INSIDE[o.cls];
    const y0 = Math.max(0, Math.floor(o.cy - o.r - 1)), y1 = Math.min(n, Math.ceil(o.cy + o.r + 1));
    const x0 = Math.max(0, Math.floor(o.cx - o.r - 1)), x1 = Math.min(n, Math.ceil(o.cx + o.r + 1));
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        let hits = 0;
        for (let sy = 0; sy < SS; sy++) {
          for (let sx = 0; sx < SS; sx++) {
            const u = (x + (sx + 0.5) / SS - o.cx) / o.r;
            const v = (y + (sy + 0.5) / SS - o.cy) / o.r;
            if (inside(u, v)) hits++;
          }
        }
        if (hits === 0) continue;
        const cov = hits / (SS * SS);
        const p = (y * n + x) * 3;
        for (let c = 0; c < 3; c++) img[p + c] = img[p + c] * (1 - cov) + o.rgb[c] * cov;
        if (cov >= 0.5) labels[y * n + x] = index + 1;
      }
    }
  });
  const rgb = new Uint8Array(n * n * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = Math.round(Math.min(255, Math.max(0, img[i])));
  return { rgb, labels };
}
