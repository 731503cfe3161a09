"""pst-yolo: the Pyramid Sparse Transformer (arXiv 2505.12772) as a plugin for Ultralytics YOLO.

Importing this package is cheap: torch and Ultralytics load on first use of a name below.

Subpackages: ``nn`` (the layer, its top-k switch, fine-aware training), ``integration`` (everything that
touches Ultralytics internals), ``data`` (synthetic datasets, COCO conversion), ``eval`` (COCO scoring,
benchmarks, speed, tables), ``viz`` (demo, attention pictures), ``cli`` (the ``pst-yolo`` command).
See docs/design.md.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "PST": "pst_yolo.nn.pst",
    "PSAttnBlock": "pst_yolo.nn.pst",
    "PSAttn": "pst_yolo.nn.pst",
    "set_topk": "pst_yolo.nn.topk",
    "get_topk": "pst_yolo.nn.topk",
    "topk": "pst_yolo.nn.topk",
    "pst_layers": "pst_yolo.nn.topk",
    "DEFAULT_TOPK": "pst_yolo.nn.topk",
    "FineTrainSchedule": "pst_yolo.nn.fine_train",
    "fine_training": "pst_yolo.integration.callbacks",
    "register": "pst_yolo.integration.registry",
    "cfg_dir": "pst_yolo.integration.model_parsing",
    "shipped_configs": "pst_yolo.integration.model_parsing",
    "convert": "pst_yolo.integration.authors",
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
