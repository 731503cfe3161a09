#!/usr/bin/env bash
# Validate the weights from scripts/imagenet_train.sh on ImageNet-1k val: every PST model at each k in TOPK
# (default 0 = coarse only, as trained, and 8 = fine branch on), every baseline once; one table of top-1 /
# top-5 / params / GFLOPs / ms per image, written to $PROJECT/bench/results.md and results.csv.
#
#   DATA=/data/imagenet DEVICE=0 scripts/imagenet_eval.sh                 # every run found under $RUNS
#   DATA=/data/imagenet scripts/imagenet_eval.sh resnet50-cls-pst resnet50-cls
#
# ms/image is Ultralytics' inference time per image at batch $BATCH on $DEVICE.
set -euo pipefail
DATA=${DATA:?set DATA=/path/to/imagenet (ImageFolder layout with train/ and val/)}
RUNS=${RUNS:-$PWD/runs/imagenet}
PROJECT=${PROJECT:-$PWD/runs/imagenet}
DEVICE=${DEVICE:-0}
TOPK=${TOPK:-0,8}
BATCH=${BATCH:-256}
WORKERS=${WORKERS:-16}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for d in "$RUNS"/*/; do names+=("$(basename "$d")"); done
fi
models=()
for name in "${names[@]}"; do
  [ -f "$RUNS/$name/weights/best.pt" ] && models+=("$RUNS/$name/weights/best.pt")
done
[ ${#models[@]} -eq 0 ] && { echo "no weights under $RUNS/<model>/weights/best.pt: run scripts/imagenet_train.sh first" >&2; exit 2; }
list=$(IFS=,; echo "${models[*]}")   # rows are named after the run folders (resnet50-cls-pst, ...)

pst-yolo bench task=classify "data=$DATA" "models=$list" "topk=$TOPK" imgsz=224 "batch=$BATCH" \
  "eval_batch=$BATCH" "workers=$WORKERS" "device=$DEVICE" "project=$PROJECT" name=bench exist_ok=True
