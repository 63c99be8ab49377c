/**
 * Checks the detector against ground truth: a rendered scene's instance label map (render.ts)
 * tells which pixels belong to which object, so each detection is matched to an object by mask
 * IoU (greedily, best pair first, IoU ≥ ½), and the match says whether class and colour agree.
 * Used by the detector's tests and by bench/detector.ts.
 *
 * @module
 */
import type { Instance } from "./detect.ts";
import type { ShapeObject } from "./scene.ts";
import { CLASSES, type ShapeClass } from "./world.ts";

/** One detection matched to one ground-truth object. */
export interface DetectionMatch {
  /** Index of the object in the scene. */
  object: number;
  /** Index of the detection. */
  instance: number;
  /** Mask IoU of the pair. */
  iou: number;
  /** The detection's class is the object's. */
  clsOk: boolean;
  /** The detection's colour is the object's. */
  colourOk: boolean;
}

/** The detector's result on one scene, against its ground truth. */
export interface DetectionCheck {
  /** Objects in the scene. */
  objects: number;
  /** Detections in the image. */
  detections: number;
  /** Exactly as many detections as objects. */
  countOk: boolean;
  /** Detection–object pairs with mask IoU ≥ the threshold. */
  matches: DetectionMatch[];
  /** Class of each object and what the matched detection called it (null: unmatched). */
  pairs: { truth: ShapeClass; found: ShapeClass | null }[];
}

/** Matches detections to a scene's objects by mask IoU against the render's label map. */
export function checkDetections(
  objects: readonly ShapeObject[],
  labels: Uint8Array,
  instances: readonly Instance[],
  minIou = 0.5,
): DetectionCheck {
  const areas = new Array<number>(objects.length).fill(0);
  for (const l of labels) if (l > 0) areas[l - 1]++;
  const candidates: { object: number; instance: number; iou: number }[] = [];
  instances.forEach((inst, d) => {
    const inter = new Array<number>(objects.length).fill(0);
    for (let i = 0; i < labels.length; i++) {
      if (inst.mask[i] && labels[i] > 0) inter[labels[i] - 1]++;
    }
    inter.forEach((k, o) => {
      if (k > 0) candidates.push({ object: o, instance: d, iou: k / (areas[o] + inst.area - k) });
    });
  });
  candidates.sort((a, b) => b.iou - a.iou);
  const usedO = new Set<number>(), usedD = new Set<number>();
  const matches: DetectionMatch[] = [];
  for (const c of candidates) {
    if (c.iou < minIou || usedO.has(c.object) || usedD.has(c.instance)) continue;
    usedO.add(c.object);
    usedD.add(c.instance);
    const o = objects[c.object], inst = instances[c.instance];
    matches.push({ ...c, clsOk: inst.cls === o.cls, colourOk: inst.colour === o.colour });
  }
  const pairs = objects.map((o, k) => {
    const m = matches.find((x) => x.object === k);
    return { truth: o.cls, found: m ? instances[m.instance].cls : null };
  });
  return {
    objects: objects.length,
    detections: instances.length,
    countOk: objects.length === instances.length,
    matches,
    pairs,
  };
}

/** Accuracy figures over many scenes. */
export interface DetectorSummary {
  /** Scenes checked. */
  scenes: number;
  /** Objects in them. */
  objects: number;
  /** Fraction of scenes with exactly as many detections as objects. */
  countAccuracy: number;
  /** Fraction of objects matched by a detection (mask IoU ≥ ½). */
  recall: number;
  /** Fraction of detections matched to an object. */
  precision: number;
  /** Among matched objects: fraction with the right class. */
  classAccuracy: number;
  /** Among matched objects: fraction with the right colour. */
  colourAccuracy: number;
  /** Mean mask IoU of the matches. */
  meanIou: number;
  /** confusion[truth][found]: counts over objects; found "missed" when unmatched. */
  confusion: Record<ShapeClass, Record<ShapeClass | "missed", number>>;
}

/** Sums per-scene checks into accuracy figures. */
export function summarise(checks: readonly DetectionCheck[]): DetectorSummary {
  let objects = 0, detections = 0, countOk = 0, matched = 0, clsOk = 0, colourOk = 0, iou = 0;
  const confusion = Object.fromEntries(
    CLASSES.map((t) => [t, Object.fromEntries([...CLASSES, "missed"].map((f) => [f, 0]))]),
  ) as Record<ShapeClass, Record<ShapeClass | "missed", number>>;
  for (const c of checks) {
    objects += c.objects;
    detections += c.detections;
    if (c.countOk) countOk++;
    matched += c.matches.length;
    for (const m of c.matches) {
      if (m.clsOk) clsOk++;
      if (m.colourOk) colourOk++;
      iou += m.iou;
    }
    for (const p of c.pairs) confusion[p.truth][p.found ?? "missed"]++;
  }
  return {
    scenes: checks.length,
    objects,
    countAccuracy: countOk / Math.max(1, checks.length),
    recall: matched / Math.max(1, objects),
    precision: matched / Math.max(1, detections),
    classAccuracy: clsOk / Math.max(1, matched),
    colourAccuracy: colourOk / Math.max(1, matched),
    meanIou: iou / Math.max(1, matched),
    confusion,
  };
}
