"""Everything that touches Ultralytics internals, split by seam.

- ``registry``: ``register()``, the one function that patches Ultralytics (in memory, once).
- ``model_parsing``, ``checkpoints``, ``callbacks``: what each patch does, with the internal it relies on.
- ``runtime``: named helpers for Ultralytics objects pst-yolo reads at run time (predictor, trainer, logger).
- ``precision``: what each export runtime computes in; OpenVINO's precision hint for one block (``precision=``).
- ``compat``: the supported version range and the checks ``register()`` runs first.
- ``autoload`` and ``import_hooks``: the start-up hook that calls ``register()`` when Ultralytics loads.

This package's ``__init__`` imports nothing: the start-up hook must stay free of torch and Ultralytics.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "register": "pst_yolo.integration.registry",
    "is_registered": "pst_yolo.integration.registry",
    "cfg_dir": "pst_yolo.integration.model_parsing",
    "shipped_configs": "pst_yolo.integration.model_parsing",
    "PSTConfigError": "pst_yolo.integration.model_parsing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pst_yolo.integration' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
