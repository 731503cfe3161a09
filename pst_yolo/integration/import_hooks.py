"""Run a function right after a module has been imported: the tool behind pst-yolo's auto-registration.

``when_imported(name, fn)`` calls ``fn(module)`` once ``name`` has been executed (now, if it already has
been). Patching a module from inside another module's import can otherwise meet half-initialised
modules. Torch-free and Ultralytics-free: it runs at interpreter start (``pst_yolo_autoload.pth``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Callable

_PENDING: dict[str, list[Callable]] = {}


def _fully_imported(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


class _LoaderWithHook(importlib.abc.Loader):
    """Wraps a module's real loader and runs the pending functions once the module has executed."""

    def __init__(self, loader: importlib.abc.Loader, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        for fn in _PENDING.pop(self._name, []):
            fn(module)

    def __getattr__(self, name):  # get_source, get_code, is_package, ... for tools that ask
        return getattr(self._loader, name)


def flush() -> None:
    """Run pending functions whose module finished importing without our loader (it was already
    mid-import when ``when_imported`` was called). Called on later imports and by the wrappers."""
    for name in [n for n in _PENDING if _fully_imported(n)]:
        for fn in _PENDING.pop(name, []):
            fn(sys.modules[name])


class _PostImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if _PENDING:
            flush()
        if fullname not in _PENDING:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None and not isinstance(spec.loader, _LoaderWithHook):
            spec.loader = _LoaderWithHook(spec.loader, fullname)
        return spec


_FINDER = _PostImportFinder()


def when_imported(name: str, fn: Callable) -> None:
    """Call ``fn(module)`` once ``name`` has been imported (now, if it already is)."""
    if _fully_imported(name):
        fn(sys.modules[name])
        return
    _PENDING.setdefault(name, []).append(fn)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
