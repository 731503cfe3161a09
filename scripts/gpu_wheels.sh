#!/usr/bin/env bash
# Download, into .whl/ (ignored by git), the wheels scripts/gpu_study.sh installs on a GPU machine that has
# Python 3.12 and torch but neither Ultralytics nor pycocotools, and cannot reach a package registry.
# The versions are those of constraints/latest.txt. Run it here, in the repository root, before the GPU run.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
pin() { grep -E "^$1==" constraints/latest.txt; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    "$(pin ultralytics)" "$(pin ultralytics-thop)" "$(pin ultralytics-platform)" "$(pin pycocotools)" \
    "$(pin polars)" "$(pin polars-runtime-32)"
ls -la .whl
