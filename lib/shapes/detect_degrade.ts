/**
 * Model-like damage to clean renders, for measuring the detector where it will be used: images
 * decoded by a small autoencoder from diffusion latents are blurred, their colours drift, they
 * carry noise and stray speckles, and their outlines wobble. Seeded, so a measurement repeats.
 *
 * @module
 */
import { SCENE_SIZE } from "./scene.ts";
import { gaussian, type Rng } from "../random.ts";

/** How much damage to do; every field is optional and 0 turns that kind off. */
export interface Degradation {
  /** Gaussian blur σ in pixels (default 0.8). */
  blur?: number;
  /** Smooth displacement of the outlines, peak pixels (default 0.7). */
  warp?: number;
  /** Uniform colour cast per channel, ± this many levels (default 12). */
  cast?: number;
  /** Per-pixel Gaussian noise σ, levels (default 5). */
  noise?: number;
  /** Number of stray 1–4-pixel colour speckles (default 4). */
  speckles?: number;
}

/** The default damage. */
export const DEGRADE_DEFAULTS: Readonly<Required<Degradation>> = {
  blur: 0.8,
  warp: 0.7,
  cast: 12,
  noise: 5,
  speckles: 4,
};

function blurred(img: Float32Array, sigma: number): Float32Array {
  const n = SCENE_SIZE;
  const rad = Math.ceil(3 * sigma);
  const k = Array.from(
    { length: 2 * rad + 1 },
    (_, i) => Math.exp(-((i - rad) ** 2) / (2 * sigma * sigma)),
  );
  const ks = k.reduce((a, b) => a + b, 0);
  const pass = (src: Float32Array, horizontal: boolean): Float32Array => {
    const out = new Float32Array(src.length);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let t = -rad; t <= rad; t++) {
            const xx = horizontal ? Math.min(n - 1, Math.max(0, x + t)) : x;
            const yy = horizontal ? y : Math.min(n - 1, Math.max(0, y + t));
            s += k[t + rad] * src[(yy * n + xx) * 3 + c];
          }
          out[(y * n + x) * 3 + c] = s / ks;
        }
      }
    }
    return out;
  };
  return pass(pass(img, true), false);
}

function warped(img: Float32Array, amount: number, rng: Rng): Float32Array {
  const n = SCENE_SIZE;
  // Two smooth fields, each a sum of three random low-frequency waves.
  const waves = Array.from({ length: 6 }, () => ({
    fx: (rng() - 0.5) * 0.4,
    fy: (rng() - 0.5) * 0.4,
    ph: rng() * 2 * Math.PI,
  }));
  const field = (x: number, y: number, off: number): number => {
    let s = 0;
    for (let k = 0; k < 3; k++) {
      const w = waves[off + k];
      s += Math.sin(w.fx * x + w.fy * y + w.ph);
    }
    return (s / 3) * amount;
  };
  const out = new Float32Array(img.length);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const sx = Math.min(n - 1, Math.max(0, x + field(x, y, 0)));
      const sy = Math.min(n - 1, Math.max(0, y + field(x, y, 3)));
      const x0 = Math.min(n - 2, Math.floor(sx)), y0 = Math.min(n - 2, Math.floor(sy));
      const ax = sx - x0, ay = sy - y0;
      for (let c = 0; c < 3; c++) {
        const at = (xx: number, yy: number) => img[(yy * n + xx) * 3 + c];
        out[(y * n + x) * 3 + c] = (1 - ay) * ((1 - ax) * at(x0, y0) + ax * at(x0 + 1, y0)) +
          ay * ((1 - ax) * at(x0, y0 + 1) + ax * at(x0 + 1, y0 + 1));
      }
    }
  }
  return out;
}

/** A damaged copy of a 64×64 RGB image (see {@link Degradation}); `rng` draws the damage. */
export function degrade(rgb: Uint8Array, rng: Rng, opts: Degradation = {}): Uint8Array {
  const o = { ...DEGRADE_DEFAULTS, ...opts };
  const n = SCENE_SIZE;
  let img: Float32Array = Float32Array.from(rgb);
  if (o.warp > 0) img = warped(img, o.warp, rng);
  if (o.blur > 0) img = blurred(img, o.blur);
  for (let s = 0; s < o.speckles; s++) {
    const x = Math.floor(rng() * (n - 1)), y = Math.floor(rng() * (n - 1));
    const colour = [rng() * 255, rng() * 255, rng() * 255];
    const size = 1 + Math.floor(rng() * 4);
    for (let k = 0; k < size; k++) {
      const i = (y + (k >> 1)) * n + x + (k & 1);
      for (let c = 0; c < 3; c++) img[i * 3 + c] = colour[c];
    }
  }
  const cast = [0, 1, 2].map(() => (rng() * 2 - 1) * o.cast);
  const noise = o.noise > 0 ? gaussian(rng, img.length) : new Float32Array(img.length);
  const out = new Uint8Array(img.length);
  for (let i = 0; i < img.length; i++) {
    const v = img[i] + cast[i % 3] + o.noise * noise[i];
    out[i] = Math.round(Math.min(255, Math.max(0, v)));
  }
  return out;
}
