#!/usr/bin/env bash
# Train PST classifiers and their baselines on ImageNet-1k with the authors' recipe (arXiv 2505.12772):
# from scratch, 200 epochs, SGD lr0 0.2 -> lrf 0.01 on a cosine schedule, momentum 0.9, weight decay 1e-4,
# nbs 256, batch 256, imgsz 224, RandAugment, random erasing 0.4, hsv_s 0.4, hsv_v 0.4.
# Training runs coarse attention only (k = 0), as in the paper; scripts/imagenet_eval.sh then validates every
# PST model at k = 0 and k = 8 (top-1 / top-5).
#
#   DATA=/data/imagenet DEVICE=0,1,2,3 scripts/imagenet_train.sh resnet50-cls-pst resnet50-cls
#
# DATA is a local ImageNet-1k folder in ImageFolder layout: $DATA/train/<wnid>/*.JPEG and $DATA/val/<wnid>/*.JPEG
# (1000 class folders each; the val images sorted into class folders). Nothing is downloaded: give a path, not
# the name "imagenet". Models (arguments, without .yaml; default: all of the paper's classifiers and baselines):
#   resnet{18,50,101}-cls-pst / resnet{18,50,101}-cls   (cfg/; "resnet18" is a bottleneck ResNet-26, see docs/models.md)
#   yolo11{n,s,m,l,x}-cls-pst / yolo11{n,s,m,l,x}-cls   (PST layout / stock Ultralytics YOLO11-cls)
# With DEVICE=0,1,2,3 Ultralytics trains with DDP and splits batch 256 across the GPUs.
# Do not add pretrained=False: for classifiers Ultralytics then calls reset_parameters() on every layer, which
# replaces PST's zero gate (50/50 blend) with a random one; from a .yaml, training is from scratch anyway.
set -euo pipefail
DATA=${DATA:?set DATA=/path/to/imagenet (ImageFolder layout with train/ and val/)}
DEVICE=${DEVICE:-0}
PROJECT=${PROJECT:-$PWD/runs/imagenet}
WORKERS=${WORKERS:-16}
EPOCHS=${EPOCHS:-200}
[ -d "$DATA/train" ] && [ -d "$DATA/val" ] || { echo "DATA=$DATA has no train/ and val/ folders" >&2; exit 2; }
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(resnet18-cls-pst resnet18-cls resnet50-cls-pst resnet50-cls resnet101-cls-pst
                                  resnet101-cls yolo11n-cls-pst yolo11n-cls yolo11s-cls-pst yolo11s-cls)

for name in "${MODELS[@]}"; do
  name=${name%.yaml}
  yolo classify train "model=$name.yaml" "data=$DATA" "epochs=$EPOCHS" imgsz=224 batch=256 nbs=256 \
    optimizer=SGD lr0=0.2 lrf=0.01 cos_lr=True momentum=0.9 weight_decay=0.0001 \
    auto_augment=randaugment erasing=0.4 hsv_s=0.4 hsv_v=0.4 \
    "device=$DEVICE" "workers=$WORKERS" "project=$PROJECT" "name=$name" exist_ok=True plots=False
done
