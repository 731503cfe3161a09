"""Test-wide settings: offline, CPU, no Ultralytics settings sync, no auto-installs."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Set before Ultralytics is imported anywhere in the test process (and inherited by subprocesses).
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("OMP_NUM_THREADS", "2")
# A private settings folder, so tests neither read nor change the user's Ultralytics settings.
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="pst_yolo_test_settings_"))

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _offline_settings():
    """No analytics sync, no logger integrations (they would try the network); persisted for subprocesses."""
    from ultralytics.utils import SETTINGS

    off = ("sync", "clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb", "vscode_msg")
    SETTINGS.update({key: False for key in off if key in SETTINGS})
    yield


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable
