#!/usr/bin/env bash
# The study's gpu cells on a GPU machine (issue 20): stock yolo11n, yolo11n-pst and PST at P4 only, seeds 0-2,
# at 640 px on a larger set from the main job's generator, all nine side by side on one GPU, in about 8 minutes
# on one H200 (sizes in pst_yolo/eval/study.py: GPU_SYNTH, GPU_EPOCHS, GPU_TRAIN_ARGS).
#
#   scripts/gpu_wheels.sh                       # here: wheels for a machine without Ultralytics / pycocotools
#   scripts/gpu_study.sh                        # there: device 0, cells in runs/pst-study-gpu/cells
#   scripts/gpu_study.sh device=cpu jobs=2 train=8 val=4 synth_imgsz=64    # a tiny CPU rehearsal (the test's)
#
# Extra key=value words go to `pst-yolo study` (they win over the defaults below). Then copy the cells into
# docs/accuracy/cells and run `pst-yolo study report project=docs/accuracy out=docs/accuracy`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"  # the interpreter that has torch (the test passes its own)
if [ -d .whl ] && ! "$PYTHON" -c "import ultralytics, pycocotools" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/pst-gpu-site .whl/*.whl
    export PYTHONPATH="/tmp/pst-gpu-site${PYTHONPATH:+:$PYTHONPATH}"
fi
# pst-yolo from this checkout, installed or not (the command table registers PST itself).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
"$PYTHON" -c "import torch; print('torch', torch.__version__, '| cuda:', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
exec "$PYTHON" -m pst_yolo.cli study cells=gpu project=runs/pst-study-gpu device=0 jobs=9 "$@"
