"""The checkpoint trust model (docs/security.md): a ``.pt`` is a pickle, and unpickling can run code -- with
stock ``YOLO()`` and every ``pst-yolo`` command alike. ``ULTRALYTICS_SAFE_LOAD=1`` refuses such a file, through
``YOLO()`` and through a ``pst-yolo`` command, while PST checkpoints still load.

The "malicious" checkpoint here only creates an empty marker file when unpickled (``open(marker, "w")``).
Each load runs in a fresh interpreter, since Ultralytics reads the variable once, at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pst_yolo


class _RunsCodeWhenUnpickled:
    """Pickles as a call to ``open(marker, "w")``: unpickling it creates the marker, nothing else."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from ultralytics import YOLO

    root = tmp_path_factory.mktemp("security")
    marker = root / "code-ran"
    torch.save({"model": _RunsCodeWhenUnpickled(marker), "train_args": {}}, root / "evil.pt")
    assert not marker.exists()  # saving does not run it
    torch.manual_seed(0)
    model = YOLO("yolo11n-pst.yaml")
    pst_yolo.set_topk(model, 4)
    model.save(str(root / "pst.pt"))
    return root, marker


def _python(code: str, safe: bool, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ULTRALYTICS_SAFE_LOAD": "1" if safe else "0"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _pst_yolo(*args: str, safe: bool, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ULTRALYTICS_SAFE_LOAD": "1" if safe else "0"}
    cmd = [sys.executable, "-m", "pst_yolo.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _has_safe_load() -> bool:
    from ultralytics.nn import tasks

    return hasattr(tasks, "_SafeLoad")  # restricted loading came with Ultralytics 8.4


needs_safe_load = pytest.mark.skipif(
    not _has_safe_load(),
    reason="this Ultralytics has no ULTRALYTICS_SAFE_LOAD; pst-yolo refuses every load when it is set "
    "(test_safe_load_asked_for_on_an_ultralytics_without_it_loads_nothing)",
)

SPEED = ("runtime=torch", "imgsz=64", "runs=1", "warmup=0", "memory=false", "flops=false", "project=runs")


@pytest.mark.slow  # fresh interpreters (Ultralytics reads the variable at import)
def test_a_pickle_runs_code_under_the_default_loading(files):
    """The premise of docs/security.md: without SAFE_LOAD the marker appears (so the checks below can fail)."""
    root, marker = files
    _python(f"from ultralytics import YOLO\nYOLO({str(root / 'evil.pt')!r})", safe=False, cwd=root)
    assert marker.exists()
    marker.unlink()


@needs_safe_load
@pytest.mark.slow  # fresh interpreters (Ultralytics reads the variable at import)
def test_safe_load_refuses_it_through_yolo_and_through_pst_yolo(files):
    root, marker = files
    proc = _python(f"from ultralytics import YOLO\nYOLO({str(root / 'evil.pt')!r})", safe=True, cwd=root)
    assert proc.returncode != 0 and "evil.pt" in proc.stderr, proc.stderr[-2000:]
    assert not marker.exists()
    proc = _pst_yolo("speed", f"models={root / 'evil.pt'}", *SPEED, safe=True, cwd=root)
    assert proc.returncode == 2 and "evil.pt cannot be loaded" in proc.stderr, proc.stderr[-2000:]
    assert not marker.exists()


@needs_safe_load
@pytest.mark.slow  # fresh interpreters (Ultralytics reads the variable at import)
def test_safe_load_still_loads_pst_checkpoints(files):
    root, _ = files
    code = (
        "import numpy as np, pst_yolo\nfrom ultralytics import YOLO\n"
        f"m = YOLO({str(root / 'pst.pt')!r})\n"
        "r = m.predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, verbose=False)\n"
        "print('k', pst_yolo.get_topk(m), len(r))"
    )
    proc = _python(code, safe=True, cwd=root)
    assert proc.returncode == 0 and "k 4 1" in proc.stdout, proc.stderr[-2000:]
    proc = _pst_yolo("speed", f"models={root / 'pst.pt'}", "topk=2", *SPEED, safe=True, cwd=root)
    assert proc.returncode == 0 and "| 2 |" in proc.stdout, proc.stderr[-2000:]


@needs_safe_load
def test_safe_load_asked_for_where_it_cannot_be_done_loads_nothing(files, monkeypatch):
    """Ultralytics falls back to a full unpickle under torch < 2.6 (and older Ultralytics ignore the variable):
    pst-yolo refuses instead. Simulated here by switching the capability off."""
    from ultralytics import YOLO
    from ultralytics.nn import tasks

    root, marker = files
    monkeypatch.setattr(tasks, "SAFE_LOAD", True)
    monkeypatch.setattr(tasks._SafeLoad, "SUPPORTED", False)
    for name in ("evil.pt", "pst.pt"):
        with pytest.raises(ValueError, match=r"ULTRALYTICS_SAFE_LOAD=1 asks for restricted .* needs torch >= 2\.6"):
            YOLO(str(root / name))
    assert not marker.exists()
    monkeypatch.setattr(tasks, "SAFE_LOAD", False)
    assert pst_yolo.get_topk(YOLO(str(root / "pst.pt"))) == 4  # not asked for: loads as before


def test_safe_load_asked_for_on_an_ultralytics_without_it_loads_nothing(files, monkeypatch):
    """Ultralytics before 8.4 has no restricted loading and ignores ULTRALYTICS_SAFE_LOAD: pst-yolo refuses the
    load instead of unpickling with full code execution (simulated on later versions by removing the feature)."""
    from ultralytics import YOLO
    from ultralytics.nn import tasks

    root, marker = files
    monkeypatch.delattr(tasks, "_SafeLoad", raising=False)
    monkeypatch.delattr(tasks, "SAFE_LOAD", raising=False)
    monkeypatch.setenv("ULTRALYTICS_SAFE_LOAD", "1")
    for name in ("evil.pt", "pst.pt"):
        with pytest.raises(ValueError, match=r"ULTRALYTICS_SAFE_LOAD=1 asks .* has no restricted checkpoint loading"):
            YOLO(str(root / name))
    assert not marker.exists()
    monkeypatch.undo()
    monkeypatch.setenv("ULTRALYTICS_SAFE_LOAD", "0")
    assert pst_yolo.get_topk(YOLO(str(root / "pst.pt"))) == 4  # not asked for: loads as before
