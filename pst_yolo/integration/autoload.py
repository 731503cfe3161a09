"""Register PST with Ultralytics in every interpreter, without importing torch at start-up.

``pst_yolo_autoload.pth`` (installed into site-packages) imports this module when Python starts.
It only installs a tiny import hook (``import_hooks.when_imported``): the real registration
(``pst_yolo.integration.registry.register``) runs right after ``ultralytics.nn.tasks`` has been
imported, so interpreters that never use Ultralytics pay nothing, and every one that does -- the
``yolo`` console script, a plain ``python -c "from ultralytics import YOLO; ..."``, the DDP worker
script Ultralytics writes for multi-GPU training, a process unpickling a checkpoint -- gets PST
without importing ``pst_yolo``.

Switch it off with the environment variable ``PST_YOLO_AUTOLOAD=0`` (then call
``pst_yolo.register()`` yourself where you need it).
"""

from __future__ import annotations

import os
import sys
import warnings

from pst_yolo.integration.import_hooks import when_imported


def _register(_module) -> None:
    # Imported here: the registry imports torch and the layer, which this start-up hook must not.
    from pst_yolo.integration.compat import UnsupportedUltralyticsError
    from pst_yolo.integration.registry import register

    try:
        register()
    except UnsupportedUltralyticsError as e:
        # This import belongs to the user's program, which may use stock models only: say why PST is
        # unavailable instead of breaking it. An explicit pst_yolo.register() raises the same error.
        warnings.warn(
            f"{e}. PST models are unavailable in this process; stock Ultralytics works as usual", stacklevel=2
        )


STOCK_SCRIPTS = ("yolo", "ultralytics")  # Ultralytics' console scripts


def _one_line_for_bad_variables(previous):
    """A ``sys.excepthook`` for Ultralytics' own command line: a bad ``PST_*`` variable (``PST_TOPK=abc``) is
    bad input, so it gets one line and exit status 2, as in ``pst-yolo``, not a traceback through Ultralytics'
    internals. Every other error goes to the previous hook unchanged."""

    def hook(kind, error, tb) -> None:
        from pst_yolo.nn.checks import PSTEnvironmentError  # (imports nothing)

        if isinstance(error, PSTEnvironmentError):
            print(f"{os.path.basename(sys.argv[0])}: error: {error}", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)  # (an uncaught exception would exit 1 after this hook returns)
        previous(kind, error, tb)

    return hook


def _install_excepthook() -> None:
    if sys.argv and os.path.basename(sys.argv[0]) in STOCK_SCRIPTS:
        sys.excepthook = _one_line_for_bad_variables(sys.excepthook)


def install() -> None:
    """Register PST once Ultralytics' model builder is imported (now, if it already is)."""
    when_imported("ultralytics.nn.tasks", _register)
    _install_excepthook()


install()
