/**
 * Seeded pseudo-random numbers: every random choice in attnkit (scenes, latents, K-means
 * initialisation, prompt sampling) goes through a generator made here, so a seed reproduces a run.
 *
 * Seeds a user hands in go through {@link seededRng}: a seed must be a safe integer
 * (|seed| ≤ 2^53 − 1; anything else is an {@link AttnkitError} naming the seed), and distinct
 * seeds give distinct streams. The mixing:
 * - 0 ≤ seed < 2^32: `mulberry32(seed)`, the generator attnkit has always used, so every figure
 *   and fixture made with such a seed is reproduced bit for bit;
 * - any other safe integer (negative, or ≥ 2^32): SplitMix64 (Steele, Lea & Flood 2014, the
 *   seeding generator of Java's SplittableRandom and of xoshiro) whose 64-bit state starts at the
 *   seed's two's-complement value. Its output function is a bijection of the state and the state
 *   steps by an odd constant, so distinct seeds start distinct 64-bit sequences; before this,
 *   `seed >>> 0` made 2^32 collide with 0 and 1e300 + i collide with 1e300.
 *
 * @module
 */
import { AttnkitError } from "./errors.ts";

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a small, fast 32-bit generator; good enough for sampling, not for cryptography.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const a = samplers.mulberry32(1), b = samplers.mulberry32(1);
 * const x = a();
 * assert.ok(x >= 0 && x < 1);
 * assert.equal(b(), x); // same seed, same stream
 * ```
 */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Checks a user's seed: a safe integer (what JSON, the CLI and `Number` can carry exactly), or an
 * {@link AttnkitError} naming `argument`.
 *
 * @example
 * ```ts
 * import { checkSeed } from "./random.ts";
 * checkSeed(42); // 42
 * ```
 */
export function checkSeed(seed: unknown, argument = "seed"): number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed)) {
    throw new AttnkitError(
      argument,
      `must be a safe integer (|seed| ≤ 2^53 − 1), got ${
        typeof seed === "number" || typeof seed === "bigint"
          ? String(seed)
          : JSON.stringify(seed) ?? String(seed)
      }`,
    );
  }
  return seed;
}

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

/**
 * SplitMix64 as uniform numbers in [0, 1) (53 bits each); the state starts at `seed` (mod 2^64).
 * Reference: Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014.
 *
 * @example
 * ```ts
 * import { splitmix64 } from "./random.ts";
 * const rng = splitmix64(2n ** 40n);
 * rng(); // a number in [0, 1)
 * ```
 */
export function splitmix64(seed: bigint): Rng {
  let state = BigInt.asUintN(64, seed);
  return () => {
    state = (state + GOLDEN_GAMMA) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    z ^= z >> 31n;
    return Number(z >> 11n) / 9007199254740992;
  };
}

/**
 * The generator for a user's seed (checked with {@link checkSeed}): `mulberry32` for
 * 0 ≤ seed < 2^32 (unchanged streams), SplitMix64 for every other safe integer; see the module
 * doc for why distinct seeds give distinct streams.
 *
 * @example
 * ```ts
 * import { seededRng } from "./random.ts";
 * const a = seededRng(2 ** 32)(), b = seededRng(0)(); // a !== b
 * ```
 */
export function seededRng(seed: number, argument = "seed"): Rng {
  checkSeed(seed, argument);
  return seed >= 0 && seed < 2 ** 32 ? mulberry32(seed) : splitmix64(BigInt(seed));
}

/** An integer in [lo, hi] (both inclusive). */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** A uniformly chosen element of a non-empty array. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

/** A shuffled copy (Fisher–Yates). */
export function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Standard normal samples (Box–Muller), `n` of them, as float32.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const z = samplers.gaussian(samplers.mulberry32(1), 10_000);
 * const mean = z.reduce((s, v) => s + v, 0) / z.length;
 * const variance = z.reduce((s, v) => s + v * v, 0) / z.length - mean * mean;
 * assert.ok(Math.abs(mean) < 0.05 && Math.abs(variance - 1) < 0.05);
 * ```
 */
export function gaussian(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rng(), 1e-12);
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}
