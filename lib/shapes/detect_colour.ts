/**
 * Per-pixel colour unmixing for the shapes detector. The renderer blends each object's colour over
 * the background by its pixel coverage, `p = (1 − α)·bg + α·c`, and a decoder's blurred edges do
 * much the same. Working in the chroma plane (RGB with the grey axis projected out), each pixel is
 * explained as the background plus α times (palette colour − background) for each of the six
 * palette colours; the colour with the smallest residual wins and its α is the pixel's
 * "objectness". Projecting out the grey axis makes α blind to lightness: grey speckles, shading
 * and a darker or lighter background do not look like objects, only saturated colour does. The
 * hue-like choice among palette colours is what the residual measures, and it holds for
 * anti-aliased edge pixels too (a half-covered red pixel is pink, and pink unmixes to red).
 *
 * @module
 */
import { COLOUR_RGB, COLOURS } from "./world.ts";
import { SCENE_SIZE } from "./scene.ts";

/** Marks a pixel no palette colour explains (α ≤ 0 for all of them). */
export const NO_COLOUR = 255;

/** Per-pixel unmixing: best palette colour index (into COLOURS) and its α. */
export interface Unmixed {
  /** Index into COLOURS, or NO_COLOUR. */
  colour: Uint8Array;
  /** Fraction of the way from the background to the palette colour, in the chroma plane. */
  alpha: Float32Array;
}

const INV_SQRT2 = 1 / Math.SQRT2;
const INV_SQRT6 = 1 / Math.sqrt(6);

/** Chroma-plane coordinates of an RGB triple: the components orthogonal to grey (1, 1, 1). */
export function chromaOf(r: number, g: number, b: number): [number, number] {
  return [(r - g) * INV_SQRT2, (r + g - 2 * b) * INV_SQRT6];
}

const PALETTE: readonly (readonly [number, number])[] = COLOURS.map((c) => {
  const [r, g, b] = COLOUR_RGB[c];
  return chromaOf(r, g, b);
});

/** Unmixes every pixel of a 64×64 RGB image against its estimated background. */
export function unmix(rgb: Uint8Array, background: Float32Array): Unmixed {
  const n = SCENE_SIZE * SCENE_SIZE;
  const colour = new Uint8Array(n).fill(NO_COLOUR);
  const alpha = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const [qx, qy] = chromaOf(rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]);
    const [bx, by] = chromaOf(background[i * 3], background[i * 3 + 1], background[i * 3 + 2]);
    const px = qx - bx, py = qy - by;
    let best = NO_COLOUR, bestRes = Infinity, bestA = 0;
    for (let k = 0; k < PALETTE.length; k++) {
      const dx = PALETTE[k][0] - bx, dy = PALETTE[k][1] - by;
      const a = (px * dx + py * dy) / (dx * dx + dy * dy);
      if (a <= 0) continue;
      // Overshoot past the palette colour (a more saturated pixel) is not penalised: a > 1 is
      // kept as it is rather than clamped, so only the off-direction part counts.
      const rx = px - a * dx, ry = py - a * dy;
      const res = rx * rx + ry * ry;
      if (res < bestRes) {
        bestRes = res;
        best = k;
        bestA = a;
      }
    }
    colour[i] = best;
    alpha[i] = bestA;
  }
  return { colour, alpha };
}
