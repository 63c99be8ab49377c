/**
 * Pictures: images as bytes, heat maps of attention, instance clusters, text labels, grids, PNG
 * encoding and saving.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, viz } from "@attnkit/attnkit";
 * const rgb = viz.heatmap([0, 0.5, 1, 0.25], 2, 2);
 * assert(rgb.length === 12);
 * ```
 *
 * @module
 */
export { clusterImage, heatmap, imageBytes } from "../viz/colour.ts";
export { drawText } from "../viz/text.ts";
export { encodePng } from "../png.ts";
export { savePng } from "../viz/save.ts";
export { enlarge, tileGrid } from "../shapes/grid.ts";
