/**
 * Writes a batch of images as one PNG strip (an edge function: the only file write in viz).
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { expectFinite } from "../tensor.ts";
import { encodePng } from "../png.ts";
import { enlarge, tileGrid } from "../shapes/grid.ts";
import type { Tensor } from "../tensor.ts";
import { imageBytes } from "./colour.ts";

/**
 * Saves images `[N, 3, H, W]` in [0, 1] (one batch or several of the same size) side by side (`cols` per row, default all in one row),
 * each enlarged `scale`× (nearest neighbour, default 1), as a PNG at `path`; returns the path. The file is written whole or not at all (a temporary
 * beside it, then a rename).
 *
 * @throws {AttnkitError} naming `images` when the shape is not [N, 3, H, W].
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { savePng } from "./save.ts";
 * import { tensor } from "../tensor.ts";
 * const path = await Deno.makeTempFile({ suffix: ".png" });
 * await savePng(path, tensor([2, 3, 4, 4]));
 * assert((await Deno.stat(path)).size > 0);
 * await Deno.remove(path);
 * ```
 */
export async function savePng(
  path: string,
  images: Tensor | readonly Tensor[],
  opts: { cols?: number; scale?: number } = {},
): Promise<string> {
  const batches = "shape" in images ? [images as Tensor] : images as readonly Tensor[];
  check(batches.length > 0, "images", "expected at least one image");
  const scale = opts.scale ?? 1;
  check(Number.isInteger(scale) && scale >= 1, "scale", `must be an integer ≥ 1, got ${scale}`);
  check(
    opts.cols === undefined || (Number.isInteger(opts.cols) && opts.cols >= 1),
    "cols",
    `must be an integer ≥ 1, got ${opts.cols}`,
  );
  check(images !== null && typeof images === "object", "images", "expected [N, 3, H, W] images");
  const first = batches[0]?.shape ?? [];
  check(
    first.length === 4 && first[1] === 3 && first[0] >= 1,
    "images",
    `expected [N, 3, H, W], got [${first}]`,
  );
  const [, , h, w] = first;
  for (const t of batches) {
    check(
      t.shape.length === 4 && t.shape[1] === 3 && t.shape[0] >= 1 && t.shape[2] === h &&
        t.shape[3] === w,
      "images",
      `expected every batch as [N, 3, ${h}, ${w}], got [${t.shape}]`,
    );
    expectFinite(t, "images");
  }
  const tiles = batches.flatMap((t) =>
    Array.from({ length: t.shape[0] }, (_, b) => enlarge(imageBytes(t, b), w, h, scale))
  );
  const grid = tileGrid(tiles, w * scale, h * scale, opts.cols ?? tiles.length);
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeFile(tmp, await encodePng(grid.rgb, grid.width, grid.height));
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new AttnkitError("path", `cannot write ${path}: ${(e as Error).message.split(":")[0]}`);
  }
  return path;
}
