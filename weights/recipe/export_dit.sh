#!/usr/bin/env bash
# Exports the LATEST DiT checkpoint to weights/shapes-dit/ and regenerates its model card, while
# training may continue (checkpoints are replaced atomically, so reading one mid-run is safe):
#   bash weights/recipe/export_dit.sh            # full card: 120 single-object + 80 multi images
#   SEEDS=1 bash weights/recipe/export_dit.sh    # half the images
# Writes weights/recipe/resume/dit.pt (compact_dit.py: the committed checkpoint to resume from),
# weights/shapes-dit/{transformer.onnx, config.json, copies of the shared files,
# dit.log.jsonl, samples.png, MODEL_CARD.md} and bench/results/dit/model_quality.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-/usr/bin/python3}
DENO=${DENO:-deno}
(cd weights/recipe && OMP_NUM_THREADS=1 $PY export_dit.py && $PY compact_dit.py)
$DENO run -A bench/model_quality.ts --weights weights/shapes-dit --ep node --seeds "${SEEDS:-2}" \
  --out bench/results/dit --samples weights/shapes-dit/samples.png
$DENO run -A weights/recipe/dit_card.ts
