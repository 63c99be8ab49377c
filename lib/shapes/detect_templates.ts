/**
 * Blurred shape templates for the shapes detector. A render's pixel value is the object's
 * coverage of that pixel (a one-pixel box filter of its silhouette), and a decoder blurs that
 * further; both are low-pass filters. So the template of a class at scale r, seen through a blur
 * of σ pixels, is the coverage `(indicator ⊗ G_s)(u, v)` in the class's unit coordinates, with
 * s = √(σ² + 1/12) / r (1/12 px² is the variance of the one-pixel box). Its ½ level set is what a
 * label map (coverage ≥ ½) or a thresholded α shows. Blur rounds convex corners, fills concave
 * ones and erases parts thinner than about 2σ: a blurred small cross really is nearer a rounded
 * diamond, and only a blurred template knows it.
 *
 * Each class's blurred indicator is tabulated once per blur level on a fine grid over unit
 * coordinates (built on first use and cached, at most 34 levels × 10 classes × 69 kB), so
 * evaluating a pixel is one bilinear lookup.
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

/** One pass along rows (`step` 1) or columns (`step` G) of a Gaussian or box kernel. */
function pass(src: Float32Array, kernel: readonly number[], step: number): Float32Array {
  const rad = (kernel.length - 1) / 2;
  const sum = kernel.reduce((a, b) => a + b, 0);
  const out = new Float32Array(G * G);
  // Outside the grid is outside every shape (zero), so out-of-range taps add nothing.
  for (let j = 0; j < G; j++) {
    for (let i = 0; i < G; i++) {
      const along = step === 1 ? i : j;
      const base = j * G + i;
      let acc = 0;
      for (let t = Math.max(-rad, -along); t <= Math.min(rad, G - 1 - along); t++) {
        acc += kernel[t + rad] * src[base + t * step];
      }
      out[base] = acc / sum;
    }
  }
  return out;
}

/** A running-sum box pass of odd width `w` (cost independent of w). */
function boxPass(src: Float32Array, w: number, step: number): Float32Array {
  const m = (w - 1) / 2;
  const out = new Float32Array(G * G);
  for (let line = 0; line < G; line++) {
    const at = (k: number) => (step === 1 ? line * G + k : k * G + line);
    let acc = 0;
    for (let k = 0; k <= Math.min(m, G - 1); k++) acc += src[at(k)];
    for (let k = 0; k < G; k++) {
      out[at(k)] = acc / w;
      if (k + m + 1 < G) acc += src[at(k + m + 1)];
      if (k - m >= 0) acc -= src[at(k - m)];
    }
  }
  return out;
}

/**
 * Gaussian blur of a grid by `sigma` cells: exact taps for small σ, three box passes per axis
 * (whose variances add up to σ²) for large σ, where exact taps would cost O(σ) per cell.
 */
function blurGrid(src: Float32Array, sigma: number): Float32Array {
  if (sigma < 3) {
    const rad = Math.ceil(3 * sigma);
    const k = Array.from(
      { length: 2 * rad + 1 },
      (_, i) => Math.exp(-((i - rad) ** 2) / (2 * sigma ** 2)),
    );
    return pass(pass(src, k, 1), k, G);
  }
  // Widths wl and wl + 2 (odd), m passes of wl: Σ (w² − 1)/12 = σ².
  let wl = Math.floor(Math.sqrt(4 * sigma * sigma + 1));
  if (wl % 2 === 0) wl--;
  const m = Math.round((12 * sigma * sigma - 3 * wl * wl - 12 * wl - 9) / (-4 * wl - 4));
  let out = src;
  for (let p = 0; p < 3; p++) {
    const w = p < m ? wl : wl + 2;
    out = boxPass(boxPass(out, w, 1), w, G);
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
