"""Step 2b of the recipe: trains the shipped decoder (SharpDecoder) on the frozen encoder's
latents. The loss weights object pixels (saturated colours) 5x, since small shapes are a few
percent of the image and a plain loss lets them blur into discs.
Usage: /usr/bin/python3 weights/recipe/train_decoder.py [--steps 2500] [--batch 24]"""
import argparse
import math

import torch

from common import Log, load_checkpoint, load_dataset, save_checkpoint, seed_all, to_float
from models import Encoder, SharpDecoder

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=2500)
p.add_argument("--batch", type=int, default=24)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

seed_all(args.seed)
info, images, _ = load_dataset()
ae = load_checkpoint("ae")
enc = Encoder()
enc.load_state_dict(ae["enc"])
enc.eval()
dec = SharpDecoder()
opt = torch.optim.Adam(dec.parameters(), lr=args.lr)
start = 0
ck = load_checkpoint("decoder")
if ck:
    dec.load_state_dict(ck["dec"]); opt.load_state_dict(ck["opt"]); start = ck["step"]
    torch.set_rng_state(ck["rng"])
log = Log("decoder")
g = torch.Generator().manual_seed(args.seed + start)
for step in range(start, args.steps):
    lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
    for group in opt.param_groups:
        group["lr"] = lr
    idx = torch.randint(0, images.shape[0], (args.batch,), generator=g)
    x = to_float(images[idx])
    with torch.no_grad():
        z = enc(x)
        z = z + 0.05 * z.std() * torch.randn_like(z)
        sat = x.max(1, keepdim=True).values - x.min(1, keepdim=True).values
        w = 1 + 4 * (sat > 0.4).float()
    rec = dec(z)
    loss = (w * ((rec - x) ** 2 + 0.5 * (rec - x).abs())).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 25 == 0 or step == args.steps - 1:
        log(step=step, loss=round(loss.item(), 5), lr=round(lr, 6))
    if (step + 1) % 100 == 0 or step == args.steps - 1:
        save_checkpoint("decoder", dict(dec=dec.state_dict(), opt=opt.state_dict(), step=step + 1,
                                        rng=torch.get_rng_state()))
log(done=True)
