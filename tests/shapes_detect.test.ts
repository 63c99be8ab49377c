import assert from "node:assert/strict";
import { mulberry32 } from "../lib/random.ts";
import { AttnkitError } from "../lib/errors.ts";
import { detect } from "../lib/shapes/detect.ts";
import { estimateBackground } from "../lib/shapes/detect_background.ts";
import { unmix } from "../lib/shapes/detect_colour.ts";
import { degrade } from "../lib/shapes/detect_degrade.ts";
import { checkDetections, summarise } from "../lib/shapes/detect_eval.ts";
import { benchmarkPrompts } from "../lib/shapes/benchmark_prompts.ts";
import { render } from "../lib/shapes/render.ts";
import { sampleExample } from "../lib/shapes/sample.ts";
import { type Background, type Scene, sceneFor, type ShapeObject } from "../lib/shapes/scene.ts";
import { COLOUR_RGB, type ColourName, COLOURS, type ShapeClass } from "../lib/shapes/world.ts";

const BG: Background = { from: [228, 226, 232], to: [205, 214, 222], angle: 0.7 };

function obj(cls: ShapeClass, colour: ColourName, cx: number, cy: number, r: number): ShapeObject {
  return { cls, colour, rgb: COLOUR_RGB[colour], cx, cy, r };
}

function scene(...objects: ShapeObject[]): Scene {
  return { background: BG, objects };
}

/** Held-out scenes: the training mix (seeds ≥ 1000; training uses seed 1) and benchmark prompts. */
function heldOut(count: number): Scene[] {
  const out: Scene[] = [];
  for (let s = 0; out.length < count / 2; s++) out.push(sampleExample(mulberry32(1000 + s)).scene);
  const prompts = benchmarkPrompts({ seed: 4242, perSetting: Math.ceil(count / 16) });
  const rng = mulberry32(4243);
  for (const p of prompts) {
    const sc = sceneFor(rng, p.groups, COLOURS);
    if (sc && out.length < count) out.push(sc);
  }
  return out;
}

Deno.test("detect: held-out renders", async (t) => {
  const scenes = heldOut(150);
  await t.step("≥ 97% count, class and colour accuracy on 150 clean renders", () => {
    const checks = scenes.map((sc) => {
      const r = render(sc);
      return checkDetections(sc.objects, r.labels, detect(r.rgb));
    });
    const s = summarise(checks);
    assert.ok(s.countAccuracy >= 0.97, `count accuracy ${s.countAccuracy}`);
    assert.ok(s.recall >= 0.97, `recall ${s.recall}`);
    assert.ok(s.classAccuracy >= 0.97, `class accuracy ${s.classAccuracy}`);
    assert.ok(s.colourAccuracy >= 0.97, `colour accuracy ${s.colourAccuracy}`);
    assert.ok(s.meanIou >= 0.9, `mean mask IoU ${s.meanIou}`);
  });
  await t.step("≥ 90% on 50 damaged renders (blur, warp, colour cast, noise, speckles)", () => {
    const checks = scenes.slice(0, 50).map((sc, i) => {
      const r = render(sc);
      return checkDetections(sc.objects, r.labels, detect(degrade(r.rgb, mulberry32(900 + i))));
    });
    const s = summarise(checks);
    assert.ok(s.countAccuracy >= 0.9, `count accuracy ${s.countAccuracy}`);
    assert.ok(s.classAccuracy >= 0.9, `class accuracy ${s.classAccuracy}`);
    assert.ok(s.colourAccuracy >= 0.95, `colour accuracy ${s.colourAccuracy}`);
  });
});

