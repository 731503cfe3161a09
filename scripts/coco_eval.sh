#!/usr/bin/env bash
# Evaluate the weights from scripts/coco_train.sh with pycocotools on COCO val2017 at k = 0 (coarse only,
# as trained) and k = 8 (fine branch on), plus any stock baselines trained with BASELINE=1 (evaluated once).
# Writes results.md / results.csv / results.png (AP vs latency) to $PROJECT/bench and prints the table.
#
#   DATA=datasets/coco-pst SCALES="n s m" DEVICE=0 scripts/coco_eval.sh
#
# Scores use the official 91-id instances_val2017.json through the mapping in $DATA/coco_map.json (or pass
# ANNOTATIONS=/data/coco/annotations/instances_val2017.json IMAGES=/data/coco/val2017 to score against the
# original file directly: a model with COCO's 80 class names is mapped with the standard 80 -> 91 id table).
# ms/image is measured at batch 1 on $DEVICE (preprocess + inference + NMS).
set -euo pipefail
DATA=${DATA:-datasets/coco-pst}
RUNS=${RUNS:-$PWD/runs/coco}
PROJECT=${PROJECT:-$PWD/runs/coco}
DEVICE=${DEVICE:-0}
LAYOUT=${LAYOUT:-yolo12}
SCALES=${SCALES:-n s m}
TOPK=${TOPK:-0,8}

models=()
for s in $SCALES; do
  for name in "${LAYOUT}${s}" "${LAYOUT}${s}-pst"; do
    [ -f "$RUNS/$name/weights/best.pt" ] && models+=("$RUNS/$name/weights/best.pt")
  done
done
[ ${#models[@]} -eq 0 ] && { echo "no weights under $RUNS/<model>/weights/best.pt: run scripts/coco_train.sh first" >&2; exit 2; }
list=$(IFS=,; echo "${models[*]}")   # rows are named after the run folders (yolo12n-pst, ...)

extra=()
[ -n "${ANNOTATIONS:-}" ] && extra+=("annotations=$ANNOTATIONS" "images=${IMAGES:?IMAGES= goes with ANNOTATIONS=}")
pst-yolo bench "data=$DATA" "models=$list" "topk=$TOPK" imgsz=640 eval_batch=1 "device=$DEVICE" \
  "project=$PROJECT" name=bench "${extra[@]}"
