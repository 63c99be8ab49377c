/**
 * Writes a batch of images as one PNG strip (an edge function: the only file write in viz).
 *
 * @module
 */
import { check } from "../errors.ts";
import { encodePng } from "../png.ts";
import { tileGrid } from "../shapes/grid.ts";
import type { Tensor } from "../tensor.ts";
import { imageBytes } from "./colour.ts";

/**
 * Saves images `[N, 3, H, W]` in [0, 1] side by side (`cols` per row, default all in one row)
 * as a PNG at `path`, and returns the path. The file is written whole or not at all (a temporary
 * beside it, then a rename).
 *
 * @throws {AttnkitError} naming `images` when the shape is not [N, 3, H, W].
 * @example
 * ```ts
 * import { savePng } from "./save.ts";
 * import { tensor } from "../tensor.ts";
 * const path = await Deno.makeTempFile({ suffix: ".png" });
 * await savePng(path, tensor([2, 3, 4, 4]));
 * console.assert((await Deno.stat(path)).size > 0);
 * await Deno.remove(path);
 * ```
 */
export async function savePng(path: string, images: Tensor, cols?: number): Promise<string> {
  check(
    images.shape.length === 4 && images.shape[1] === 3 && images.shape[0] >= 1,
    "images",
    `expected [N, 3, H, W], got [${images.shape}]`,
  );
  const [n, , h, w] = images.shape;
  const tiles = Array.from({ length: n }, (_, b) => imageBytes(images, b));
  const grid = tileGrid(tiles, w, h, cols ?? n);
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeFile(tmp, await encodePng(grid.rgb, grid.width, grid.height));
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return path;
}
