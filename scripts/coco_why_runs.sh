#!/usr/bin/env bash
# Reproduce README's "COCO as classification" figures: the four --from-boxes modes at 32x32 and 64x64
# on coco-tiny, then `amlvision why` with CIFAR-10 as the contrast. Usage: bash scripts/coco_why_runs.sh [OUT]
set -euo pipefail
out=${1:-runs/coco_why}
data=${COCO_DATA:-../shared/data/coco-tiny}
py=${PYTHON:-.venv/bin/python}
runs=()
for size in 32 64; do
  for mode in dominant crops multilabel context; do
    run="$out/$mode-$size"
    "$py" train.py --data "$data" --from-boxes "$mode" --scale "$size" "$size" --epochs "${EPOCHS:-4}" --batch-size 16 \
      --threads "${THREADS:-1}" --progress log --outputs "$run"
    runs+=("$run")
  done
done
"$py" -m amlvision why "$data" --out "$out/why" --contrast "${CIFAR_DATA:-../shared/data/cifar10-png.tar.gz}" \
  --runs "${runs[@]}"
