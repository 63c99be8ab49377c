#!/usr/bin/env bash
# The speed benchmarks on a machine with a real GPU: the adapter, the WGSL kernels against the
# CPU paths, the embedded model's per-step breakdown and whole runs on onnxruntime's WebGPU EP
# (in-graph maps included), the SD-scale tap (onnxruntime WebGPU MatMul→Softmax→ReduceMean against
# attnkit's WGSL map path) and the SD-scale step (maps + ISAC loss + VJP against the forward's
# attention). Every figure is written to bench/results/*_gpu.md; the ratio lines are printed at
# the end.
#
#   bench/gpu.sh              # on a GPU machine
#   bench/gpu.sh --dry-run    # anywhere: the same steps at toy sizes, a software adapter allowed
#
# Needs deno on PATH; npm packages are fetched by deno (onnxruntime-web, onnxruntime-node).
set -euo pipefail
cd "$(dirname "$0")/.."

dry=0
if [[ "${1:-}" == "--dry-run" ]]; then dry=1; fi
label=gpu
if [[ $dry == 1 ]]; then label=gpu-dryrun; fi

echo "== adapter"
if [[ $dry == 1 ]]; then
  deno run -A bench/gpu_adapter.ts --allow-fallback
else
  deno run -A bench/gpu_adapter.ts
fi

echo "== WGSL kernels against the CPU paths"
if [[ $dry == 1 ]]; then
  # --quick writes over kernels.md; keep the committed CPU figures.
  cp bench/results/kernels.md "/tmp/attnkit-kernels.md.$$"
  cp bench/results/kernels.json "/tmp/attnkit-kernels.json.$$"
  ATTNKIT_BACKEND=gpu deno run -A bench/kernels.ts --quick | tee "/tmp/attnkit-kernels-$label.md"
  mv "/tmp/attnkit-kernels.md.$$" bench/results/kernels.md
  mv "/tmp/attnkit-kernels.json.$$" bench/results/kernels.json
else
  deno run -A bench/kernels.ts | tee "/tmp/attnkit-kernels-$label.md"
  cp bench/results/kernels.md "bench/results/kernels_$label.md"
fi

echo "== embedded model on onnxruntime's WebGPU EP"
if [[ $dry == 1 ]]; then
  deno run -A bench/speed.ts --label "$label" --ep webgpu --repeats 1 --steps 2 --no-sd
else
  deno run -A bench/speed.ts --label "$label" --ep webgpu
fi

if [[ $dry == 0 ]]; then
  echo "== SD 1.5-scale step on the WebGPU EP"
  deno run -A bench/speed_sd.ts --label "$label" --ep webgpu --vjp
fi

echo "== ratios"
grep -h -E "÷|CPU/GPU|adapter" bench/results/speed_"$label".md \
  bench/results/speed_sd_"$label".md "/tmp/attnkit-kernels-$label.md" 2>/dev/null || true
