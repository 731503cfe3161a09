#!/usr/bin/env bash
# Convert COCO 2017 (as downloaded from cocodataset.org) into the Ultralytics layout pst-yolo trains on,
# plus the class-index <-> category-id mapping (coco_map.json) that `pst-yolo bench` scores with.
#
#   COCO_ROOT=/data/coco OUT=datasets/coco-pst scripts/coco_prepare.sh
#
# COCO_ROOT must hold annotations/instances_{train,val}2017.json, train2017/ and val2017/.
# Images are symlinked, not copied (MODE=copy to copy). Nothing is downloaded.
# The result: $OUT/data.yaml with COCO's 80 classes in category-id order (= Ultralytics' coco.yaml order),
# $OUT/coco_map.json and $OUT/annotations/instances_val2017-equivalent (original image and category ids).
set -euo pipefail
COCO_ROOT=${COCO_ROOT:?set COCO_ROOT to the folder with annotations/, train2017/, val2017/}
OUT=${OUT:-datasets/coco-pst}
MODE=${MODE:-symlink}

pst-yolo coco2yolo "out=$OUT" mode="$MODE" \
  "train=$COCO_ROOT/annotations/instances_train2017.json" "train_images=$COCO_ROOT/train2017" \
  "val=$COCO_ROOT/annotations/instances_val2017.json" "val_images=$COCO_ROOT/val2017"
# COCO 2017 has no missing files or out-of-image boxes; if your copy does, the command refuses and lists them
# (add skip=true to leave the affected images out; the skipped counts are printed).
