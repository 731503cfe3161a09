"""The fine branch's top-k: the policy (which k is in force) and the switch (set it on a model).

Training forward passes run coarse attention only (unless fine-aware training is asked for); every
evaluation path -- validation inside training, standalone val, predict, export -- runs with the
inference k set on the layers. New models get ``PST_TOPK`` if set, else ``DEFAULT_TOPK``; a
checkpoint keeps the k it was saved (and validated) with unless ``PST_TOPK`` is set. k = 0 runs
coarse attention only; k > 0 adds the sparse fine branch over the top-k coarse tokens.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from torch import nn

from pst_yolo.integration.runtime import is_yolo_object, predictor_network
from pst_yolo.nn.checks import PSTEnvironmentError, check_topk, env_error

__all__ = (
    "DEFAULT_TOPK",
    "ENV_TOPK",
    "PSTEnvironmentError",
    "as_module",
    "check_topk",
    "describe",
    "env_topk",
    "get_topk",
    "new_model_topk",
    "parse_topk",
    "pst_layers",
    "set_topk",
    "topk",
)

DEFAULT_TOPK = 8  # the paper's best accuracy/latency trade-off
ENV_TOPK = "PST_TOPK"


# --------------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------------
def parse_topk(value: str, source: str = ENV_TOPK) -> int:
    """``"8"`` -> 8; anything but a non-negative integer is an error that says what to write."""
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"{source} must be a non-negative integer (0 = coarse only, e.g. 8), got {value!r}")
    return int(text)


def env_topk() -> int | None:
    """The k from ``PST_TOPK``, or None when it is unset or empty. Call it only for a model with PST layers."""
    value = os.environ.get(ENV_TOPK, "")
    if not value.strip():
        return None
    if not value.strip().isdigit():
        raise env_error(ENV_TOPK, value, "a non-negative integer (0 = coarse attention only, e.g. 8)")
    return int(value.strip())


def new_model_topk() -> int:
    """The inference k given to PST layers of a newly built model."""
    k = env_topk()
    return DEFAULT_TOPK if k is None else k


def describe(layers) -> str:
    """One line naming the k of each PST layer, e.g. ``PST top-k: model.13 k=8, model.16 k=8 (fine)``."""
    parts = [f"layer {name.removeprefix('model.')} k={layer.k}" for name, layer in layers]
    mode = "coarse only" if all(layer.k == 0 for _, layer in layers) else "coarse + fine"
    return f"PST top-k: {', '.join(parts)} ({mode})"


# --------------------------------------------------------------------------------------------------
# The switch
# --------------------------------------------------------------------------------------------------
def as_module(model: Any) -> nn.Module:
    """The network: the ``nn.Module`` inside an Ultralytics ``YOLO`` object (``.model``), or the module itself."""
    if is_yolo_object(model):
        return model.model
    if isinstance(model, nn.Module):
        return model
    raise TypeError(f"expected a torch nn.Module or an Ultralytics YOLO object, got {type(model).__name__}")


def pst_layers(model: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` for every PST layer of ``model``, in module order."""
    # Imported here: the layer imports Ultralytics, whose import runs pst-yolo's registration, which
    # reads the policy above; so this module must be importable before the layer is.
    from pst_yolo.nn.pst import PST

    return [(name, m) for name, m in as_module(model).named_modules() if isinstance(m, PST)]


def get_topk(model: Any) -> int | dict[str, int]:
    """The k in force: one int if all PST layers agree, else ``{layer name: k}``."""
    layers = pst_layers(model)
    if not layers:
        raise ValueError("this model has no PST layers, so it has no top-k to read")
    ks = {name: layer.k for name, layer in layers}
    values = set(ks.values())
    return values.pop() if len(values) == 1 else ks


def set_topk(model: Any, k: int | dict[str, int]) -> int | dict[str, int]:
    """Set k on every PST layer (or per layer, with a dict from ``get_topk``); return the previous value.

    On an Ultralytics ``YOLO`` object this includes the copy held by its cached predictor.
    Raises ``ValueError`` for a negative or non-integer k, or a model without PST layers.
    """
    previous = get_topk(model)
    layers = pst_layers(model)
    copy = predictor_network(model)  # YOLO.predict runs its own copy of the network
    if copy is not None:
        layers += pst_layers(copy)
    if isinstance(k, dict):
        unknown = set(k) - {name for name, _ in layers}
        if unknown:
            raise ValueError(f"no PST layer named {sorted(unknown)}")
        for name, layer in layers:
            if name in k:
                layer.k = check_topk(k[name])
    else:
        k = check_topk(k)
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
