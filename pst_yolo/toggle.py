"""Set the fine-branch k of every PST layer in a model.

k = 0 runs coarse attention only; k > 0 adds the sparse fine branch over the top-k coarse tokens
(in eval mode; training runs coarse only unless fine-aware training is asked for).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from torch import nn

from pst_yolo.pst import PST


def _as_module(model: Any) -> nn.Module:
    """The nn.Module inside an Ultralytics ``YOLO`` object (``.model``), or the module itself."""
    if isinstance(model, nn.Module):
        return model
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module):
        return inner
    raise TypeError(f"expected a torch nn.Module or an Ultralytics YOLO object, got {type(model).__name__}")


def pst_layers(model: Any) -> list[tuple[str, PST]]:
    """``(name, layer)`` for every PST layer of ``model``, in module order."""
    return [(name, m) for name, m in _as_module(model).named_modules() if isinstance(m, PST)]


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"top-k must be a non-negative integer (0 = coarse only), got {k!r}")
    return k


def get_topk(model: Any) -> int | dict[str, int]:
    """The k in force: one int if all PST layers agree, else ``{layer name: k}``."""
    layers = pst_layers(model)
    if not layers:
        raise ValueError("this model has no PST layers, so it has no top-k to read")
    ks = {name: layer.k for name, layer in layers}
    values = set(ks.values())
    return values.pop() if len(values) == 1 else ks


def _predictor_module(model: Any) -> nn.Module | None:
    """The copy of the network an Ultralytics ``YOLO`` object's cached predictor runs, if any.

    ``YOLO.predict`` deep-copies the model into a predictor on first use and reuses it afterwards,
    so a k set on ``YOLO.model`` alone would silently not reach later predictions.
    """
    backend = getattr(getattr(model, "predictor", None), "model", None)
    inner = getattr(backend, "model", None)
    return inner if isinstance(inner, nn.Module) and inner is not _as_module(model) else None


def set_topk(model: Any, k: int | dict[str, int]) -> int | dict[str, int]:
    """Set k on every PST layer (or per layer, with a dict from ``get_topk``); return the previous value.

    On an Ultralytics ``YOLO`` object this includes the copy held by its cached predictor.
    Raises ``ValueError`` for a negative or non-integer k, or a model without PST layers.
    """
    previous = get_topk(model)
    layers = pst_layers(model)
    copy = _predictor_module(model)
    if copy is not None:
        layers += pst_layers(copy)
    if isinstance(k, dict):
        unknown = set(k) - {name for name, _ in layers}
        if unknown:
            raise ValueError(f"no PST layer named {sorted(unknown)}")
        for name, layer in layers:
            if name in k:
                layer.k = _check_k(k[name])
    else:
        k = _check_k(k)
        for _, layer in layers:
            layer.k = k
    return previous


@contextlib.contextmanager
def topk(model: Any, k: int) -> Iterator[Any]:
    """Context manager: ``with pst_yolo.topk(model, 8): model.predict(...)``; restores k on exit."""
    previous = set_topk(model, k)
    try:
        yield model
    finally:
        set_topk(model, previous)
