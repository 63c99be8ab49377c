"""Step 2 of the DiT recipe: trains the MMDiT-style transformer (models_dit.DiT) with rectified
flow on the latents and frozen text states written by encode_dit_data.py.

x_sigma = (1 - sigma) x0 + sigma eps, the target is the velocity v = eps - x0, sigma is drawn
logit-normal(0, 1) (Esser et al. 2024, SD3 section 3.1), the model's timestep is sigma * 1000; 10%
caption dropout to the empty caption for classifier-free guidance; an EMA of the weights (exported).

Resumable: rerunning continues from runs/dit.pt (weights, EMA, optimiser and the RNG state). On a
fresh checkout it continues from the committed compact checkpoint weights/recipe/resume/dit.pt
(optimiser moments in bfloat16, so a resumed run is close to, not bit-identical with, the
uninterrupted one). The cosine learning rate follows --steps; --until N stops at step N.
Usage: /usr/bin/python3 weights/recipe/train_dit.py [--steps 30000] [--until N] [--batch 32]"""
import argparse
import copy
import json
import math
import os

import numpy as np
import torch

from common import HERE, RUNS, Log, add_until, load_checkpoint, save_checkpoint, seed_all, stage_end
from models_dit import DiT

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=30000)
add_until(p)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=6e-4)
p.add_argument("--warmup", type=int, default=300)
p.add_argument("--ema", type=float, default=0.999)
p.add_argument("--drop", type=float, default=0.1, help="caption dropout for CFG")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--compact-every", type=int, default=1000,
               help="write the committed compact checkpoint (resume/dit.pt) every N steps")
args = p.parse_args()

DIT_CFG = dict(dim=128, heads=4, joint_blocks=4, single_blocks=2, mlp=4, latent=4, size=16,
               patch=2, context_dim=64, text_len=32, temb=128)
RESUME = os.environ.get("ATTNKIT_RESUME", os.path.join(HERE, "resume", "dit.pt"))

seed_all(args.seed)
droot = os.path.join(RUNS, "dit_data")
dinfo = json.load(open(os.path.join(droot, "info.json")))
N = dinfo["count"]
latents = torch.from_numpy(np.fromfile(os.path.join(droot, "latents.f16"), dtype=np.float16)
                           .reshape(N, 4, 16, 16))
cap_index = torch.from_numpy(np.fromfile(os.path.join(droot, "caption_index.i32"), dtype=np.int32)
                             .astype(np.int64))
text = torch.from_numpy(np.fromfile(os.path.join(droot, "text.f32"), dtype=np.float32)
                        .reshape(dinfo["captions"], *dinfo["text_shape"]))

model = DiT(**DIT_CFG)
ema = copy.deepcopy(model)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
start = 0
ck = load_checkpoint("dit")
if ck is None and os.path.exists(RESUME):
    ck = torch.load(RESUME)
    for st in ck["opt"]["state"].values():
        for k2, v2 in st.items():
            if torch.is_tensor(v2) and v2.dtype == torch.bfloat16:
                st[k2] = v2.float()
    print(f"resuming from the committed compact checkpoint at step {ck['step']}", flush=True)
if ck:
    model.load_state_dict(ck["model"]); ema.load_state_dict(ck["ema"])
    opt.load_state_dict(ck["opt"]); start = ck["step"]; torch.set_rng_state(ck["rng"])
log = Log("dit")
if start == 0:
    log(params=sum(p.numel() for p in model.parameters()), latents=list(latents.shape),
        captions=dinfo["captions"], data=dinfo["sha256_16"], cfg=DIT_CFG)


def state(step, compact=False):
    o = opt.state_dict()
    if compact:
        o = copy.deepcopy(o)
        for st in o["state"].values():
            for k2, v2 in st.items():
                if torch.is_tensor(v2) and v2.dtype == torch.float32 and v2.dim() > 0:
                    st[k2] = v2.to(torch.bfloat16)
    return dict(model=model.state_dict(), ema=ema.state_dict(), opt=o, step=step,
                rng=torch.get_rng_state(), cfg=DIT_CFG, scale_factor=dinfo["scale_factor"],
                args=vars(args))


end = stage_end(args)
for step in range(start, end):
    lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.55 + 0.45 * math.cos(math.pi * step / args.steps))
    for group in opt.param_groups:
        group["lr"] = lr
    idx = torch.randint(0, N, (args.batch,))
    x0 = latents[idx].float()
    rows = cap_index[idx].clone()
    rows[torch.rand(args.batch) < args.drop] = dinfo["empty_caption_row"]
    ctx = text[rows]
    sigma = torch.sigmoid(torch.randn(args.batch))        # logit-normal(0, 1)
    eps = torch.randn_like(x0)
    s = sigma[:, None, None, None]
    xt = (1 - s) * x0 + s * eps
    pred = model(xt, sigma * 1000, ctx)
    loss = ((pred - (eps - x0)) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        d = min(args.ema, (1 + step) / (10 + step))
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.mul_(d).add_(pm.detach(), alpha=1 - d)
    if step % 50 == 0 or step == end - 1:
        log(step=step, loss=round(loss.item(), 5), lr=round(lr, 7))
    if (step + 1) % 250 == 0 or step == end - 1:
        save_checkpoint("dit", state(step + 1))
    if (step + 1) % args.compact_every == 0 or step == end - 1:
        os.makedirs(os.path.dirname(RESUME), exist_ok=True)
        torch.save(state(step + 1, compact=True), RESUME + ".tmp")
        os.replace(RESUME + ".tmp", RESUME)
log(done=True)
