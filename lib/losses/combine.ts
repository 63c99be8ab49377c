/**
 * Sums of map losses: every loss returns its gradient with respect to the same maps, so a
 * weighted sum of losses is a loss whose gradient is the weighted sum of the gradients. This is
 * how MIFO's box loss runs together with ISAC's objective in one latent optimisation.
 *
 * @module
 */
import { check } from "../errors.ts";
import { tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";
import type { AttentionMaps } from "../attention/types.ts";
import type { MapsLoss, MapsLossResult } from "./types.ts";

/** A loss with a weight. */
export interface WeightedLoss {
  /** The loss. */
  loss: MapsLoss;
  /** Its multiplier (default 1). */
  weight?: number;
  /** Its name in the result's `terms` (default `term<i>`). */
  name?: string;
}

/** The result of a sum, with each term's unweighted value. */
export interface SumResult extends MapsLossResult {
  /** `parts[i]`: the value of term i before weighting. */
  parts: number[];
  /** The same values by term name. */
  terms: Record<string, number>;
}

function addInto(acc: Float32Array | undefined, t: Tensor | undefined, w: number, what: string) {
  if (!t) return acc;
  if (!acc) {
    const out = new Float32Array(t.data.length);
    for (let i = 0; i < out.length; i++) out[i] = w * t.data[i];
    return out;
  }
  check(acc.length === t.data.length, what, "terms returned gradients of different shapes");
  for (let i = 0; i < acc.length; i++) acc[i] += w * t.data[i];
  return acc;
}

/** `Σ weight_i · loss_i(maps)`, with the matching gradient. */
export function sumLosses(
  ...terms: readonly (MapsLoss | WeightedLoss)[]
): (maps: AttentionMaps, item?: number) => SumResult {
  check(terms.length > 0, "terms", "expected at least one loss");
  const parts = terms.map((t, i) => {
    const p: WeightedLoss = typeof t === "function" ? { loss: t } : t;
    const weight = p.weight ?? 1;
    check(typeof p.loss === "function", `terms[${i}]`, "expected a loss function");
    check(Number.isFinite(weight), `terms[${i}].weight`, `expected a finite weight, got ${weight}`);
    return { loss: p.loss, weight, name: p.name ?? `term${i}` };
  });
  return (maps, item = 0) => {
    let value = 0;
    let self: Float32Array | undefined;
    let cross: Float32Array | undefined;
    const values: number[] = [];
    for (const { loss, weight } of parts) {
      const r = loss(maps, item);
      values.push(r.value);
      if (weight === 0) continue;
      value += weight * r.value;
      self = addInto(self, r.grad.self, weight, "grad.self");
      cross = addInto(cross, r.grad.cross, weight, "grad.cross");
    }
    return {
      value,
      parts: values,
      terms: Object.fromEntries(values.map((v, i) => [parts[i].name, v])),
      grad: {
        ...(self ? { self: tensor(maps.self.shape, self) } : {}),
        ...(cross ? { cross: tensor(maps.cross.shape, cross) } : {}),
      },
    };
  };
}
