/**
 * Blurred shape templates for the shapes detector. A render's pixel is inside its object's label
 * when at least half of it is covered, and a decoder blurs that further; both are a low-pass
 * filter followed by a threshold at ½. So the template of a class at scale r, seen through a blur
 * of σ pixels, is `(indicator ⊗ G_s)(u, v) ≥ ½` in the class's unit coordinates, with
 * s = √(σ² + 1/12) / r (1/12 px² is the variance of the one-pixel box that coverage integrates
 * over). Blur rounds convex corners, fills concave ones and erases parts thinner than about 2σ:
 * a blurred small cross really is nearer a rounded diamond, and only a blurred template knows it.
 *
 * Each class's blurred indicator is tabulated once per blur level on a fine grid over unit
 * coordinates (built on first use and cached), so testing a pixel is one bilinear lookup.
 *
 * @module
 */
import { INSIDE } from "./geometry.ts";
import type { ShapeClass } from "./world.ts";

/** Half-width of the tabulated square in unit coordinates (shapes span [−1, 1]). */
const HALF = 1.3;
/** Grid step in unit coordinates. */
const CELL = 0.02;
const G = Math.round((2 * HALF) / CELL) + 1;
/** Blur levels (σ in unit coordinates): S0 · Q^k. */
const S0 = 0.012;
const Q = 1.12;
const LEVELS = 34;

const cache = new Map<string, Float32Array>();

function indicator(cls: ShapeClass): Float32Array {
  const inside = INSIDE[cls];
  const f = new Float32Array(G * G);
  const d = CELL / 4;
  for (let j = 0; j < G; j++) {
    const v = -HALF + j * CELL;
    for (let i = 0; i < G; i++) {
      const u = -HALF + i * CELL;
      let k = 0;
      if (inside(u - d, v - d)) k++;
      if (inside(u + d, v - d)) k++;
      if (inside(u - d, v + d)) k++;
      if (inside(u + d, v + d)) k++;
      f[j * G + i] = k / 4;
    }
  }
  return f;
}

function blurGrid(src: Float32Array, sigmaCells: number): Float32Array {
  const rad = Math.ceil(3 * sigmaCells);
  const k = Array.from(
    { length: 2 * rad + 1 },
    (_, i) => Math.exp(-((i - rad) ** 2) / (2 * sigmaCells ** 2)),
  );
  const ks = k.reduce((a, b) => a + b, 0);
  const tmp = new Float32Array(G * G);
  const out = new Float32Array(G * G);
  // Outside the grid is outside every shape (zero), so out-of-range taps add nothing.
  for (let j = 0; j < G; j++) {
    for (let i = 0; i < G; i++) {
      let s = 0;
      for (let t = -rad; t <= rad; t++) {
        const ii = i + t;
        if (ii >= 0 && ii < G) s += k[t + rad] * src[j * G + ii];
      }
      tmp[j * G + i] = s / ks;
    }
  }
  for (let j = 0; j < G; j++) {
    for (let i = 0; i < G; i++) {
      let s = 0;
      for (let t = -rad; t <= rad; t++) {
        const jj = j + t;
        if (jj >= 0 && jj < G) s += k[t + rad] * tmp[jj * G + i];
      }
      out[j * G + i] = s / ks;
    }
  }
  return out;
}

function levelOf(s: number): number {
  const k = Math.round(Math.log(s / S0) / Math.log(Q));
  return Math.min(LEVELS - 1, Math.max(0, k));
}

function fieldOf(cls: ShapeClass, level: number): Float32Array {
  const key = `${cls}:${level}`;
  let f = cache.get(key);
  if (!f) {
    const base = cache.get(`${cls}:-`) ?? indicator(cls);
    cache.set(`${cls}:-`, base);
    f = blurGrid(base, (S0 * Q ** level) / CELL);
    cache.set(key, f);
  }
  return f;
}

/** A class template at one scale and blur: the blurred coverage at unit point (u, v), in [0, 1]. */
export type Template = (u: number, v: number) => number;

/**
 * The template of `cls` drawn at scale `r` pixels and seen through a Gaussian blur of `blur`
 * pixels (0: a sharp render's pixel coverage). Threshold it at ½ for a label-map-like mask.
 */
export function templateOf(cls: ShapeClass, r: number, blur: number): Template {
  const f = fieldOf(cls, levelOf(Math.sqrt(blur * blur + 1 / 12) / r));
  return (u, v) => {
    const x = (u + HALF) / CELL, y = (v + HALF) / CELL;
    if (x < 0 || y < 0 || x >= G - 1 || y >= G - 1) return 0;
    const i = Math.floor(x), j = Math.floor(y);
    const ax = x - i, ay = y - j;
    const p = j * G + i;
    return (1 - ay) * ((1 - ax) * f[p] + ax * f[p + 1]) +
      ay * ((1 - ax) * f[p + G] + ax * f[p + G + 1]);
  };
}
