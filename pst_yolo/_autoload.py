"""Register PST with Ultralytics in every interpreter, without importing torch at start-up.

``pst_yolo_autoload.pth`` (installed into site-packages) imports this module when Python starts.
It only installs a tiny import hook: the real registration (``pst_yolo.integration.register``)
runs right after ``ultralytics.nn.tasks`` has been imported, so interpreters that never use
Ultralytics pay nothing, and every one that does -- the ``yolo`` console script, a plain
``python -c "from ultralytics import YOLO; ..."``, the DDP worker script Ultralytics writes for
multi-GPU training, a process unpickling a checkpoint -- gets PST without importing ``pst_yolo``.

Switch it off with the environment variable ``PST_YOLO_AUTOLOAD=0`` (then call
``pst_yolo.register()`` yourself where you need it).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

_TARGET = "ultralytics.nn.tasks"


def _register() -> None:
    from pst_yolo.integration import register

    register()


class _LoaderWithHook(importlib.abc.Loader):
    """Wraps the real loader of ``ultralytics.nn.tasks`` and registers PST once it has executed."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name):  # get_source, get_code, is_package, ... for tools that ask
        return getattr(self._loader, name)


class _TasksImportHook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # one-shot: find the real spec without finding ourselves again
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoaderWithHook(spec.loader)
        return spec


def install() -> None:
    """Register now if Ultralytics' model builder is already imported, else when it gets imported."""
    if _TARGET in sys.modules:
        _register()
    elif not any(isinstance(f, _TasksImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TasksImportHook())


install()
