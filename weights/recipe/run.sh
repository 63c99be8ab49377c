#!/usr/bin/env bash
# The whole recipe for weights/shapes/, from a clean checkout:
#   apt-get install -y python3-torch python3-onnx libopenblas0-pthread   (CPU PyTorch 1.13)
#   bash weights/recipe/run.sh
# Steps: dataset (TypeScript renderer) -> autoencoder -> sharper decoder on the frozen encoder
# -> text encoder + UNet -> ONNX export.
# Each training step is resumable: rerunning continues from weights/recipe/runs/*.pt.
# Seeds are fixed (dataset seed 1, torch seed 0). Measured on the 2-core build machine, shared
# with other work: dataset ~1 min, autoencoder ~9 min, diffusion see MODEL_CARD.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DENO=${DENO:-./node_modules/.bin/deno}
[ -x "$DENO" ] || DENO="npx -y deno@2.9.6"
PY=${PY:-/usr/bin/python3}
[ -f weights/recipe/data/info.json ] || $DENO run -A weights/recipe/export_dataset.ts --count 60000 --seed 1
(cd weights/recipe && $PY train_ae.py --steps 2000 --batch 24)
(cd weights/recipe && $PY train_decoder.py --steps 1500 --batch 24)
(cd weights/recipe && $PY train_diffusion.py --steps "${STEPS:-6700}" --batch 32)
(cd weights/recipe && $PY export_onnx.py)
