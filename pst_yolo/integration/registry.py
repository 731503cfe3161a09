"""The one place where pst-yolo patches Ultralytics: ``register()``.

Nothing on disk is edited: ``register()`` rebinds a few module attributes in memory, once per
interpreter, and each patch is a wrapper that falls through to the original for stock models. What
each wrapper relies on, and what breaks if Ultralytics changes it, is written at the top of the module
that implements it:

- ``model_parsing``: ``tasks.parse_model``, ``tasks.check_yaml`` (PST rows, the shipped YAMLs);
- ``checkpoints``: ``tasks.BaseModel.load``, ``tasks.torch_safe_load`` (shape checks, ``PST_TOPK``);
- ``callbacks``: ``default_callbacks``, ``AutoBackend.__init__``, ``BaseValidator.__call__``,
  ``torch_utils.get_flops`` (k logging and export metadata, fine-aware training).

Before patching anything, ``register()`` checks that each of them exists with the arguments pst-yolo
expects (``compat.require``) and warns once outside the tested version range.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable

import torch

from pst_yolo.integration import callbacks
from pst_yolo.integration.compat import SUPPORTED, UnsupportedUltralyticsError, require, warn_if_untested
from pst_yolo.integration.import_hooks import when_imported

_registered = False


def _deferred(module: str, name: str) -> Callable:
    """``module.name``, imported at its first call rather than now.

    ``register()`` can run in the middle of Ultralytics' own import chain -- for instance when a user's
    first line is ``from pst_yolo.nn.pst import PST``: the layer imports Ultralytics, whose import of
    ``tasks`` runs ``register()`` while the layer module is still half-initialised. The wrappers that need
    the layer therefore load their module when Ultralytics first calls them, after all imports are done."""
    target: list[Callable] = []

    def call(*args, **kwargs):
        if not target:
            target.append(getattr(importlib.import_module(module), name))
        return target[0](*args, **kwargs)

    call.__name__ = name
    return call


def _wrap(owner: Any, name: str, wrapper: Callable, method: bool = False) -> None:
    original = getattr(owner, name)
    if getattr(original, "__pst_yolo_original__", None) is not None:
        return  # already wrapped

    if method:

        def patched(self, *args, **kwargs):
            return wrapper(original, self, *args, **kwargs)

    else:

        def patched(*args, **kwargs):
            return wrapper(original, *args, **kwargs)

    patched.__name__ = getattr(original, "__name__", name)
    patched.__doc__ = getattr(original, "__doc__", None)
    patched.__wrapped__ = original
    patched.__pst_yolo_original__ = original
    setattr(owner, name, patched)


def _patch_when_imported(module: str, patch: Callable) -> None:
    """Run ``patch(module)`` once the module has been imported. An internal missing there is reported as
    one warning rather than raised: that import belongs to the user's (maybe stock-only) program."""

    def guarded(mod) -> None:
        try:
            patch(mod)
        except UnsupportedUltralyticsError as e:
            warnings.warn(f"{e}. pst-yolo's hook there is off in this process", stacklevel=2)

    when_imported(module, guarded)


def _patch_default_callbacks(module) -> None:
    defaults = require(module, "default_callbacks", "ultralytics.utils.callbacks.base.default_callbacks")
    missing = [e for e in callbacks.CALLBACK_EVENTS if e not in defaults]
    if missing:
        import ultralytics

        raise UnsupportedUltralyticsError(
            f"pst-yolo adds to the callback events {', '.join(missing)}, which ultralytics "
            f"{ultralytics.__version__} no longer has. Supported: {SUPPORTED}"
        )
    callbacks.add_default_callbacks(defaults)


def register() -> None:
    """Make Ultralytics understand PST rows and the shipped configs. Idempotent; in-memory only.

    Warns once if the installed Ultralytics/torch are outside the tested range (``pst_yolo.compat``);
    raises ``UnsupportedUltralyticsError``, naming the internal, if one that pst-yolo wraps is missing
    or has another signature -- before anything is patched.
    """
    global _registered
    if _registered:
        return
    import ultralytics
    from ultralytics.nn import tasks

    warn_if_untested(ultralytics.__version__, torch.__version__)
    parsing, checkpoints = "pst_yolo.integration.model_parsing", "pst_yolo.integration.checkpoints"
    eager = [  # (owner, name, dotted name, leading parameters, wrapper, is a method)
        (
            tasks,
            "parse_model",
            "ultralytics.nn.tasks.parse_model",
            ("d", "ch", "verbose"),
            _deferred(parsing, "parse_model_with_pst"),
            False,
        ),
        (
            tasks,
            "check_yaml",
            "ultralytics.nn.tasks.check_yaml",
            ("file",),
            _deferred(parsing, "check_yaml_with_shipped"),
            False,
        ),
        (
            getattr(tasks, "BaseModel", None),
            "load",
            "ultralytics.nn.tasks.BaseModel.load",
            ("self", "weights"),
            _deferred(checkpoints, "load_with_pst_check"),
            True,
        ),
        (
            tasks,
            "torch_safe_load",
            "ultralytics.nn.tasks.torch_safe_load",
            ("weight",),
            _deferred(checkpoints, "torch_safe_load_with_env_topk"),
            False,
        ),
    ]
    require(tasks, "BaseModel", "ultralytics.nn.tasks.BaseModel")
    require(tasks, "LOGGER", "ultralytics.nn.tasks.LOGGER")
    for owner, name, where, params, _, _ in eager:  # check all before patching any
        require(owner, name, where, params)
    for owner, name, _, _, wrapper, method in eager:
        _wrap(owner, name, wrapper, method=method)
    # These modules may be mid-import right now (register() can run from inside Ultralytics' own
    # import chain), so they are checked and patched once they have finished executing.
    _patch_when_imported(
        "ultralytics.nn.autobackend",
        lambda mod: _wrap(
            require(mod, "AutoBackend", "ultralytics.nn.autobackend.AutoBackend"),
            "__init__",
            callbacks.autobackend_init_logging_topk,
            method=True,
        ),
    )
    _patch_when_imported(
        "ultralytics.engine.validator",
        lambda mod: _wrap(
            require(mod, "BaseValidator", "ultralytics.engine.validator.BaseValidator"),
            "__call__",
            callbacks.validator_call_logging_topk,
            method=True,
        ),
    )
    _patch_when_imported("ultralytics.utils.callbacks.base", _patch_default_callbacks)
    _patch_when_imported(
        "ultralytics.utils.torch_utils",
        lambda mod: (
            require(mod, "get_flops", "ultralytics.utils.torch_utils.get_flops", ("model", "imgsz")),
            _wrap(mod, "get_flops", callbacks.get_flops_quietly),
        ),
    )
    _registered = True


def is_registered() -> bool:
    return _registered
