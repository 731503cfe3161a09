"""pst-yolo: the Pyramid Sparse Transformer (arXiv 2505.12772) as a plugin for Ultralytics YOLO.

Importing this package is cheap: torch and Ultralytics load on first use of a name below.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "PST": "pst_yolo.pst",
    "PSAttnBlock": "pst_yolo.pst",
    "PSAttn": "pst_yolo.pst",
    "set_topk": "pst_yolo.toggle",
    "get_topk": "pst_yolo.toggle",
    "topk": "pst_yolo.toggle",
    "pst_layers": "pst_yolo.toggle",
    "fine_training": "pst_yolo.fine_train",
    "FineTrainSchedule": "pst_yolo.fine_train",
    "DEFAULT_TOPK": "pst_yolo.policy",
    "register": "pst_yolo.integration",
    "cfg_dir": "pst_yolo.integration",
    "shipped_configs": "pst_yolo.integration",
}

__all__ = ("__version__", *_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pst_yolo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
