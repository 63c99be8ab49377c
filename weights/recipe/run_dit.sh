#!/usr/bin/env bash
# The DiT recipe for weights/shapes-dit/ (issue 15), from a clean checkout:
#   dataset (TypeScript renderer, shared with run.sh) -> latents and frozen text states through the
#   SHIPPED weights/shapes/ encoder and text encoder (pyenv python3 + onnxruntime) -> DiT training
#   (Debian /usr/bin/python3, torch 1.13 CPU, ONE thread, nice 10) -> export (export_dit.sh).
# Resumable: rerunning continues from weights/recipe/runs/dit.pt, or on a fresh machine from the
# committed compact checkpoint weights/recipe/resume/dit.pt.
# The shipped run was launched in the background exactly as the last line below does:
#   nohup bash weights/recipe/run_dit.sh > weights/recipe/runs_dit.out 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
DENO=${DENO:-deno}
PY=${PY:-/usr/bin/python3}
PYORT=${PYORT:-python3}
export OMP_NUM_THREADS=1 ATTNKIT_THREADS=1
[ -f weights/recipe/data/info.json ] || $DENO run -A weights/recipe/export_dataset.ts --count 60000 --seed 1
[ -f weights/recipe/runs/dit_data/info.json ] || $PYORT weights/recipe/encode_dit_data.py
# One planned 30,000-step cosine; sessions stop it wherever they end and rerun this to continue.
(cd weights/recipe && exec nice -n 10 $PY train_dit.py --steps ${DIT_STEPS:-30000} --batch 32 ${DIT_UNTIL:+--until $DIT_UNTIL})