Deno.test("detect: hand-made cases", async (t) => {
  await t.step("an empty background (plain and gradient) has no instances", () => {
    assert.deepEqual(detect(render(scene()).rgb), []);
    const plain = { from: [240, 240, 240], to: [240, 240, 240], angle: 0 } as Background;
    assert.deepEqual(detect(render({ background: plain, objects: [] }).rgb), []);
  });
  await t.step("a few stray speckles are not objects", () => {
    const img = degrade(render(scene()).rgb, mulberry32(3), { speckles: 8, blur: 0, warp: 0 });
    assert.deepEqual(detect(img), []);
  });
  await t.step("two touching same-colour squares are one instance", () => {
    // Side by side, the right edge of one on the left edge of the other: no gap between them.
    const r = render(
      scene(obj("square", "red", 20, 32, 8), obj("square", "red", 20 + 13.6, 32, 8)),
    );
    const found = detect(r.rgb);
    assert.equal(found.length, 1);
    assert.equal(found[0].colour, "red");
    let labelled = 0;
    for (const l of r.labels) if (l > 0) labelled++;
    // One instance covering both squares (the label map's 4×4 supersampled coverage and the
    // detector's α threshold may disagree on the edge pixels, hence the 5% slack).
    assert.ok(
      Math.abs(found[0].area - labelled) <= 0.05 * labelled,
      `${found[0].area} vs ${labelled}`,
    );
  });
  await t.step("the same squares two pixels apart are two instances", () => {
    const r = render(scene(obj("square", "red", 20, 32, 8), obj("square", "red", 20 + 17, 32, 8)));
    assert.equal(detect(r.rgb).length, 2);
  });
  await t.step("touching objects of different colours are two instances", () => {
    const r = render(scene(obj("circle", "blue", 22, 32, 9), obj("circle", "yellow", 39, 32, 9)));
    const found = detect(r.rgb);
    assert.deepEqual(found.map((d) => d.colour).sort(), ["blue", "yellow"]);
  });
  await t.step("touching objects of neighbouring hues (red, orange) stay two instances", () => {
    const r = render(scene(obj("square", "red", 20, 32, 8), obj("circle", "orange", 35.5, 32, 9)));
    const found = detect(r.rgb).sort((a, b) => a.box[0] - b.box[0]);
    assert.deepEqual(found.map((d) => `${d.colour} ${d.cls}`), ["red square", "orange circle"]);
  });
  await t.step("one ring drifting from red to orange is one instance", () => {
    const red = render(scene(obj("ring", "red", 32, 32, 12))).rgb;
    const orange = render(scene(obj("ring", "orange", 32, 32, 12))).rgb;
    const img = red.slice();
    for (let y = 0; y < 64; y++) {
      for (let x = 32; x < 64; x++) {
        for (let c = 0; c < 3; c++) img[(y * 64 + x) * 3 + c] = orange[(y * 64 + x) * 3 + c];
      }
    }
    const found = detect(img);
    assert.equal(found.length, 1);
    assert.equal(found[0].cls, "ring");
  });
  await t.step("a ring is a ring, not a circle (large and small)", () => {
    for (const r of [12, 6]) {
      const found = detect(render(scene(obj("ring", "green", 32, 32, r))).rgb);
      assert.equal(found.length, 1);
      assert.equal(found[0].cls, "ring", `r = ${r}`);
      const circle = found[0].scores.find((s) => s.cls === "circle")!;
      assert.ok(found[0].clsScore > circle.iou + 0.1, `ring ${found[0].clsScore} vs ${circle.iou}`);
    }
  });
  await t.step("an oval and a circle of the same width are told apart", () => {
    const found = detect(
      render(scene(obj("oval", "purple", 18, 32, 10), obj("circle", "purple", 46, 32, 10))).rgb,
    );
    assert.equal(found.length, 2);
    const byX = found.sort((a, b) => a.box[0] - b.box[0]);
    assert.deepEqual(byX.map((d) => d.cls), ["oval", "circle"]);
    // The oval's box is 0.6 as tall as it is wide; the circle's is square.
    const aspect = (d: typeof found[0]) => (d.box[3] - d.box[1]) / (d.box[2] - d.box[0]);
    assert.ok(Math.abs(aspect(byX[0]) - 0.6) < 0.1, `oval aspect ${aspect(byX[0])}`);
    assert.ok(Math.abs(aspect(byX[1]) - 1) < 0.1, `circle aspect ${aspect(byX[1])}`);
  });
  await t.step("every class and colour alone, at the smallest and a large size", () => {
    for (
      const cls of [
        "circle",
        "oval",
        "ring",
        "heart",
        "moon",
        "square",
        "triangle",
        "diamond",
        "star",
        "cross",
      ] as const
    ) {
      for (const [i, colour] of COLOURS.entries()) {
        const r = i % 2 === 0 ? 5 : 14;
        const found = detect(render(scene(obj(cls, colour, 31.3, 32.6, r))).rgb);
        assert.equal(found.length, 1, `${colour} ${cls} r=${r}`);
        assert.equal(found[0].cls, cls, `${colour} ${cls} r=${r}`);
        assert.equal(found[0].colour, colour, `${colour} ${cls} r=${r}`);
      }
    }
  });
  await t.step("boxes are half-open pixel bounds of the mask", () => {
    const [d] = detect(render(scene(obj("square", "orange", 30.5, 20.5, 10))).rgb);
    // Square half-side 0.85·r = 8.5 px around 30.5 → pixel centres 22.5 … 38.5 → x in [22, 39).
    assert.deepEqual(d.box, [22, 12, 39, 29]);
    assert.equal(d.area, 17 * 17);
  });
  await t.step("bad input names the argument", () => {
    assert.throws(
      () => detect(new Uint8Array(10)),
      (e) => e instanceof AttnkitError && e.argument === "rgb",
    );
    assert.throws(
      () => detect(render(scene()).rgb, { alpha: 2 }),
      (e) => e instanceof AttnkitError && e.argument === "opts.alpha",
    );
  });
});

Deno.test("detect: background and colour unmixing", async (t) => {
  await t.step("the background fit recovers a clamped gradient to within 1.5 levels", () => {
    const sc: Scene = {
      background: { from: [245, 200, 210], to: [200, 240, 215], angle: 2.4 },
      objects: [],
    };
    const r = render(sc);
    const bg = estimateBackground(r.rgb);
    let worst = 0;
    for (let i = 0; i < bg.length; i++) worst = Math.max(worst, Math.abs(bg[i] - r.rgb[i]));
    assert.ok(worst <= 1.5, `worst error ${worst}`);
  });
  await t.step("the fit ignores objects on the background", () => {
    const empty = render(scene()).rgb;
    const withObjects =
      render(scene(obj("circle", "blue", 20, 20, 12), obj("star", "red", 45, 40, 12))).rgb;
    const a = estimateBackground(empty), b = estimateBackground(withObjects);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst <= 2, `worst difference ${worst}`);
  });
  await t.step("a known blend unmixes to its colour and coverage", () => {
    const bg = [226, 230, 221];
    for (const [k, colour] of COLOURS.entries()) {
      for (const a of [0.3, 0.5, 0.8, 1]) {
        const rgb = new Uint8Array(64 * 64 * 3);
        const back = new Float32Array(64 * 64 * 3);
        for (let i = 0; i < 64 * 64; i++) {
          for (let c = 0; c < 3; c++) {
            back[i * 3 + c] = bg[c];
            rgb[i * 3 + c] = Math.round(bg[c] * (1 - a) + COLOUR_RGB[colour][c] * a);
          }
        }
        const u = unmix(rgb, back);
        assert.equal(u.colour[0], k, `${colour} at α = ${a}`);
        assert.ok(Math.abs(u.alpha[0] - a) < 0.02, `${colour}: α ${u.alpha[0]} vs ${a}`);
      }
    }
  });
});
