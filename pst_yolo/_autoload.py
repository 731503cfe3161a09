"""Register PST with Ultralytics in every interpreter, without importing torch at start-up.

``pst_yolo_autoload.pth`` (installed into site-packages) imports this module when Python starts.
It only installs a tiny import hook: the real registration (``pst_yolo.integration.register``)
runs right after ``ultralytics.nn.tasks`` has been imported, so interpreters that never use
Ultralytics pay nothing, and every one that does -- the ``yolo`` console script, a plain
``python -c "from ultralytics import YOLO; ..."``, the DDP worker script Ultralytics writes for
multi-GPU training, a process unpickling a checkpoint -- gets PST without importing ``pst_yolo``.

Switch it off with the environment variable ``PST_YOLO_AUTOLOAD=0`` (then call
``pst_yolo.register()`` yourself where you need it).

``when_imported`` is the general tool: run a function right after a module has been executed, or
now if it already has been. Patching a module from inside another module's import can otherwise
meet half-initialised modules.
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


def _register(_module) -> None:
    from pst_yolo.compat import UnsupportedUltralyticsError
    from pst_yolo.integration import register

    try:
        register()
    except UnsupportedUltralyticsError as e:
        # This import belongs to the user's program, which may use stock models only: say why PST is
        # unavailable instead of breaking it. An explicit pst_yolo.register() raises the same error.
        import warnings

        warnings.warn(f"{e}. PST models are unavailable in this process; stock Ultralytics works as usual",
                      stacklevel=2)


def install() -> None:
    """Register PST once Ultralytics' model builder is imported (now, if it already is)."""
    when_imported("ultralytics.nn.tasks", _register)


install()
