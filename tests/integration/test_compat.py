"""The supported Ultralytics/torch range: one warning outside it, one clear error for a missing internal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import REPO
from pst_yolo.integration.compat import (
    ULTRALYTICS_BELOW,
    ULTRALYTICS_MIN,
    UnsupportedUltralyticsError,
    in_tested_range,
    require,
    version_tuple,
)


def _run(code: str, autoload: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PST_YOLO_AUTOLOAD": "1" if autoload else "0", "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_version_parsing_and_range():
    assert version_tuple("8.4.190") == (8, 4, 190)
    assert version_tuple("2.4.1+cpu") == (2, 4, 1)
    assert version_tuple("8.5.0rc1") == (8, 5, 0)
    assert in_tested_range(ULTRALYTICS_MIN) and in_tested_range("8.4.190")
    assert not in_tested_range("8.3.137") and not in_tested_range(ULTRALYTICS_BELOW + ".0")


def test_pyproject_states_the_same_range():
    import re

    text = (REPO / "pyproject.toml").read_text()
    spec = re.search(r'"ultralytics([^"]*)"', text).group(1).replace(" ", "")
    assert spec == f">={ULTRALYTICS_MIN},<{ULTRALYTICS_BELOW}"


def test_installed_versions_are_in_the_tested_range():
    import ultralytics

    assert in_tested_range(ultralytics.__version__), ultralytics.__version__


def test_require_names_the_internal_and_the_supported_range():
    class Owner:
        @staticmethod
        def f(d, ch, verbose=True):
            return d

    assert require(Owner, "f", "x.f", ("d", "ch")) is Owner.f
    with pytest.raises(
        UnsupportedUltralyticsError, match=rf"needs x\.g.*ultralytics>={ULTRALYTICS_MIN},<{ULTRALYTICS_BELOW}"
    ):
        require(Owner, "g", "x.g")
    with pytest.raises(UnsupportedUltralyticsError, match=r"wraps x\.f\(cfg, ch, \.\.\.\).*has x\.f\(d, ch, \.\.\.\)"):
        require(Owner, "f", "x.f", ("cfg", "ch"))


@pytest.mark.slow
def test_untested_ultralytics_version_warns_once_and_pst_still_works():
    # Registration runs when Ultralytics' model code is first imported, which older releases do inside
    # `import ultralytics` itself: so the version is faked first and pst-yolo registered by hand.
    code = (
        "import ultralytics; ultralytics.__version__ = '8.2.0'\n"
        "import pst_yolo\n"
        "pst_yolo.register(); pst_yolo.register()\n"
        "from ultralytics import YOLO\n"
        "m = YOLO('yolo11n-pst.yaml'); YOLO('yolo11n-pst.yaml')\n"
        "print('built', pst_yolo.get_topk(m))\n"
    )
    r = _run(code, autoload=False)
    assert r.returncode == 0, r.stderr
    assert "built 8" in r.stdout
    assert r.stderr.count(f"pst-yolo was tested with ultralytics>={ULTRALYTICS_MIN},<{ULTRALYTICS_BELOW}") == 1, (
        r.stderr
    )
    assert "installed: ultralytics 8.2.0" in r.stderr


@pytest.mark.slow
def test_missing_internal_is_one_clear_error_on_register():
    code = "from ultralytics.nn import tasks\ndel tasks.torch_safe_load\nimport pst_yolo\npst_yolo.register()\n"
    r = _run(code, autoload=False)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "pst_yolo.integration.compat.UnsupportedUltralyticsError: pst-yolo needs ultralytics.nn.tasks.torch_safe_load"
    ), r.stderr
    assert f"ultralytics>={ULTRALYTICS_MIN},<{ULTRALYTICS_BELOW}" in last
    frames = [line for line in r.stderr.splitlines() if line.strip().startswith("File ")]
    assert "pst_yolo" in frames[-1] and "compat.py" in frames[-1], frames  # raised by us, not deep in Ultralytics


@pytest.mark.slow
def test_changed_internal_signature_is_an_error_and_nothing_is_patched():
    code = (
        "from ultralytics.nn import tasks\n"
        "original = tasks.parse_model\n"
        "tasks.parse_model = lambda cfg, channels, verbose=True: original(cfg, channels, verbose)\n"
        "keep = tasks.check_yaml\n"
        "import pst_yolo\n"
        "try:\n"
        "    pst_yolo.register()\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
        "print('check_yaml untouched', tasks.check_yaml is keep)\n"
    )
    r = _run(code, autoload=False)
    assert r.returncode == 0, r.stderr
    assert (
        "UnsupportedUltralyticsError pst-yolo wraps ultralytics.nn.tasks.parse_model(d, ch, verbose, ...)" in r.stdout
    )
    assert "check_yaml untouched True" in r.stdout


@pytest.mark.slow
def test_autoload_with_a_missing_internal_warns_and_leaves_stock_models_working():
    """The user's own import of Ultralytics must not break because pst-yolo cannot register."""
    code = (
        "from pst_yolo.integration.import_hooks import _PENDING\n"
        "def change(mod):\n"
        "    original = mod.check_yaml\n"
        "    mod.check_yaml = lambda path, *a, **k: original(path, *a, **k)\n"
        "_PENDING.setdefault('ultralytics.nn.tasks', []).insert(0, change)\n"
        "from ultralytics import YOLO\n"
        "m = YOLO('yolo11n.yaml')\n"
        "print('stock ok', type(m.model).__name__)\n"
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert "stock ok DetectionModel" in r.stdout
    assert "pst-yolo wraps ultralytics.nn.tasks.check_yaml(file, ...)" in r.stderr
    assert "PST models are unavailable in this process" in r.stderr
