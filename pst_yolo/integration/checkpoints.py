"""Ultralytics seam: loading checkpoints into and with PST models.

Internals relied on (ultralytics 8.3.138 - 8.4.x), and why:

- ``tasks.BaseModel.load(self, weights, verbose)`` -- transfers only tensors whose shapes match and
  skips the rest silently; for PST layers a mismatch means weights from another scale, so the wrapper
  raises instead, naming the layer. If it changed its arguments, ``register()`` reports it.
- ``tasks.torch_safe_load(weight, ...)`` -- every checkpoint load goes through it (``YOLO("best.pt")``,
  AutoBackend for val/predict, resume); ``PST_TOPK``, when set, overrides the saved k there. Without
  it, ``PST_TOPK`` would not reach loaded models. A file that fails to load there and turns out to be a
  checkpoint of the PST authors' fork is rebuilt by ``authors.load_after_failure`` instead (other files
  keep Ultralytics' own error).
- ``torch.serialization.add_safe_globals`` (torch >= 2.4) -- under ``ULTRALYTICS_SAFE_LOAD=1`` only
  allow-listed classes may be unpickled; the PST classes are added.
- ``tasks.SAFE_LOAD`` and ``tasks._SafeLoad.SUPPORTED`` (optional) -- whether restricted loading was asked for
  and can be done. Ultralytics before the switch ignores the variable, and with torch < 2.6 it falls back to
  a full unpickle; asked for but impossible, the wrapper refuses to load rather than run a checkpoint's code.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable

import torch
from torch import nn

from pst_yolo.integration.import_hooks import flush
from pst_yolo.nn.pst import PST, GateConv1d, PSAttn, PSAttnBlock
from pst_yolo.nn.topk import env_topk, pst_layers

SAFE_LOAD_ENV = "ULTRALYTICS_SAFE_LOAD"


def load_with_pst_check(original: Callable, self, weights, verbose: bool = True):
    """BaseModel.load, but a PST layer whose tensors do not fit is an error, not a silent skip."""
    source = (weights.get("ema") or weights["model"]) if isinstance(weights, dict) else weights
    if isinstance(source, nn.Module):
        theirs = source.state_dict()
        ours = self.state_dict()
        their_layers = getattr(source, "model", None)
        for i, layer in enumerate(getattr(self, "model", [])):
            if not isinstance(layer, PST):
                continue
            if (
                isinstance(their_layers, nn.Sequential)
                and i < len(their_layers)
                and not isinstance(their_layers[i], PST)
            ):
                continue  # no PST there (e.g. stock YOLO weights): the usual partial transfer skips this layer
            prefix = f"model.{i}."
            for key, value in ours.items():
                if key.startswith(prefix) and key in theirs and theirs[key].shape != value.shape:
                    raise ValueError(
                        f"layer {i} (PST): checkpoint tensor '{key}' has shape {tuple(theirs[key].shape)} but this "
                        f"model's has {tuple(value.shape)}. The weights come from another scale or width: build "
                        f"the model from the matching config (e.g. yolo11s-pst.yaml for yolo11s-pst weights)"
                    )
    return original(self, weights, verbose)


class SafeLoadUnavailableError(ValueError):
    """``ULTRALYTICS_SAFE_LOAD=1`` was set, but this Ultralytics / torch would load the checkpoint unrestricted."""


def check_safe_load_possible(safe_only=None) -> None:
    """Refuse (rather than silently unpickle with full code execution) when restricted loading was asked for,
    by ``ULTRALYTICS_SAFE_LOAD`` or ``safe_only=True``, but this Ultralytics or torch cannot do it."""
    import ultralytics
    from ultralytics.nn import tasks

    asked = getattr(tasks, "SAFE_LOAD", None)
    if asked is None:  # an Ultralytics without the switch: read the variable the way later ones do
        asked = os.environ.get(SAFE_LOAD_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    asked = asked if safe_only is None else bool(safe_only)
    if not asked:
        return
    safe = getattr(tasks, "_SafeLoad", None)
    if safe is None:
        why = f"Ultralytics {ultralytics.__version__} has no restricted checkpoint loading"
    elif not getattr(safe, "SUPPORTED", False):
        why = f"restricted loading needs torch >= 2.6 (this is torch {torch.__version__})"
    else:
        return
    raise SafeLoadUnavailableError(
        f"{SAFE_LOAD_ENV}=1 asks for restricted checkpoint loading, but {why}: the checkpoint would be unpickled "
        "with full code execution, so it is not loaded. Upgrade Ultralytics and torch, or unset the variable to "
        "load files you trust"
    )


def torch_safe_load_with_env_topk(original: Callable, *args, **kwargs):
    """``tasks.torch_safe_load``, with the PST classes allowed under restricted unpickling, the authors'
    checkpoints loaded through ``authors`` when the stock load fails, and ``PST_TOPK`` (when set) applied
    to the loaded PST layers; checkpoints without PST layers are returned untouched."""
    flush()  # patches waiting for a module that was mid-import at register() time (see registry)
    check_safe_load_possible(kwargs.get("safe_only", args[1] if len(args) > 1 else None))
    classes = [PST, PSAttnBlock, PSAttn, GateConv1d]
    with contextlib.suppress(AttributeError):  # torch < 2.4 has no allow-list (ULTRALYTICS_SAFE_LOAD=1)
        torch.serialization.add_safe_globals(classes)
        with contextlib.suppress(TypeError):  # torch >= 2.5: also under their pst-yolo 0.1 names (pst_yolo.pst.*)
            torch.serialization.add_safe_globals([(c, f"pst_yolo.pst.{c.__name__}") for c in classes])
    try:
        ckpt, file = original(*args, **kwargs)
    except Exception as error:  # e.g. a checkpoint of the PST authors' fork, whose classes no longer exist
        from pst_yolo.integration.authors import load_after_failure

        ckpt, file = load_after_failure(error, *args, **kwargs)  # re-raises `error` for any other file
    if isinstance(ckpt, dict):
        layers = [
            layer
            for key in ("model", "ema")
            if isinstance(ckpt.get(key), nn.Module)
            for _, layer in pst_layers(ckpt[key])
        ]
        k = env_topk() if layers else None  # a stock checkpoint never reads PST_TOPK (a bad value cannot break it)
        for layer in layers if k is not None else []:
            layer.k = k
    return ckpt, file
