"""The README's Python blocks run as written (datasets that would need a download swapped for a generated
set, schedules shortened), and its two set-up commands are the ones .ci/run runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FIXTURES, REPO

README = (REPO / "README.md").read_text()

# README text -> what the test runs instead. Keys are matched literally, longest first.
DOWNLOADS = ("coco8.yaml", "coco.yaml", "val2017", "annotations/instances_val2017.json")


def python_blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    blocks, lines = [], README.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, body = i + 1, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start + 1, "\n".join(body) + "\n"))
        i += 1
    return blocks


def shell_block_after(heading: str) -> list[str]:
    """Lines of the first ```bash block after ``heading``."""
    after = README[README.index(heading) :]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block, f"no bash block after {heading!r}"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command_exactly():
    test_cmd = shell_block_after("**2. Tests**")
    assert len(test_cmd) == 1
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_cmd[0].strip() in ci, f".ci/run must run README command 2 exactly: {test_cmd[0]}"


def test_readme_commands_pin_the_tested_versions():
    for heading in ("**1. Main job**", "**2. Tests**"):
        assert "-c constraints/latest.txt" in shell_block_after(heading)[0]
    assert (REPO / "constraints" / "latest.txt").is_file() and (REPO / "constraints" / "oldest.txt").is_file()


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, str]:
    """Generated stand-ins for what the README's snippets name: a dataset, its COCO JSON, trained weights."""
    from ultralytics import YOLO

    from pst_yolo.data.synth import SynthSpec, generate

    root = tmp_path_factory.mktemp("readme")
    data_yaml = generate(root / "data", SynthSpec(train=8, val=4, imgsz=64, seed=1))
    model = YOLO("yolo11n-pst.yaml")
    model.train(
        data=str(data_yaml),
        epochs=1,
        imgsz=64,
        batch=4,
        workers=0,
        device="cpu",
        plots=False,
        val=False,
        project=str(root / "runs"),
        name="train",
        exist_ok=True,
        verbose=False,
        amp=False,
    )
    best = Path(model.trainer.best if Path(model.trainer.best).is_file() else model.trainer.last)
    val_json = root / "data" / "annotations" / "instances_val.json"
    return {
        '"coco8.yaml"': f'"{data_yaml}"',
        '"coco.yaml"': f'"{data_yaml}"',
        '"runs/detect/train/weights/best.pt"': f'"{best}"',
        '"best.pt"': f'"{best}"',
        '"annotations/instances_val2017.json"': f'"{val_json}"',
        '"val2017"': f'"{root / "data" / "images" / "val"}"',
        "epochs=100": "epochs=1",
        "imgsz=640": "imgsz=64",
        '"path/to/their_weights.pt"': f'"{FIXTURES / "authors_yolo11n_pst.pt"}"',  # a checkpoint of the authors' fork
    }


@pytest.mark.slow
@pytest.mark.parametrize("line,code", python_blocks(), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_readme_python_block_runs_as_written(line, code, stand_ins, tmp_path):
    for old in sorted(stand_ins, key=len, reverse=True):
        code = code.replace(old, stand_ins[old])
    leftover = [name for name in DOWNLOADS if f'"{name}"' in code]
    assert not leftover, f"README line {line}: add a stand-in for {leftover} to this test"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, f"README block at line {line} failed:\n{code}\n{r.stderr[-3000:]}"
