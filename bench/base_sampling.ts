/**
 * Base sampling cost (N = 1 and N = 4, 20 DDIM steps, guidance 5) on onnxruntime-node, for A/B
 * comparisons of two checkouts: run it once per checkout, alternating, and compare. Prints one JSON
 * line: the minimum process CPU ms (user + system) of 5 samplings of each N after 2 warm-ups.
 *
 *   git archive f8d1e89 | tar -x -C /tmp/before      # the tree before issue 13
 *   deno run -A bench/base_sampling.ts /tmp/before  # and: deno run -A bench/base_sampling.ts .
 *
 * @module
 */
import process from "node:process";
import { pathToFileURL } from "node:url";

const root = Deno.args[0] ?? ".";
const at = (p: string) => pathToFileURL(`${Deno.realPathSync(root)}/${p}`).href;
const { loadShapesModel } = await import(at("lib/models/shapes.ts"));
const { sampleLatents } = await import(at("lib/runtime/sample.ts"));
const { ort } = await import(at("lib/onnx/ort.ts"));
ort.env.logLevel = "error";
const model = await loadShapesModel({ session: { executionProviders: ["node"] } });
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const out: Record<string, number> = {};
for (const n of [1, 4]) {
  const xs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const c = cpu();
    await sampleLatents(model, "a photo of two red circles and a blue square", {
      seed: r,
      steps: 20,
      guidance: 5,
      candidates: n,
      progress: false,
    });
    if (r >= 2) xs.push(cpu() - c);
  }
  out[`N=${n}`] = Math.min(...xs);
}
console.log(JSON.stringify(out));
await model.release();
