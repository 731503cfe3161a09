"""Test-wide settings (offline, CPU, no Ultralytics settings sync, no auto-installs) and shared fixtures."""

from __future__ import annotations

import os
import sys
import tempfile

# Set before Ultralytics is imported anywhere in the test process (and inherited by subprocesses).
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
# pytest-xdist runs one worker per core (pyproject's addopts): one torch thread each then keeps the cores busy
# without two threads of every worker contending for one core. A run without workers keeps two.
os.environ.setdefault("OMP_NUM_THREADS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2")
# A private settings folder, so tests neither read nor change the user's Ultralytics settings.
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="pst_yolo_test_settings_"))

import pytest
import torch


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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread is as fast, and on a shared, loaded machine a second thread
    spinning at every op's barrier made such modules many times slower. Restored afterwards.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli(capsys):
    """Run ``pst-yolo`` in this process: ``cli("bench", "--help") -> exit code``;
    ``cli.error(*argv, match=regex)`` asserts exit code 2 and the message on stderr (returns it)."""
    from helpers import CLI

    return CLI(capsys)
