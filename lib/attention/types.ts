/**
 * Plain-data types for attention taps (the Q and K a hook captured from one attention layer) and
 * the accumulated attention maps of ISAC's Eq. 1-2, plus their gradients.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";

/** The queries and keys one attention layer saw at one denoising step. */
export interface AttentionTap {
  /** Self-attention (keys are the image tokens) or cross-attention (keys are the text tokens). */
  readonly kind: "self" | "cross";
  /** Queries `[heads, Nq, d]`, `Nq = h * w` image tokens in row-major (y, x) order. */
  readonly q: Tensor;
  /** Keys `[heads, Nk, d]`; self: `Nk = Nq`, cross: `Nk = L` text tokens. */
  readonly k: Tensor;
  /** `[h, w]`: the spatial size of this layer's image tokens. */
  readonly size: readonly [number, number];
}

/** Head- and layer-averaged attention maps at the largest layer size (ISAC Eq. 1-2). */
export interface AttentionMaps {
  /** Self-attention `[HW, HW]`; every row sums to 1. */
  readonly self: Tensor;
  /** Cross-attention `[HW, L]`; every row sums to 1. */
  readonly cross: Tensor;
  /** `[H, W]`: the spatial size the maps live at. */
  readonly size: readonly [number, number];
}

/** Cotangents of a scalar with respect to the accumulated maps; an absent field means zero. */
export interface AttentionMapsGrad {
  /** d(scalar)/d(maps.self), `[HW, HW]`. */
  self?: Tensor;
  /** d(scalar)/d(maps.cross), `[HW, L]`. */
  cross?: Tensor;
}

/** Cotangents of a scalar with respect to one tap's queries and keys. */
export interface TapGrad {
  /** Same shape as the tap's `q`. */
  dq: Tensor;
  /** Same shape as the tap's `k`. */
  dk: Tensor;
}
