"""Writes the committed compact DiT checkpoint, resume/dit.pt, from the latest runs/dit.pt: the
weights, EMA, RNG state and step in float32, the AdamW moments in bfloat16 (a third of the size
of the full optimiser state). train_dit.py resumes from it on a fresh checkout (runs/dit.pt
missing); the resumed run is close to, not bit-identical with, the uninterrupted one.
Usage: /usr/bin/python3 weights/recipe/compact_dit.py"""
import json
import os

import torch

from common import HERE, load_checkpoint

ck = load_checkpoint("dit")
assert ck is not None, "no runs/dit.pt to compact (train_dit.py writes it every 250 steps)"
for st in ck["opt"]["state"].values():
    for k, v in st.items():
        if torch.is_tensor(v) and v.dtype == torch.float32 and v.dim() > 0:
            st[k] = v.to(torch.bfloat16)
out = os.environ.get("ATTNKIT_RESUME", os.path.join(HERE, "resume", "dit.pt"))
os.makedirs(os.path.dirname(out), exist_ok=True)
torch.save(ck, out + ".tmp")
os.replace(out + ".tmp", out)
print(json.dumps({"compact": out, "step": ck["step"], "bytes": os.path.getsize(out)}))
