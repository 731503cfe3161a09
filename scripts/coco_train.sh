#!/usr/bin/env bash
# Train PST detectors on COCO with the paper's recipe (arXiv 2505.12772, the YOLO12 recipe it follows):
# from scratch, 600 epochs, SGD, imgsz 640, batch 128, and per scale
#     n: scale 0.5  mixup 0.0   copy_paste 0.1
#     s: scale 0.9  mixup 0.05  copy_paste 0.15
#     m: scale 0.9  mixup 0.15  copy_paste 0.4
# Training runs coarse attention only (k = 0), as in the paper; the fine branch is switched on at evaluation
# (scripts/coco_eval.sh).
#
#   DATA=datasets/coco-pst/data.yaml DEVICE=0,1,2,3 scripts/coco_train.sh n s m
#
# LAYOUT: yolo12 (default) = cfg/yolo12-pst.yaml, the layout the authors released as "YOLOv11-PST" (YOLO12
# backbone with A2C2f, PST replacing the two top-down fusion blocks). THE PAPER'S COCO NUMBERS COME FROM THIS
# LAYOUT. LAYOUT=yolo11 trains cfg/yolo11-pst.yaml instead: PST on the real YOLO11 architecture (not in the paper).
# BASELINE=1 also trains the stock model of the same family and scale with the same recipe (yolo12n.yaml, ...).
set -euo pipefail
DATA=${DATA:-datasets/coco-pst/data.yaml}   # written by scripts/coco_prepare.sh
DEVICE=${DEVICE:-0}                         # e.g. 0,1,2,3 for multi-GPU DDP (batch 128 is split across GPUs)
LAYOUT=${LAYOUT:-yolo12}
PROJECT=${PROJECT:-$PWD/runs/coco}
WORKERS=${WORKERS:-8}
BASELINE=${BASELINE:-0}
SCALES=("$@"); [ ${#SCALES[@]} -eq 0 ] && SCALES=(n s m)

for s in "${SCALES[@]}"; do
  case "$s" in
    n) aug="scale=0.5 mixup=0.0 copy_paste=0.1" ;;
    s) aug="scale=0.9 mixup=0.05 copy_paste=0.15" ;;
    m) aug="scale=0.9 mixup=0.15 copy_paste=0.4" ;;
    *) echo "unknown scale '$s' (the paper trains n, s, m)" >&2; exit 2 ;;
  esac
  models=("${LAYOUT}${s}-pst.yaml")
  [ "$BASELINE" = 1 ] && models+=("${LAYOUT}${s}.yaml")
  for model in "${models[@]}"; do
    name=${model%.yaml}
    # shellcheck disable=SC2086  # $aug is a list of key=value words
    yolo train "model=$model" "data=$DATA" epochs=600 imgsz=640 batch=128 optimizer=SGD lr0=0.01 \
      pretrained=False $aug "device=$DEVICE" "workers=$WORKERS" "project=$PROJECT" "name=$name" exist_ok=True
  done
done
