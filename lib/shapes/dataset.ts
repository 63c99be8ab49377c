/**
 * The dataset exporter the training recipe reads: `count` seeded examples written as flat binary
 * files (images, token ids) plus JSON-lines metadata, in a directory. Layout (little-endian):
 * - `images.u8`: count × 64 × 64 × 3 bytes (RGB, row-major);
 * - `tokens.i32`: count × MAX_TOKENS int32 ids;
 * - `meta.jsonl`: one line per example: caption, groups, objects (class, colour, centre, radius);
 * - `info.json`: count, seed, image size, token length, vocabulary.
 *
 * @module
 */
import { seededRng } from "../random.ts";
import { render } from "./render.ts";
import { sampleExample } from "./sample.ts";
import { SCENE_SIZE } from "./scene.ts";
import { tokenIds } from "./tokens.ts";
import { MAX_TOKENS, VOCAB } from "./world.ts";

/** Writes `count` examples drawn with `seed` into `dir` (created if missing). */
export async function exportDataset(dir: string, count: number, seed: number): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const rng = seededRng(seed);
  const px = SCENE_SIZE * SCENE_SIZE * 3;
  const images = new Uint8Array(count * px);
  const tokens = new Int32Array(count * MAX_TOKENS);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const ex = sampleExample(rng);
    images.set(render(ex.scene).rgb, i * px);
    tokens.set(tokenIds(ex.caption), i * MAX_TOKENS);
    lines.push(
      JSON.stringify({ caption: ex.caption, groups: ex.groups, objects: ex.scene.objects }),
    );
  }
  await Deno.writeFile(`${dir}/images.u8`, images);
  await Deno.writeFile(`${dir}/tokens.i32`, new Uint8Array(tokens.buffer));
  await Deno.writeTextFile(`${dir}/meta.jsonl`, lines.join("\n") + "\n");
  await Deno.writeTextFile(
    `${dir}/info.json`,
    JSON.stringify({ count, seed, size: SCENE_SIZE, tokens: MAX_TOKENS, vocab: VOCAB }, null, 1),
  );
}
