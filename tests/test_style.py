"""The code passes the project's formatter and linter (ruff; configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO

TARGETS = ["pst_yolo", "tests", "scripts", "hatch_build.py"]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(args):
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *args, *TARGETS], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, (
        f"`ruff {' '.join(args)}` found problems (fix with `ruff check --fix` / "
        f"`ruff format`):\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    )
