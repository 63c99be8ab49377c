"""Shared pieces of the recipe: the dataset written by export_dataset.ts, seeding, the SD
scaled-linear noise schedule, a resumable checkpoint and a loss/time log."""
import json
import os
import random
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("ATTNKIT_DATA", os.path.join(HERE, "data"))
RUNS = os.environ.get("ATTNKIT_RUNS", os.path.join(HERE, "runs"))

# One thread: with other busy processes on a 2-core machine, OpenMP's spinning threads made a
# step ~7x slower at 2 threads than at 1 (measured: 4.1 s vs 0.69 s per UNet step).
torch.set_num_threads(int(os.environ.get("ATTNKIT_THREADS", "1")))


def add_until(parser):
    """--until N: stop (with a checkpoint) at step N of the --steps schedule; run.sh uses it to
    replay a run that was re-planned partway."""
    parser.add_argument("--until", type=int, default=None, help="stop at this step (default: --steps)")


def stage_end(args):
    """The step a run stops at: --steps, or --until if earlier."""
    return args.steps if args.until is None else min(args.until, args.steps)


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_dataset():
    info = json.load(open(os.path.join(DATA, "info.json")))
    n, s, L = info["count"], info["size"], info["tokens"]
    images = np.fromfile(os.path.join(DATA, "images.u8"), dtype=np.uint8).reshape(n, s, s, 3)
    tokens = np.fromfile(os.path.join(DATA, "tokens.i32"), dtype=np.int32).reshape(n, L)
    return info, torch.from_numpy(images), torch.from_numpy(tokens)


def to_float(images_u8):
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return images_u8.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def scaled_linear_alphas_cumprod(T=1000, beta_start=0.00085, beta_end=0.012):
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


class Log:
    """Appends one JSON line per record to runs/<name>.log.jsonl and prints it."""

    def __init__(self, name):
        os.makedirs(RUNS, exist_ok=True)
        self.path = os.path.join(RUNS, f"{name}.log.jsonl")
        self.t0 = time.time()

    def __call__(self, **rec):
        rec["elapsed_s"] = round(time.time() - self.t0, 1)
        line = json.dumps(rec)
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def save_checkpoint(name, state):
    os.makedirs(RUNS, exist_ok=True)
    tmp = os.path.join(RUNS, f"{name}.pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, os.path.join(RUNS, f"{name}.pt"))


def load_checkpoint(name):
    path = os.path.join(RUNS, f"{name}.pt")
    return torch.load(path) if os.path.exists(path) else None
