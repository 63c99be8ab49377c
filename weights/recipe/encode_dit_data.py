"""Step 1 of the DiT recipe: encodes the shapes dataset (and its mirror images: captions have no
left/right words) with the SHIPPED autoencoder encoder, weights/shapes/vae_encoder.onnx (times its
scale factor), and every distinct caption with the SHIPPED, frozen text encoder,
weights/shapes/text_encoder.onnx. The DiT then trains on exactly the latent space and text states
the exported model is used with, and needs neither runs/ae.pt nor the UNet's checkpoint.

Writes runs/dit_data/{latents.f16 [2N, 4, 16, 16], caption_index.i32 [2N], text.f32 [U, 32, 64],
info.json}. Runs under any python with numpy + onnxruntime (the pyenv python3, not Debian's).
Usage: OMP_NUM_THREADS=1 python3 weights/recipe/encode_dit_data.py"""
import hashlib
import json
import os

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("ATTNKIT_DATA", os.path.join(HERE, "data"))
RUNS = os.environ.get("ATTNKIT_RUNS", os.path.join(HERE, "runs"))
SHAPES = os.path.join(HERE, "..", "shapes")


def session(name):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(os.path.join(SHAPES, name), opts, providers=["CPUExecutionProvider"])


def main():
    info = json.load(open(os.path.join(DATA, "info.json")))
    cfg = json.load(open(os.path.join(SHAPES, "config.json")))
    n, s, L = info["count"], info["size"], info["tokens"]
    images = np.fromfile(os.path.join(DATA, "images.u8"), dtype=np.uint8).reshape(n, s, s, 3)
    tokens = np.fromfile(os.path.join(DATA, "tokens.i32"), dtype=np.int32).reshape(n, L)
    out = os.path.join(RUNS, "dit_data")
    os.makedirs(out, exist_ok=True)

    enc = session("vae_encoder.onnx")
    scale = cfg["scale_factor"]
    lat = np.empty((2 * n, 4, 16, 16), dtype=np.float16)
    for flip in (0, 1):
        for i in range(0, n, 500):
            x = images[i:i + 500].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
            if flip:
                x = x[:, :, :, ::-1].copy()
            lat[flip * n + i: flip * n + i + len(x)] = enc.run(None, {"sample": x})[0] * scale
    lat.tofile(os.path.join(out, "latents.f16"))

    uniq, inverse = np.unique(tokens, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int32)
    te = session("text_encoder.onnx")
    vocab = info["vocab"]
    empty = np.zeros((1, L), dtype=np.int32)
    empty[0, 0], empty[0, 1] = vocab.index("<sot>"), vocab.index("<eot>")
    # Row 0 is the empty caption (classifier-free guidance's unconditional branch).
    ids = np.concatenate([empty, uniq.astype(np.int32)])
    text = np.concatenate([te.run(None, {"input_ids": ids[i:i + 256]})[0]
                           for i in range(0, len(ids), 256)]).astype(np.float32)
    text.tofile(os.path.join(out, "text.f32"))
    np.concatenate([inverse, inverse]).astype(np.int32).__add__(1).tofile(
        os.path.join(out, "caption_index.i32"))
    digest = {f: hashlib.sha256(open(os.path.join(out, f), "rb").read()).hexdigest()[:16]
              for f in ("latents.f16", "text.f32", "caption_index.i32")}
    meta = {"count": 2 * n, "captions": int(len(ids)), "text_shape": list(text.shape[1:]),
            "scale_factor": scale, "empty_caption_row": 0, "sha256_16": digest}
    json.dump(meta, open(os.path.join(out, "info.json"), "w"), indent=1)
    print(json.dumps(meta))


main()
