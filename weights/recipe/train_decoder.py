"""Step 2b of the recipe: trains the shipped decoder (SharpDecoder) on the frozen encoder's
latents. The loss weights object pixels (saturated colours) 5x, since small shapes are a few
percent of the image and a plain loss lets them blur into discs. With --edge E, pixels on an
object's outline (its 3x3 dilation minus its erosion) weigh E more again: the points of stars and
the arms of crosses are outline, and without it they round off into circles and diamonds.
Resumable: rerunning with a larger --steps continues from runs/decoder.pt on a fresh cosine.
Usage: /usr/bin/python3 weights/recipe/train_decoder.py [--steps 2500] [--until N] [--batch 24] [--edge 0]"""
import argparse
import math

import torch
import torch.nn.functional as F

from common import (Log, add_until, load_checkpoint, load_dataset, save_checkpoint, seed_all,
                    stage_end, to_float)
from models import Encoder, SharpDecoder

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=2500)
add_until(p)
p.add_argument("--batch", type=int, default=24)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--edge", type=float, default=0.0, help="extra weight on object outlines")
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
end = stage_end(args)
for step in range(start, end):
    lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
    for group in opt.param_groups:
        group["lr"] = lr
    idx = torch.randint(0, images.shape[0], (args.batch,), generator=g)
    x = to_float(images[idx])
    with torch.no_grad():
        z = enc(x)
        z = z + 0.05 * z.std() * torch.randn_like(z)
        sat = x.max(1, keepdim=True).values - x.min(1, keepdim=True).values
        fg = (sat > 0.4).float()
        outline = F.max_pool2d(fg, 3, 1, 1) + F.max_pool2d(-fg, 3, 1, 1)   # dilation - erosion
        w = 1 + 4 * fg + args.edge * outline
    rec = dec(z)
    loss = (w * ((rec - x) ** 2 + 0.5 * (rec - x).abs())).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 25 == 0 or step == end - 1:
        log(step=step, loss=round(loss.item(), 5), lr=round(lr, 6))
    if (step + 1) % 100 == 0 or step == end - 1:
        save_checkpoint("decoder", dict(dec=dec.state_dict(), opt=opt.state_dict(), step=step + 1,
                                        rng=torch.get_rng_state()))
log(done=True)
