/**
 * The two plain (untapped) model calls every pipeline shares: a text encoder from token ids to
 * hidden states, and a VAE decoder from latents to images in [0, 1].
 *
 * @module
 */
import { ort, type Session } from "../onnx/ort.ts";
import { type Tensor, tensor } from "../tensor.ts";

/** Hidden states `[B, L, D]` from flat token ids (`B × L`), fed as int32 or int64. */
export async function runTextEncoder(
  session: Session,
  ids: ArrayLike<number>,
  batch: number,
  length: number,
  idType: "int32" | "int64" = "int32",
): Promise<Tensor> {
  const feed = idType === "int64"
    ? new ort.Tensor("int64", BigInt64Array.from(Array.from(ids, BigInt)), [batch, length])
    : new ort.Tensor("int32", Int32Array.from(ids), [batch, length]);
  const res = await session.run({ [session.inputNames[0]]: feed });
  const out = res[session.outputNames[0]];
  return tensor(out.dims as number[], (out.data as Float32Array).slice());
}

/** Images `[B, 3, H, W]` in [0, 1] from latents, for decoders whose output is in [−1, 1]. */
export async function runDecoder(session: Session, latents: Tensor): Promise<Tensor> {
  const res = await session.run({
    [session.inputNames[0]]: new ort.Tensor("float32", latents.data, [...latents.shape]),
  });
  const out = res[session.outputNames[0]];
  const data = (out.data as Float32Array).map((v) => Math.min(1, Math.max(0, (v + 1) / 2)));
  return tensor(out.dims as number[], data);
}
