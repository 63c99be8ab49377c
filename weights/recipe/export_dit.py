"""Step 3 of the DiT recipe: exports the EMA weights of the latest DiT checkpoint (runs/dit.pt, or
the committed resume/dit.pt on a fresh checkout) to ONNX (opset 17, plain MatMul/Softmax
attention) in weights/shapes-dit/, with config.json, and copies what the model shares with the
UNet model (text encoder, VAE decoder and encoder, tokenizer) from weights/shapes/ so the folder
is self-contained. Also copies the DiT training log beside the weights.
Usage: /usr/bin/python3 weights/recipe/export_dit.py [--out weights/shapes-dit] [--check]"""
import argparse
import json
import os
import shutil

import torch

from common import HERE, RUNS, load_checkpoint
from models_dit import DiT, dit_attention_layers

p = argparse.ArgumentParser()
p.add_argument("--out", default=os.path.join(HERE, "..", "shapes-dit"))
p.add_argument("--shift", type=float, default=1.0, help="flow-matching timestep shift for sampling")
args = p.parse_args()
SHAPES = os.path.join(HERE, "..", "shapes")
os.makedirs(args.out, exist_ok=True)

ck = load_checkpoint("dit")
if ck is None:
    resume = os.path.join(HERE, "resume", "dit.pt")
    assert os.path.exists(resume), "train first (train_dit.py)"
    ck = torch.load(resume)
cfg = ck["cfg"]
model = DiT(**cfg)
model.load_state_dict(ck["ema"])
model.eval()
L, D = cfg["text_len"], cfg["context_dim"]
batch = {0: "batch"}
path = os.path.join(args.out, "transformer.onnx")
with torch.no_grad():
    x, t, c = torch.randn(2, 4, 16, 16), torch.tensor([500.0, 500.0]), torch.randn(2, L, D)
    torch.onnx.export(model, (x, t, c), path + ".tmp", opset_version=17,
                      input_names=["sample", "timestep", "encoder_hidden_states"],
                      output_names=["out_sample"],
                      dynamic_axes={"sample": batch, "timestep": batch,
                                    "encoder_hidden_states": batch, "out_sample": batch},
                      do_constant_folding=True)
    os.replace(path + ".tmp", path)
    ref = model(x, t, c)

for f in ("text_encoder.onnx", "vae_decoder.onnx", "vae_encoder.onnx", "tokenizer.json"):
    shutil.copyfile(os.path.join(SHAPES, f), os.path.join(args.out, f))
shapes_cfg = json.load(open(os.path.join(SHAPES, "config.json")))
grid = cfg["size"] // cfg["patch"]
n_img = grid * grid
heads = cfg["heads"]
config = {
    "name": "attnkit-shapes-dit",
    "architecture": "mmdit",
    "image_size": 64,
    "latent_channels": cfg["latent"],
    "latent_size": cfg["size"],
    "scale_factor": ck["scale_factor"],
    "prediction": "flow",
    "schedule": {"kind": "flow_match", "train_steps": 1000, "shift": args.shift},
    "text": shapes_cfg["text"],
    "files": {"text_encoder": "text_encoder.onnx", "transformer": "transformer.onnx",
              "vae_decoder": "vae_decoder.onnx", "vae_encoder": "vae_encoder.onnx",
              "tokenizer": "tokenizer.json"},
    "transformer_inputs": {"sample": "sample", "timestep": "timestep",
                           "encoder_hidden_states": "encoder_hidden_states",
                           "output": "out_sample", "timestep_dtype": "float32"},
    "patch_size": cfg["patch"],
    "tokens": {"text": [0, L], "image": [L, L + n_img]},
    "attention_layers": [
        {"name": n, "kind": k, "resolution": grid, "heads": heads, "head_dim": cfg["dim"] // heads}
        for n, k in dit_attention_layers(cfg["joint_blocks"], cfg["single_blocks"])],
    "training": {"steps": ck["step"], "batch": ck["args"]["batch"],
                 "planned_steps": ck["args"]["steps"]},
}
json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=1)
log = os.path.join(RUNS, "dit.log.jsonl")
if os.path.exists(log):
    shutil.copyfile(log, os.path.join(args.out, "dit.log.jsonl"))
# A fixed input and torch's output, so the TypeScript side can check onnxruntime against torch.
r6 = lambda v: [round(float(a), 6) for a in v.reshape(-1).tolist()]
json.dump({"sample": r6(x), "timestep": t.tolist(),
           "encoder_hidden_states": r6(c), "out_sample": r6(ref)},
          open(os.path.join(args.out, "export_check.json"), "w"))
print(json.dumps({"exported": os.path.abspath(args.out), "step": ck["step"],
                  "sizes": {f: os.path.getsize(os.path.join(args.out, f))
                            for f in sorted(os.listdir(args.out))}}))
