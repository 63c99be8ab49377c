/**
 * Each shape class as an inside-test on normalised coordinates (u, v) ∈ [−1, 1]², v pointing
 * down. The renderer supersamples these; the detector renders them as templates. Every shape's
 * silhouette is centred in and spans its unit box (oval: full width, 0.6 of the height).
 *
 * @module
 */
import type { ShapeClass } from "./world.ts";

/** An inside-test on normalised coordinates. */
export type Inside = (u: number, v: number) => boolean;

const STAR: readonly (readonly [number, number])[] = Array.from({ length: 10 }, (_, i) => {
  const r = i % 2 === 0 ? 1 : 0.42;
  const a = -Math.PI / 2 + (i * Math.PI) / 5;
  return [r * Math.cos(a), r * Math.sin(a) + 0.1] as const;
});

function inPolygon(poly: readonly (readonly [number, number])[], u: number, v: number): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if ((yi > v) !== (yj > v) && u < ((xj - xi) * (v - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

const TRIANGLE: readonly (readonly [number, number])[] = [[0, -0.95], [0.98, 0.85], [-0.98, 0.85]];

/** The inside-test of each class. */
export const INSIDE: Readonly<Record<ShapeClass, Inside>> = {
  circle: (u, v) => u * u + v * v <= 1,
  oval: (u, v) => u * u + (v / 0.6) * (v / 0.6) <= 1,
  ring: (u, v) => {
    const r2 = u * u + v * v;
    return r2 <= 1 && r2 >= 0.5 * 0.5;
  },
  heart: (u, v) => {
    const x = 1.15 * u;
    const y = -1.15 * v + 0.15;
    const a = x * x + y * y - 1;
    return a * a * a - x * x * y * y * y <= 0;
  },
  moon: (u, v) => {
    const dx = u - 0.45;
    const dy = v + 0.2;
    return u * u + v * v <= 1 && dx * dx + dy * dy > 0.8 * 0.8;
  },
  square: (u, v) => Math.abs(u) <= 0.85 && Math.abs(v) <= 0.85,
  triangle: (u, v) => inPolygon(TRIANGLE, u, v),
  diamond: (u, v) => Math.abs(u) + Math.abs(v) <= 1,
  star: (u, v) => inPolygon(STAR, u, v),
  cross: (u, v) =>
    (Math.abs(u) <= 0.34 && Math.abs(v) <= 0.95) || (Math.abs(v) <= 0.34 && Math.abs(u) <= 0.95),
};
