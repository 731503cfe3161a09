"""Which top-k is in force: the default, and the ``PST_TOPK`` environment override.

Training forward passes run coarse attention only (unless fine-aware training is asked for); every
evaluation path -- validation inside training, standalone val, predict, export -- runs with the
inference k set on the layers. New models get ``PST_TOPK`` if set, else ``DEFAULT_TOPK``; a
checkpoint keeps the k it was saved (and validated) with unless ``PST_TOPK`` is set.
"""

from __future__ import annotations

import os

DEFAULT_TOPK = 8  # the paper's best accuracy/latency trade-off
ENV_TOPK = "PST_TOPK"


def parse_topk(value: str, source: str = ENV_TOPK) -> int:
    """``"8"`` -> 8; anything but a non-negative integer is an error that says what to write."""
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"{source} must be a non-negative integer (0 = coarse only, e.g. 8), got {value!r}")
    return int(text)


def env_topk() -> int | None:
    """The k from ``PST_TOPK``, or None when it is unset or empty."""
    value = os.environ.get(ENV_TOPK, "")
    return parse_topk(value) if value.strip() else None


def new_model_topk() -> int:
    """The inference k given to PST layers of a newly built model."""
    k = env_topk()
    return DEFAULT_TOPK if k is None else k


def describe(layers) -> str:
    """One line naming the k of each PST layer, e.g. ``PST top-k: model.13 k=8, model.16 k=8 (fine)``."""
    parts = [f"layer {name.removeprefix('model.')} k={layer.k}" for name, layer in layers]
    mode = "coarse only" if all(layer.k == 0 for _, layer in layers) else "coarse + fine"
    return f"PST top-k: {', '.join(parts)} ({mode})"
