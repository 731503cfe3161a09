"""Which Ultralytics/torch releases pst-yolo supports, and checks that the internals it wraps are there.

The range below is the one the test suite runs against (``constraints/oldest.txt`` and
``constraints/latest.txt``; docs/compatibility.md). Outside it pst-yolo still tries -- one warning
names the tested range -- but an internal that is missing or has another signature is an error that
names it, raised before anything is patched, instead of a deep traceback from inside Ultralytics later.
"""

from __future__ import annotations

import inspect
import re
import warnings
from typing import Any, Callable, Sequence

ULTRALYTICS_MIN = (
    "8.3.138"  # oldest tested (constraints/oldest.txt): first to build export metadata before on_export_start
)
ULTRALYTICS_BELOW = "8.5"  # first minor not tested yet (pyproject.toml's upper bound)
TORCH_MIN = "2.4"  # oldest tested torch (constraints/oldest.txt)

SUPPORTED = f"ultralytics>={ULTRALYTICS_MIN},<{ULTRALYTICS_BELOW} with torch>={TORCH_MIN}"

_warned: set[str] = set()


class UnsupportedUltralyticsError(RuntimeError):
    """An Ultralytics internal that pst-yolo wraps is missing or changed; the message names it."""


def version_tuple(version: str) -> tuple[int, ...]:
    """``"8.4.190"`` -> ``(8, 4, 190)``; ``"2.4.1+cpu"`` -> ``(2, 4, 1)`` (pre/post/local parts ignored)."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0].split("rc")[0])[:3])


def in_tested_range(ultralytics_version: str) -> bool:
    v = version_tuple(ultralytics_version)
    return version_tuple(ULTRALYTICS_MIN) <= v < version_tuple(ULTRALYTICS_BELOW)


def warn_if_untested(ultralytics_version: str, torch_version: str) -> None:
    """One warning per process when the installed versions are outside the tested range."""
    problems = []
    if not in_tested_range(ultralytics_version):
        problems.append(f"ultralytics {ultralytics_version}")
    if version_tuple(torch_version) < version_tuple(TORCH_MIN):
        problems.append(f"torch {torch_version}")
    key = ", ".join(problems)
    if problems and key not in _warned:
        _warned.add(key)
        warnings.warn(
            f"pst-yolo was tested with {SUPPORTED}; installed: {key}. It may work, but is untested: "
            f"`pip install 'ultralytics>={ULTRALYTICS_MIN},<{ULTRALYTICS_BELOW}'` for a tested setup",
            stacklevel=3,
        )


def require(owner: Any, name: str, where: str, params: Sequence[str] = ()) -> Callable:
    """``owner.name`` if it exists and its first parameters are ``params``, else UnsupportedUltralyticsError.

    ``where`` is the dotted name users see in the message (e.g. ``ultralytics.nn.tasks.parse_model``).
    """
    import ultralytics

    found = getattr(owner, name, None)
    if found is None:
        raise UnsupportedUltralyticsError(
            f"pst-yolo needs {where}, which the installed ultralytics {ultralytics.__version__} does not have. "
            f"Supported: {SUPPORTED}; install a release in that range, e.g. "
            f"`pip install 'ultralytics>={ULTRALYTICS_MIN},<{ULTRALYTICS_BELOW}'`"
        )
    if params:
        original = getattr(found, "__pst_yolo_original__", found)  # our own wrapper: check what it wraps
        try:
            names = list(inspect.signature(original).parameters)[: len(params)]
        except (TypeError, ValueError):  # a builtin without a signature: nothing to compare
            names = list(params)
        if names != list(params):
            raise UnsupportedUltralyticsError(
                f"pst-yolo wraps {where}({', '.join(params)}, ...), but the installed ultralytics "
                f"{ultralytics.__version__} has {where}({', '.join(names)}, ...). Supported: {SUPPORTED}; "
                f"install a release in that range, e.g. `pip install 'ultralytics>={ULTRALYTICS_MIN},<{ULTRALYTICS_BELOW}'`"
            )
    return found


def progress_bar_class() -> type:
    """Ultralytics' progress bar: ``ultralytics.utils.tqdm.TQDM`` (8.3.200 and later; no tqdm dependency
    any more) or ``ultralytics.utils.TQDM`` (older releases)."""
    try:
        from ultralytics.utils.tqdm import TQDM
    except ImportError:
        from ultralytics.utils import TQDM
    return TQDM


def has_quantize_arg() -> bool:
    """Whether Ultralytics' export takes ``quantize=`` (8.4 on; it deprecates ``half``/``int8`` and adds INT8 ONNX,
    ONNX Runtime static quantization)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return "quantize" in DEFAULT_CFG_DICT


def int8_export_args(data: str, split: str = "train") -> dict:
    """The ``export()`` arguments for INT8 calibrated on the ``split`` of ``data`` (default train): ``quantize=8``
    from Ultralytics 8.4, ``int8=True`` before (``split`` picks the calibration images in both)."""
    return {**({"quantize": 8} if has_quantize_arg() else {"int8": True}), "data": data, "split": split}


def fp16_export_args() -> dict:
    """The ``export()`` arguments for fp16 weights: ``quantize=16`` from Ultralytics 8.4 (which deprecates
    ``half``), ``half=True`` before."""
    return {"quantize": 16} if has_quantize_arg() else {"half": True}
