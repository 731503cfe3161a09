"""The value checks the layer and the top-k policy share, and the ``PST_*`` environment variables' errors and
scoped setting (this module imports nothing, so every part of the package can use it)."""

from __future__ import annotations

import contextlib
import numbers
import os
from typing import Any, Iterator, Optional


class PSTEnvironmentError(ValueError):
    """A ``PST_*`` environment variable holds a value pst-yolo cannot use (read only for models with PST layers)."""


def env_error(name: str, value: str, allowed: str) -> PSTEnvironmentError:
    """The error for a bad ``PST_*`` variable: its name, its value and what it may be (``allowed`` completes
    "NAME must be ...")."""
    return PSTEnvironmentError(
        f"environment variable {name}={value!r} is not valid: {name} must be {allowed}. Fix or unset it "
        "(pst-yolo reads it only for models with PST layers)"
    )


@contextlib.contextmanager
def environment_variable(name: str, value: Optional[str]) -> Iterator[None]:
    """``name=value`` in this process's environment for the block (None: left as it is), restored after; child
    processes started inside the block see it."""
    previous = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def check_topk(k: Any) -> int:
    """A top-k as an int; anything but a non-negative integer (``bool`` included) is a ``ValueError``. The layer's
    ``k``/``topk`` setters and ``set_topk`` all use it."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise ValueError(f"top-k must be a non-negative integer (0 = coarse only), got {k!r}")
    return int(k)
