"""Checks that the recipe replays the shipped training runs: each stage is rerun from scratch for
its first --until steps (default 101: steps 0..100) in a scratch directory, and every logged loss
and learning rate is compared, exactly, with the shipped logs in weights/shapes/*.log.jsonl. A
full rerun of run.sh takes hours on a CPU; this takes a few minutes and fails on any drift in
data, seeds, initialisation or batch order.

The decoder and diffusion stages start from the trained autoencoder, so they are checked only
where weights/recipe/runs/ae.pt exists (the cached latents, runs/latents.pt, are reused when
present; otherwise the diffusion stage encodes the dataset first, ~6 min). The DiT stage
(train_dit.py, compared with weights/shapes-dit/dit.log.jsonl) needs runs/dit_data/ from
encode_dit_data.py (run_dit.sh makes it); it never reads the committed resume checkpoint.
Usage: /usr/bin/python3 weights/recipe/replay_check.py [--until 100] [--only dit]"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.join(HERE, "..", "shapes")
SHIPPED_DIT = os.path.join(HERE, "..", "shapes-dit")
RUNS = os.path.join(HERE, "runs")

# Each stage's first run, as run.sh starts it.
STAGES = [
    ("ae", ["train_ae.py", "--steps", "2000", "--batch", "24"], []),
    ("decoder", ["train_decoder.py", "--steps", "1500", "--batch", "24"], ["ae.pt"]),
    ("diffusion", ["train_diffusion.py", "--steps", "6500", "--batch", "32"],
     ["ae.pt", "latents.pt?"]),
    ("dit", ["train_dit.py", "--steps", "30000", "--batch", "32"], ["dit_data"]),
]


def logged(path):
    """Step -> (loss, lr) of a training log."""
    out = {}
    for line in open(path):
        d = json.loads(line)
        if "step" in d:
            out.setdefault(d["step"], (d["loss"], d["lr"]))   # the first run's entry
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--until", type=int, default=101)
    p.add_argument("--only", default=None, help="check one stage (ae, decoder, diffusion, dit)")
    args = p.parse_args()
    failures = 0
    for name, cmd, needs in STAGES:
        if args.only and name != args.only:
            continue
        missing = [n for n in needs if not n.endswith("?") and not os.path.exists(os.path.join(RUNS, n))]
        if missing:
            print(f"{name}: skipped (needs runs/{', runs/'.join(missing)})")
            continue
        with tempfile.TemporaryDirectory() as scratch:
            for n in needs:
                src = os.path.join(RUNS, n.rstrip("?"))
                if os.path.exists(src):
                    os.symlink(src, os.path.join(scratch, n.rstrip("?")))
            env = dict(os.environ, ATTNKIT_RUNS=scratch,
                       ATTNKIT_RESUME=os.path.join(scratch, "resume.pt"))
            subprocess.run([sys.executable, *cmd, "--until", str(args.until)], cwd=HERE, env=env,
                           check=True, stdout=subprocess.DEVNULL)
            mine = logged(os.path.join(scratch, f"{name}.log.jsonl"))
        ref = logged(os.path.join(SHIPPED_DIT if name == "dit" else SHIPPED, f"{name}.log.jsonl"))
        common = sorted(set(mine) & set(ref))
        bad = [s for s in common if mine[s] != ref[s]]
        failures += bool(bad) or not common
        verdict = "identical" if common and not bad else f"DIFFERENT at steps {bad[:5]}"
        print(f"{name}: {len(common)} logged steps (0..{max(common, default=0)}) {verdict}")
    sys.exit(1 if failures else 0)


main()
