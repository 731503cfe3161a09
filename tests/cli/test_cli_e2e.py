"""End to end through the real console scripts, in fresh processes, as a user would run them.

train (1 epoch, tiny generated data) -> val -> predict -> ONNX export of best.pt, then
onnxruntime's output must match PyTorch's on the same input.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow  # trains models / runs subprocesses

BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "YOLO_VERBOSE": "true"}  # the user's view: summaries and metrics printed
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A yolo11n-pst trained for one epoch with the stock `yolo` command."""
    from pst_yolo.data.synth import SynthSpec, generate

    root = tmp_path_factory.mktemp("e2e")
    data = generate(root / "data", SynthSpec(train=16, val=8, imgsz=96, seed=1))
    _run(
        [
            str(BIN / "yolo"),
            "train",
            "model=yolo11n-pst.yaml",
            f"data={data}",
            "epochs=1",
            "imgsz=64",
            "batch=8",
            "workers=0",
            "device=cpu",
            "plots=False",
            f"project={root / 'runs'}",
            "name=train",
            "exist_ok=True",
        ],
        cwd=root,
    )
    best = root / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file()
    return root, data, best


def test_val_and_predict_in_fresh_processes(trained):
    root, data, best = trained
    val = _run(
        [
            str(BIN / "yolo"),
            "val",
            f"model={best}",
            f"data={data}",
            "imgsz=64",
            "batch=8",
            "workers=0",
            "device=cpu",
            "plots=False",
            f"project={root / 'runs'}",
            "name=val",
            "exist_ok=True",
        ],
        cwd=root,
    )
    log = val.stdout + val.stderr
    assert "YOLO11n-pst summary (fused)" in log  # the checkpoint rebuilt as the PST model, then fused
    assert "mAP50-95" in log
    pred = _run(
        [
            str(BIN / "yolo"),
            "predict",
            f"model={best}",
            f"source={data.parent / 'images' / 'val'}",
            "imgsz=64",
            "device=cpu",
            "conf=0.001",
            f"project={root / 'runs'}",
            "name=pred",
            "exist_ok=True",
        ],
        cwd=root,
    )
    saved = list((root / "runs" / "pred").glob("*.png")) + list((root / "runs" / "pred").glob("*.jpg"))
    assert len(saved) == 8, pred.stdout[-2000:]


def test_onnx_export_matches_pytorch(trained):
    ort = pytest.importorskip("onnxruntime")
    root, _, best = trained
    _run([str(BIN / "yolo"), "export", f"model={best}", "format=onnx", "imgsz=64", "opset=17"], cwd=root)
    onnx_path = best.with_suffix(".onnx")
    assert onnx_path.is_file()

    from ultralytics import YOLO

    model = YOLO(str(best)).model.float().eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(x)
    expected = (expected[0] if isinstance(expected, (list, tuple)) else expected).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)
