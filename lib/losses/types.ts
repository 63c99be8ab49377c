/**
 * The shape every attention-map loss in attnkit has: a function of the accumulated maps that
 * returns the scalar and its exact gradient with respect to the maps. The types are
 * `latentGrad`'s (lib/control/latent_grad.ts), so every loss here plugs into latent optimisation
 * as ISAC's does, and losses can be summed.
 *
 * @module
 */
import type { AttentionMaps } from "../attention/types.ts";
import type { MapsLossResult } from "../control/latent_grad.ts";

export type { MapsLoss, MapsLossResult } from "../control/latent_grad.ts";

/** A loss of one item's maps (the batch item index is optional for these losses). */
export type MapsLossFn<R extends MapsLossResult = MapsLossResult> = (
  maps: AttentionMaps,
  item?: number,
) => R;

/** A target: one token column, or several columns whose maps are averaged (a multi-token word). */
export type TokenColumns = number | readonly number[];
