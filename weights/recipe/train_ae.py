"""Step 2 of the recipe: trains the autoencoder (64x64x3 <-> 16x16x4) on the shapes images,
then measures the latent scale factor (1 / std of the latents, like SD's 0.18215).
Usage: /usr/bin/python3 weights/recipe/train_ae.py [--steps 700] [--until N] [--batch 24]"""
import argparse
import math

import torch
import torch.nn.functional as F

from common import (Log, add_until, load_checkpoint, load_dataset, save_checkpoint, seed_all,
                    stage_end, to_float)
from models import Decoder, Encoder

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=700)
add_until(p)
p.add_argument("--batch", type=int, default=24)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

seed_all(args.seed)
info, images, _ = load_dataset()
enc, dec = Encoder(), Decoder()
opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=args.lr)
start = 0
ck = load_checkpoint("ae")
if ck:
    enc.load_state_dict(ck["enc"]); dec.load_state_dict(ck["dec"]); opt.load_state_dict(ck["opt"])
    start = ck["step"]
    torch.set_rng_state(ck["rng"])
log = Log("ae")
g = torch.Generator().manual_seed(args.seed)
end = stage_end(args)
for step in range(start, end):
    lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
    for group in opt.param_groups:
        group["lr"] = lr
    idx = torch.randint(0, images.shape[0], (args.batch,), generator=g)
    x = to_float(images[idx])
    z = enc(x)
    # noise on the latent keeps the decoder smooth around the points the UNet will produce
    zn = z + 0.05 * z.detach().std() * torch.randn_like(z)
    rec = dec(zn)
    loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + 1e-4 * (z ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 25 == 0 or step == end - 1:
        log(step=step, loss=round(loss.item(), 5), lr=round(lr, 6))
    if (step + 1) % 100 == 0 or step == end - 1:
        save_checkpoint("ae", dict(enc=enc.state_dict(), dec=dec.state_dict(), opt=opt.state_dict(),
                                   step=step + 1, rng=torch.get_rng_state()))

with torch.no_grad():
    zs = torch.cat([enc(to_float(images[i:i + 500])) for i in range(0, 4000, 500)])
    scale = 1.0 / zs.std().item()
    rec = dec(zs[:500])
    mse = F.mse_loss(rec, to_float(images[:500])).item()
log(done=True, scale_factor=scale, latent_mean=zs.mean().item(), recon_mse=mse)
ck = load_checkpoint("ae")
ck["scale_factor"] = scale
save_checkpoint("ae", ck)
