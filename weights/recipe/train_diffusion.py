"""Step 3 of the recipe: encodes the dataset (and its mirror images: captions have no left/right
words) with the trained autoencoder, then trains the text encoder and the UNet jointly with
epsilon-prediction on SD's scaled-linear 1000-step schedule, 10% caption dropout for
classifier-free guidance, min-SNR-5 loss weighting and an EMA of the weights (exported).
Resumable: rerunning continues from runs/diffusion.pt. The cosine learning rate follows --steps;
--until N stops (with a checkpoint) at step N of that schedule, which run.sh needs to replay the
shipped model's stage history exactly.
Usage: /usr/bin/python3 weights/recipe/train_diffusion.py [--steps 6000] [--until N] [--batch 32]"""
import argparse
import copy
import math
import os

import torch
import torch.nn.functional as F

from common import (RUNS, Log, add_until, load_checkpoint, load_dataset, save_checkpoint,
                    scaled_linear_alphas_cumprod, seed_all, stage_end, to_float)
from models import Encoder, TextEncoder, UNet

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=6000)
add_until(p)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--warmup", type=int, default=200)
p.add_argument("--ema", type=float, default=0.999)
p.add_argument("--drop", type=float, default=0.1, help="caption dropout for CFG")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

UNET_CFG = dict(ch=(48, 96), heads=4, context_dim=64, temb=128, latent=4)
TEXT_CFG = dict(length=32, dim=64, heads=4, layers=2)

seed_all(args.seed)
info, images, tokens = load_dataset()
vocab = info["vocab"]
ae = load_checkpoint("ae")
assert ae is not None, "train the autoencoder first (train_ae.py)"
scale = ae["scale_factor"]

lat_path = os.path.join(RUNS, "latents.pt")
# Built whether or not the latents are cached: its initialisation draws from the RNG, and the
# draws after it (UNet init, batches) must not depend on whether latents.pt already existed.
enc = Encoder()
if os.path.exists(lat_path):
    latents = torch.load(lat_path)
else:
    enc.load_state_dict(ae["enc"])
    enc.eval()
    chunks = []
    with torch.no_grad():
        for flip in (False, True):
            for i in range(0, images.shape[0], 1000):
                x = to_float(images[i:i + 1000])
                if flip:
                    x = torch.flip(x, dims=[3])
                chunks.append((enc(x) * scale).half())
    latents = torch.cat(chunks)
    torch.save(latents, lat_path)
all_tokens = torch.cat([tokens, tokens]).long()
empty = torch.zeros(TEXT_CFG["length"], dtype=torch.long)
empty[0], empty[1] = vocab.index("<sot>"), vocab.index("<eot>")

unet, text = UNet(**UNET_CFG), TextEncoder(len(vocab), **TEXT_CFG)
params = list(unet.parameters()) + list(text.parameters())
opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
ema_unet, ema_text = copy.deepcopy(unet), copy.deepcopy(text)
ac = scaled_linear_alphas_cumprod()
start = 0
ck = load_checkpoint("diffusion")
if ck:
    unet.load_state_dict(ck["unet"]); text.load_state_dict(ck["text"])
    ema_unet.load_state_dict(ck["ema_unet"]); ema_text.load_state_dict(ck["ema_text"])
    opt.load_state_dict(ck["opt"]); start = ck["step"]; torch.set_rng_state(ck["rng"])
log = Log("diffusion")
if start == 0:
    log(params_unet=sum(p.numel() for p in unet.parameters()),
        params_text=sum(p.numel() for p in text.parameters()), latents=list(latents.shape), scale=scale)

end = stage_end(args)
for step in range(start, end):
    lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.55 + 0.45 * math.cos(math.pi * step / args.steps))
    for group in opt.param_groups:
        group["lr"] = lr
    idx = torch.randint(0, latents.shape[0], (args.batch,))
    x0 = latents[idx].float()
    ids = all_tokens[idx].clone()
    ids[torch.rand(args.batch) < args.drop] = empty
    t = torch.randint(0, 1000, (args.batch,))
    a = ac[t][:, None, None, None]
    eps = torch.randn_like(x0)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
    pred = unet(xt, t.float(), text(ids))
    snr = a / (1 - a)
    w = torch.clamp(snr, max=5.0) / snr            # min-SNR-5 weighting for epsilon-prediction
    loss = (w * (pred - eps) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    with torch.no_grad():
        d = min(args.ema, (1 + step) / (10 + step))
        for m, e in ((unet, ema_unet), (text, ema_text)):
            for pe, pm in zip(e.parameters(), m.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
    if step % 50 == 0 or step == end - 1:
        log(step=step, loss=round(loss.item(), 5), lr=round(lr, 6))
    if (step + 1) % 250 == 0 or step == end - 1:
        save_checkpoint("diffusion", dict(
            unet=unet.state_dict(), text=text.state_dict(), ema_unet=ema_unet.state_dict(),
            ema_text=ema_text.state_dict(), opt=opt.state_dict(), step=step + 1,
            rng=torch.get_rng_state(), unet_cfg=UNET_CFG, text_cfg=TEXT_CFG, vocab=vocab,
            scale_factor=scale))
log(done=True)
