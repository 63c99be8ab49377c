/**
 * Step 1 of the recipe: writes the shapes training set for the Python trainer.
 * Usage: deno run -A weights/recipe/export_dataset.ts [--out weights/recipe/data] [--count 60000] [--seed 1]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { exportDataset } from "../../lib/shapes/dataset.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    out: { type: "string", default: "weights/recipe/data" },
    count: { type: "string", default: "60000" },
    seed: { type: "string", default: "1" },
  },
});
const t0 = performance.now();
await exportDataset(values.out!, Number(values.count), Number(values.seed));
console.error(`wrote ${values.count} examples to ${values.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
