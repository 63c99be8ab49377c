"""Step 4 of the recipe: exports the EMA weights to ONNX (opset 17) in weights/shapes/, with
config.json and tokenizer.json. Attention stays plain MatMul/Softmax (see models.Attention).
Also copies the training logs beside them.
Usage: /usr/bin/python3 weights/recipe/export_onnx.py [--out weights/shapes]"""
import argparse
import json
import os
import shutil

import torch

from common import HERE, RUNS, load_checkpoint, scaled_linear_alphas_cumprod
from models import ATTENTION_LAYERS, Encoder, SharpDecoder, TextEncoder, UNet

p = argparse.ArgumentParser()
p.add_argument("--out", default=os.path.join(HERE, "..", "shapes"))
args = p.parse_args()
os.makedirs(args.out, exist_ok=True)

ae, ck, dk = load_checkpoint("ae"), load_checkpoint("diffusion"), load_checkpoint("decoder")
assert ae and ck and dk, "train first (train_ae.py, train_decoder.py, train_diffusion.py)"
unet, text = UNet(**ck["unet_cfg"]), TextEncoder(len(ck["vocab"]), **ck["text_cfg"])
unet.load_state_dict(ck["ema_unet"]); text.load_state_dict(ck["ema_text"])
enc, dec = Encoder(), SharpDecoder()
enc.load_state_dict(ae["enc"]); dec.load_state_dict(dk["dec"])
for m in (unet, text, enc, dec):
    m.eval()

L, D = ck["text_cfg"]["length"], ck["text_cfg"]["dim"]
batch = {0: "batch"}


def export(model, inputs, names, outputs, file, axes):
    torch.onnx.export(model, inputs, os.path.join(args.out, file), opset_version=17,
                      input_names=names, output_names=outputs, dynamic_axes=axes,
                      do_constant_folding=True)


with torch.no_grad():
    export(text, (torch.zeros(1, L, dtype=torch.int32),), ["input_ids"], ["last_hidden_state"],
           "text_encoder.onnx", {"input_ids": batch, "last_hidden_state": batch})
    export(unet, (torch.randn(2, 4, 16, 16), torch.tensor([999.0, 999.0]), torch.randn(2, L, D)),
           ["sample", "timestep", "encoder_hidden_states"], ["out_sample"], "unet.onnx",
           {"sample": batch, "timestep": batch, "encoder_hidden_states": batch, "out_sample": batch})
    export(dec, (torch.randn(1, 4, 16, 16),), ["latent_sample"], ["sample"], "vae_decoder.onnx",
           {"latent_sample": batch, "sample": batch})
    export(enc, (torch.randn(1, 3, 64, 64),), ["sample"], ["latent"], "vae_encoder.onnx",
           {"sample": batch, "latent": batch})

heads = ck["unet_cfg"]["heads"]
c1, c2 = ck["unet_cfg"]["ch"]
config = {
    "name": "attnkit-shapes",
    "image_size": 64,
    "latent_channels": 4,
    "latent_size": 16,
    "scale_factor": ck["scale_factor"],
    "prediction": "epsilon",
    "schedule": {"kind": "scaled_linear", "train_steps": 1000, "beta_start": 0.00085,
                 "beta_end": 0.012, "timestep_spacing": "leading", "steps_offset": 1},
    "text": {"max_tokens": L, "hidden": D},
    "files": {"text_encoder": "text_encoder.onnx", "unet": "unet.onnx",
              "vae_decoder": "vae_decoder.onnx", "vae_encoder": "vae_encoder.onnx",
              "tokenizer": "tokenizer.json"},
    "unet_inputs": {"sample": "sample", "timestep": "timestep",
                    "encoder_hidden_states": "encoder_hidden_states", "output": "out_sample",
                    "timestep_dtype": "float32"},
    "attention_layers": [
        {"name": n, "kind": k, "resolution": r, "heads": heads,
         "head_dim": (c1 if r == 16 else c2) // heads} for n, k, r in ATTENTION_LAYERS],
    "training": {"steps": ck["step"]},
}
json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=1)
vocab = ck["vocab"]
json.dump({"kind": "word", "vocab": vocab, "max_length": L, "pad": vocab.index("<pad>"),
           "sot": vocab.index("<sot>"), "eot": vocab.index("<eot>"),
           "lowercase": True, "split_punctuation": [","]},
          open(os.path.join(args.out, "tokenizer.json"), "w"), indent=1)
# The training logs travel with the weights: the model card quotes them, and replay_check.py
# compares a rerun against them.
for name in ("ae", "decoder", "diffusion"):
    shutil.copyfile(os.path.join(RUNS, f"{name}.log.jsonl"), os.path.join(args.out, f"{name}.log.jsonl"))
ac = scaled_linear_alphas_cumprod()
print(json.dumps({"exported": args.out, "step": ck["step"],
                  "sizes": {f: os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out)}}))
