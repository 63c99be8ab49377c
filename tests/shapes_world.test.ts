import { assert, assertEquals, assertThrows } from "./assert.ts";
import { render } from "../lib/shapes/render.ts";
import { type Scene, SCENE_SIZE } from "../lib/shapes/scene.ts";
import { captionOf } from "../lib/shapes/caption.ts";
import { sampleExample } from "../lib/shapes/sample.ts";
import { tokenIds, wordsOf } from "../lib/shapes/tokens.ts";
import { MAX_TOKENS, type ShapeClass, VOCAB } from "../lib/shapes/world.ts";
import { wordTokenizer } from "../lib/prompt/word_tokenizer.ts";
import { mulberry32 } from "../lib/random.ts";
import { AttnkitError } from "../lib/errors.ts";

const plain = { from: [230, 230, 230], to: [230, 230, 230], angle: 0 } as const;

Deno.test("a rendered circle covers about πr² pixels and has the object's colour at its centre", () => {
  const scene: Scene = {
    background: plain,
    objects: [{ cls: "circle", colour: "red", rgb: [200, 20, 20], cx: 32, cy: 32, r: 10 }],
  };
  const { rgb, labels } = render(scene);
  const area = labels.reduce((s, v) => s + (v ? 1 : 0), 0);
  assert(Math.abs(area - Math.PI * 100) < 12, `area ${area} vs ${Math.PI * 100}`);
  const c = (32 * SCENE_SIZE + 32) * 3;
  assertEquals([rgb[c], rgb[c + 1], rgb[c + 2]], [200, 20, 20]);
  assertEquals([rgb[0], rgb[1], rgb[2]], [230, 230, 230]);
});

Deno.test("a ring has a hole and a square fills its box more than a diamond", () => {
  const one = (cls: ShapeClass) =>
    render({
      background: plain,
      objects: [{ cls, colour: "blue", rgb: [0, 0, 255], cx: 32, cy: 32, r: 12 }],
    })
      .labels;
  assertEquals(one("ring")[32 * SCENE_SIZE + 32], 0);
  assertEquals(one("circle")[32 * SCENE_SIZE + 32], 1);
  const count = (m: Uint8Array) => m.reduce((s, v) => s + v, 0);
  // nominal areas: square (1.7r)² = 2.89r², diamond 2r²; edge pixels blur the ratio at r = 12.
  assert(count(one("square")) > 1.2 * count(one("diamond")));
});

Deno.test("sampling is deterministic for a seed and every object is separate", () => {
  const a = sampleExample(mulberry32(7)), b = sampleExample(mulberry32(7));
  assertEquals(a.caption, b.caption);
  assertEquals(render(a.scene).rgb, render(b.scene).rgb);
  const rng = mulberry32(3);
  for (let i = 0; i < 50; i++) {
    const ex = sampleExample(rng);
    const labels = render(ex.scene).labels;
    const seen = new Set(labels);
    assertEquals(seen.size - 1, ex.scene.objects.length, ex.caption);
    assertEquals(ex.scene.objects.length, ex.groups.reduce((s, g) => s + g.count, 0));
  }
});

Deno.test("captions take the ISAC benchmark forms", () => {
  assertEquals(
    captionOf([
      { cls: "circle", colour: "red", count: 1 },
      { cls: "square", colour: "blue", count: 1 },
      { cls: "star", colour: "green", count: 1 },
    ]),
    "a photo of a red circle, a blue square and a green star",
  );
  assertEquals(
    captionOf([{ cls: "heart", colour: "yellow", count: 3 }]),
    "a photo of three yellow hearts",
  );
  assertEquals(captionOf([{ cls: "oval", colour: null, count: 1 }], false), "an oval");
  assertEquals(
    captionOf([{ cls: "cross", colour: "orange", count: 2 }]),
    "a photo of two orange crosses",
  );
});

Deno.test("the training tokenizer and the runtime word tokenizer give the same ids", () => {
  const runtime = wordTokenizer(VOCAB, {
    maxLength: MAX_TOKENS,
    sot: "<sot>",
    eot: "<eot>",
    pad: "<pad>",
  });
  const rng = mulberry32(11);
  for (let i = 0; i < 200; i++) {
    const caption = sampleExample(rng).caption;
    const ids = tokenIds(caption);
    assertEquals([...ids], [...runtime.tokenize(caption).ids], caption);
    assertEquals(
      wordsOf(caption),
      [...ids].slice(1, 1 + wordsOf(caption).length).map((id) => VOCAB[id]),
    );
  }
});

Deno.test("an unknown word is an error that names it and lists the vocabulary", () => {
  const e = assertThrows(() => tokenIds("a photo of a cat"), AttnkitError);
  assert(
    e.message.includes('"cat"') && e.message.includes("circle") && e.message.includes("purple"),
  );
});
