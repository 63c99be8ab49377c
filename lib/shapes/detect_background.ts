/**
 * Background estimation for the shapes detector. Scenes of the shapes world lie on a soft linear
 * gradient between two light, unsaturated colours, clamped at the ends (scene.ts, render.ts):
 * `bg(x, y) = A + B·clamp(0.5 + (x′ − 0.5)·cos θ + (y′ − 0.5)·sin θ, 0, 1)` with x′, y′ ∈ [0, 1].
 *
 * The fit searches θ over a grid and solves A, B (per channel) by least squares on the pixels
 * that look like background (low chroma, not dark), then trims the pixels the fit explains worst
 * and fits again, so stray foreground (blurred edges, speckles of a generated image) does not pull
 * it. A plain background is the case B = 0. The clamped ramp is fitted rather than a plane because
 * the clamp bends the gradient near the corners by up to ~14 levels, which a plane cannot follow.
 *
 * @module
 */
import { SCENE_SIZE } from "./scene.ts";

/** Candidate background pixels: chroma (max − min channel) at most this. */
const MAX_BG_CHROMA = 40;
/** Candidate background pixels: darkest channel at least this. */
const MIN_BG_LEVEL = 110;
/** Angles tried for the gradient direction, over [0, π) (θ + π is the same ramp reversed). */
const ANGLES = 48;

interface RampFit {
  angle: number;
  a: [number, number, number];
  b: [number, number, number];
  sse: number;
}

function rampOf(angle: number, n: number): Float32Array {
  const s = new Float32Array(n * n);
  const ca = Math.cos(angle), sa = Math.sin(angle);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const t = 0.5 + (x / (n - 1) - 0.5) * ca + (y / (n - 1) - 0.5) * sa;
      s[y * n + x] = t < 0 ? 0 : t > 1 ? 1 : t;
    }
  }
  return s;
}

const RAMPS: readonly Float32Array[] = Array.from(
  { length: ANGLES },
  (_, i) => rampOf((i * Math.PI) / ANGLES, SCENE_SIZE),
);

function fitRamp(rgb: Uint8Array, use: Uint8Array, ramp: Float32Array, angle: number): RampFit {
  let n = 0, ss = 0, sss = 0;
  const sp = [0, 0, 0], spp = [0, 0, 0], ssp = [0, 0, 0];
  for (let i = 0; i < use.length; i++) {
    if (!use[i]) continue;
    const s = ramp[i];
    n++;
    ss += s;
    sss += s * s;
    for (let c = 0; c < 3; c++) {
      const p = rgb[i * 3 + c];
      sp[c] += p;
      spp[c] += p * p;
      ssp[c] += s * p;
    }
  }
  const a: [number, number, number] = [0, 0, 0];
  const b: [number, number, number] = [0, 0, 0];
  const det = n * sss - ss * ss;
  let sse = 0;
  for (let c = 0; c < 3; c++) {
    if (det > 1e-6 * n * n) {
      b[c] = (n * ssp[c] - ss * sp[c]) / det;
      a[c] = (sp[c] - b[c] * ss) / n;
    } else {
      a[c] = n > 0 ? sp[c] / n : 0;
    }
    // Σ (p − a − b s)² expanded in the sums already gathered.
    sse += spp[c] - 2 * a[c] * sp[c] - 2 * b[c] * ssp[c] + n * a[c] * a[c] + 2 * a[c] * b[c] * ss +
      b[c] * b[c] * sss;
  }
  return { angle, a, b, sse };
}

function bestRamp(rgb: Uint8Array, use: Uint8Array): { fit: RampFit; ramp: Float32Array } {
  let best = fitRamp(rgb, use, RAMPS[0], 0);
  let ramp = RAMPS[0];
  for (let k = 1; k < ANGLES; k++) {
    const f = fitRamp(rgb, use, RAMPS[k], (k * Math.PI) / ANGLES);
    if (f.sse < best.sse) {
      best = f;
      ramp = RAMPS[k];
    }
  }
  return { fit: best, ramp };
}

/**
 * The estimated background of a 64×64 RGB image: SCENE_SIZE² × 3 floats, interleaved like the
 * input.
 */
export function estimateBackground(rgb: Uint8Array): Float32Array {
  const n = SCENE_SIZE * SCENE_SIZE;
  const use = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const r = rgb[i * 3], g = rgb[i * 3 + 1], b = rgb[i * 3 + 2];
    const hi = Math.max(r, g, b), lo = Math.min(r, g, b);
    if (hi - lo <= MAX_BG_CHROMA && lo >= MIN_BG_LEVEL) {
      use[i] = 1;
      count++;
    }
  }
  // An image with almost no light grey pixels has no background of the expected kind: fit to all
  // pixels and let the trimming below find whatever is most uniform.
  if (count < n / 8) use.fill(1);
  let { fit, ramp } = bestRamp(rgb, use);
  for (let round = 0; round < 2; round++) {
    const res = new Float32Array(n);
    const kept: number[] = [];
    for (let i = 0; i < n; i++) {
      if (!use[i]) continue;
      let d2 = 0;
      for (let c = 0; c < 3; c++) {
        const d = rgb[i * 3 + c] - fit.a[c] - fit.b[c] * ramp[i];
        d2 += d * d;
      }
      res[i] = Math.sqrt(d2);
      kept.push(res[i]);
    }
    kept.sort((x, y) => x - y);
    const median = kept[Math.floor(kept.length / 2)] ?? 0;
    const limit = Math.max(8, 3 * median);
    let left = 0;
    const next = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      if (use[i] && res[i] <= limit) {
        next[i] = 1;
        left++;
      }
    }
    if (left < n / 16) break;
    use.set(next);
    ({ fit, ramp } = bestRamp(rgb, use));
  }
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[i * 3 + c] = fit.a[c] + fit.b[c] * ramp[i];
  }
  return out;
}
